import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, sql, type Dialect } from 'kysely';
import pg from 'pg';
import type { StoreConfig } from '../config/ServerConfig.js';
import type { Logger } from '../util/logger.js';
import { migrations } from './migrations/index.js';
import { SqliteStoreDialect } from './SqliteStoreDialect.js';
import { StatementCache } from './StatementCache.js';
import type { StoreTables } from './StoreTables.js';
import { FALLBACK_AUTOCHECKPOINT_PAGES, WalCheckpointer } from './WalCheckpointer.js';

/** The store could not be opened or migrated; the message is one line and never carries a password. */
export class StoreError extends Error {
  override name = 'StoreError';
}

export interface StoreOptions {
  /** Where connection losses noticed outside a query are reported (PostgreSQL); the pool reconnects on the next query. */
  readonly log?: Logger;
  /**
   * SQLite: checkpoint the WAL in a worker thread instead of inside commits
   * on the event loop ({@link WalCheckpointer}). The server sets it; the
   * admin command, whose few writes never fill the WAL, does not.
   */
  readonly backgroundCheckpoints?: boolean;
}

/** PostgreSQL type OID of `bigint` (int8). */
const INT8_OID = 20;

/**
 * The one storage layer of the server: an SQLite file (the zero-install
 * default) or PostgreSQL (several nodes sharing accounts), both behind one
 * Kysely query builder over {@link StoreTables}. {@link Store.open} brings the
 * schema to the latest migration before anything else uses it.
 */
export class Store {
  #checkpointer: WalCheckpointer | null = null;

  private constructor(
    /** The query builder; every layer above uses only portable Kysely queries. */
    readonly db: Kysely<StoreTables>,
    readonly type: StoreConfig['type'],
  ) {}

  /**
   * Opens the database (creating an SQLite file and its folder, mode 0700/0600,
   * when missing), runs pending migrations, and resolves once it can be used.
   * Rejects with a {@link StoreError} when the database is unreachable or a
   * migration fails; the connection is closed again then.
   */
  static async open(config: StoreConfig, options: StoreOptions = {}): Promise<Store> {
    let dialect: Dialect;
    try {
      dialect = createDialect(config, options);
    } catch (err) {
      throw new StoreError(`cannot open the ${config.type} store: ${oneLine(err)}`);
    }
    const db = new Kysely<StoreTables>({ dialect });
    const store = new Store(db, config.type);
    try {
      await store.ping().catch((err: unknown) => {
        throw new StoreError(`cannot open the ${config.type} store: ${oneLine(err)}`);
      });
      // All pending migrations run in one transaction; concurrent openers wait (PostgreSQL: advisory lock; SQLite: BEGIN IMMEDIATE).
      const { error, results } = await new Migrator({
        db,
        provider: { getMigrations: async () => ({ ...migrations }) },
      }).migrateToLatest();
      if (error) {
        const failed = results?.find((r) => r.status === 'Error')?.migrationName;
        throw new StoreError(`${failed ? `store migration ${failed}` : 'store migrations'} failed: ${oneLine(error)}`);
      }
    } catch (err) {
      await db.destroy().catch(() => undefined);
      throw err;
    }
    if (config.type === 'sqlite' && options.backgroundCheckpoints) store.#checkpointer = WalCheckpointer.start(config.path, options.log);
    return store;
  }

  /** Resolves when the database answers a trivial query (readiness); rejects otherwise. */
  async ping(): Promise<void> {
    await sql`select 1`.execute(this.db);
  }

  /** Closes every connection; the store cannot be used afterwards. */
  async close(): Promise<void> {
    await this.#checkpointer?.stop();
    await this.db.destroy();
  }
}

function createDialect(config: StoreConfig, { log, backgroundCheckpoints = false }: StoreOptions): Dialect {
  if (config.type === 'sqlite') {
    createPrivateFile(config.path);
    return new SqliteStoreDialect({
      database: async () => {
        const db = new SQLite(config.path);
        // WAL: the admin command can write while the server reads; busy_timeout: wait for the other writer instead of failing.
        db.pragma('journal_mode = WAL');
        db.pragma('busy_timeout = 5000');
        // NORMAL in WAL mode: a commit survives a crash of the process (kill -9); a power loss can lose the
        // last commits since the WAL was last synced (docs/operations.md#event-log). FULL would fsync every
        // group commit on the event loop's thread.
        db.pragma('synchronous = NORMAL');
        // Checkpoints (copy the WAL into the file and sync it) run in a worker; this connection only past a bound.
        if (backgroundCheckpoints) db.pragma(`wal_autocheckpoint = ${FALLBACK_AUTOCHECKPOINT_PAGES}`);
        db.pragma('foreign_keys = ON');
        return new StatementCache(db);
      },
    });
  }
  const pool = new pg.Pool({
    connectionString: config.url,
    max: config.poolSize,
    // Times are bigint milliseconds: read them as numbers (exact below 2^53), not pg's default strings.
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === INT8_OID ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
    },
  });
  // A connection the server or the network drops (restart, failover, idle timeout) is an 'error' event on
  // its client, and the pool re-emits it for an idle one. Unhandled, either would end the process: pg-pool
  // listens only while a client is idle, so a drop during a transaction (a commit in flight) was an uncaught
  // exception. The query in flight rejects too; pg discards that connection and the next query opens another.
  pool.on('connect', (client) => client.on('error', (err) => log?.warn({ err: oneLine(err) }, 'store connection lost')));
  pool.on('error', () => undefined); // already logged by the client's own listener above
  return new PostgresDialect({ pool });
}

/** The folder and the database file are private to the server's user: they hold key hashes. */
function createPrivateFile(path: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  closeSync(openSync(path, 'a', 0o600));
}

/** First line of an error's message, without anything that looks like a URL's credentials. */
function oneLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return (message.split('\n')[0] ?? '').replace(/\/\/[^@/\s]*@/g, '//***@');
}
