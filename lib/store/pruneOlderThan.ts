import { sql, type Kysely } from 'kysely';
import type { StoreTables } from './StoreTables.js';

/** Rows deleted per statement: a few milliseconds of SQLite work, so the event loop is never held long. */
export const PRUNE_CHUNK = 2000;

/** Which rows of a table retention may delete: those whose `time` column is older than the cut-off, and whose `flag` column (if any) has the given value. */
export interface PruneTarget<T extends keyof StoreTables> {
  readonly table: T;
  /** A Unix-milliseconds column with an index that starts with `flag`'s column (if any), then this one. */
  readonly time: keyof StoreTables[T] & string;
  /** e.g. `{ column: 'live', equals: 0 }`: only released resources. */
  readonly flag?: { readonly column: keyof StoreTables[T] & string; readonly equals: number };
}

/**
 * Deletes a target's rows older than `beforeMs` (Unix milliseconds), about
 * `chunk` rows per DELETE, and lets the event loop run between DELETEs. One
 * DELETE of an hour of a busy node's events (millions of rows at 200 calls/s)
 * would stop SQLite's only connection, and with it every call, for seconds.
 * Each chunk is bounded by the time of its `chunk`-th oldest row (found by
 * index); rows sharing that exact time go in the same chunk.
 * @returns how many rows were deleted.
 */
export async function pruneOlderThan<T extends keyof StoreTables>(db: Kysely<StoreTables>, target: PruneTarget<T>, beforeMs: number, chunk = PRUNE_CHUNK): Promise<number> {
  const table = sql.table(target.table);
  const time = sql.ref(target.time);
  const flag = target.flag ? sql`${sql.ref(target.flag.column)} = ${target.flag.equals} and ` : sql``;
  let deleted = 0;
  for (;;) {
    const boundary = await sql<{ at: number | string }>`select ${time} as at from ${table} where ${flag}${time} < ${beforeMs} order by ${time} limit 1 offset ${chunk}`.execute(db);
    const at = boundary.rows[0] === undefined ? null : Number(boundary.rows[0].at);
    // No chunk-th row: the rest fits in one DELETE. Else everything older than that row's time (at least one row unless
    // the chunk shares one time: then up to and including it).
    let result = await sql`delete from ${table} where ${flag}${time} < ${at ?? beforeMs}`.execute(db);
    if (at !== null && !Number(result.numAffectedRows ?? 0)) result = await sql`delete from ${table} where ${flag}${time} <= ${at}`.execute(db);
    deleted += Number(result.numAffectedRows ?? 0);
    if (at === null) return deleted;
    await new Promise((resolve) => setImmediate(resolve));
  }
}
