import { sql, type CreateTableBuilder, type Kysely } from 'kysely';

/** The columns of webhook_attempts, with or without `target` (up and down rebuild it). */
function attemptsTable(db: Kysely<unknown>, name: string, withTarget: boolean): CreateTableBuilder<string, string> {
  let table: CreateTableBuilder<string, string> = db.schema
    .createTable(name)
    .addColumn('account_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('event_id', 'bigint', (c) => c.notNull());
  if (withTarget) table = table.addColumn('target', 'varchar(16)', (c) => c.notNull());
  table = table
    .addColumn('attempt', 'integer', (c) => c.notNull())
    .addColumn('status', 'integer')
    .addColumn('latency_ms', 'integer', (c) => c.notNull())
    .addColumn('error', 'varchar(512)')
    .addColumn('outcome', 'varchar(16)', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull());
  return table.addPrimaryKeyConstraint(`${name}_pk`, withTarget ? ['account_id', 'event_id', 'target', 'attempt'] : ['account_id', 'event_id', 'attempt']);
}

/**
 * Per-call status_url (issue 10): one delivery target per resource that
 * names one (its URL and delivery cursor, written with the resource's row),
 * an index to read one resource's events in order, and webhook_attempts
 * keyed by target too (`event_url` or `status_url`: one event may go to
 * both). SQLite cannot change a primary key, so the attempts table is
 * rebuilt; existing attempts were all event_url deliveries.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('webhook_call_targets')
    .addColumn('res_id', 'varchar(128)', (c) => c.primaryKey())
    .addColumn('account_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('url', 'varchar(2048)', (c) => c.notNull())
    .addColumn('delivered_event_id', 'bigint', (c) => c.notNull())
    .addColumn('pending_attempts', 'integer', (c) => c.notNull())
    .addColumn('next_attempt_at', 'bigint', (c) => c.notNull())
    .addColumn('done', 'integer', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('webhook_call_targets_done').on('webhook_call_targets').column('done').execute();
  await db.schema.createIndex('events_resource').on('events').columns(['account_id', 'res_id', 'event_id']).execute();

  await attemptsTable(db, 'webhook_attempts_by_target', true).execute();
  await sql`insert into webhook_attempts_by_target (account_id, event_id, target, attempt, status, latency_ms, error, outcome, created_at)
    select account_id, event_id, 'event_url', attempt, status, latency_ms, error, outcome, created_at from webhook_attempts`.execute(db);
  await db.schema.dropTable('webhook_attempts').execute();
  await db.schema.alterTable('webhook_attempts_by_target').renameTo('webhook_attempts').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await attemptsTable(db, 'webhook_attempts_event_url', false).execute();
  await sql`insert into webhook_attempts_event_url (account_id, event_id, attempt, status, latency_ms, error, outcome, created_at)
    select account_id, event_id, attempt, status, latency_ms, error, outcome, created_at from webhook_attempts where target = 'event_url'`.execute(db);
  await db.schema.dropTable('webhook_attempts').execute();
  await db.schema.alterTable('webhook_attempts_event_url').renameTo('webhook_attempts').execute();
  await db.schema.dropIndex('events_resource').execute();
  await db.schema.dropTable('webhook_call_targets').execute();
}
