import {
  CompiledQuery,
  SqliteAdapter,
  SqliteDialect,
  SqliteDriver,
  type DatabaseConnection,
  type DialectAdapter,
  type Driver,
  type SqliteDialectConfig,
} from 'kysely';

/**
 * Kysely's SQLite dialect with two changes that make one database file safe
 * to share between the server and the admin command (two processes):
 *
 * - transactions start with `BEGIN IMMEDIATE`: the write lock is taken at
 *   the start, waiting up to busy_timeout for the other process, instead of
 *   failing with SQLITE_BUSY when a read transaction later tries to write
 *   (https://www.sqlite.org/lang_transaction.html);
 * - migrations run in that transaction (SQLite has transactional DDL; Kysely's
 *   adapter says it has not and takes no lock, so two processes opening a new
 *   file both ran `0001` and one failed with "table already exists", and a
 *   failed migration could leave half a schema).
 */
export class SqliteStoreDialect extends SqliteDialect {
  constructor(private readonly dialectConfig: SqliteDialectConfig) {
    super(dialectConfig);
  }

  override createDriver(): Driver {
    return new ImmediateSqliteDriver(this.dialectConfig);
  }

  override createAdapter(): DialectAdapter {
    return new TransactionalDdlSqliteAdapter();
  }
}

class ImmediateSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }
}

class TransactionalDdlSqliteAdapter extends SqliteAdapter {
  override get supportsTransactionalDdl(): boolean {
    return true;
  }
}
