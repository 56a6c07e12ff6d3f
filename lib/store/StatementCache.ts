import type { Database, Statement } from 'better-sqlite3';
import type { SqliteDatabase } from 'kysely';

/**
 * The SQLite connection Kysely is given, with its prepared statements kept
 * for reuse. Kysely's SQLite driver calls `prepare(sql)` for every query;
 * compiling the same few statements again and again cost as much CPU as
 * running them (bench CPU profile at 200 duo_callbacks/s: `prepare` 390 ms
 * next to 470 ms of execution). Bounded: the least recently used statement
 * is dropped past `capacity` (queries with variable-length `IN (...)` lists
 * each have their own text).
 */
export class StatementCache implements SqliteDatabase {
  readonly #statements = new Map<string, Statement>();

  constructor(
    readonly db: Database,
    private readonly capacity = 256,
  ) {}

  prepare(sql: string): Statement {
    const cached = this.#statements.get(sql);
    // A statement still iterating (a streamed query) cannot run again until it is done: give that caller its own.
    if (cached && !cached.busy) {
      // Re-inserting keeps the Map in least-recently-used order.
      this.#statements.delete(sql);
      this.#statements.set(sql, cached);
      return cached;
    }
    const statement = this.db.prepare(sql);
    if (!cached) {
      this.#statements.set(sql, statement);
      if (this.#statements.size > this.capacity) this.#statements.delete(this.#statements.keys().next().value as string);
    }
    return statement;
  }

  close(): void {
    this.#statements.clear();
    this.db.close();
  }
}
