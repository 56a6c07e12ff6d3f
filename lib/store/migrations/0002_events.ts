import type { Kysely } from 'kysely';

/**
 * The durable event log, its per-account sequence, and one row per resource
 * (written at construct, final record = CDR at release) (issue 9).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('event_sequences')
    .addColumn('account_id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('last_event_id', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('events')
    .addColumn('account_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('event_id', 'bigint', (c) => c.notNull())
    .addColumn('res_id', 'varchar(128)', (c) => c.notNull())
    .addColumn('method', 'varchar(64)', (c) => c.notNull())
    .addColumn('params', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('events_pk', ['account_id', 'event_id'])
    .execute();
  await db.schema.createIndex('events_created_at').on('events').column('created_at').execute();
  await db.schema
    .createTable('resources')
    .addColumn('res_id', 'varchar(128)', (c) => c.primaryKey())
    .addColumn('account_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('node_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('class', 'varchar(32)', (c) => c.notNull())
    .addColumn('process_id', 'bigint', (c) => c.notNull())
    .addColumn('owner_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('user_data', 'text')
    .addColumn('live', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('released_at', 'bigint')
    .addColumn('cdr', 'text')
    .addColumn('dialogs', 'text')
    .execute();
  await db.schema.createIndex('resources_account_released').on('resources').columns(['account_id', 'released_at']).execute();
  await db.schema.createIndex('resources_node_live').on('resources').columns(['node_id', 'live']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('resources').execute();
  await db.schema.dropTable('events').execute();
  await db.schema.dropTable('event_sequences').execute();
}
