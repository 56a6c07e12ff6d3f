import type { Kysely } from 'kysely';

/**
 * Webhooks (issue 10): one delivery target per account (its `event_url`,
 * signing secret and delivery cursor) and one row per delivery attempt.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('webhook_targets')
    .addColumn('account_id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('url', 'varchar(2048)')
    .addColumn('secret', 'varchar(128)', (c) => c.notNull())
    .addColumn('delivered_event_id', 'bigint', (c) => c.notNull())
    .addColumn('pending_attempts', 'integer', (c) => c.notNull())
    .addColumn('next_attempt_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('webhook_attempts')
    .addColumn('account_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('event_id', 'bigint', (c) => c.notNull())
    .addColumn('attempt', 'integer', (c) => c.notNull())
    .addColumn('status', 'integer')
    .addColumn('latency_ms', 'integer', (c) => c.notNull())
    .addColumn('error', 'varchar(512)')
    .addColumn('outcome', 'varchar(16)', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('webhook_attempts_pk', ['account_id', 'event_id', 'attempt'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('webhook_attempts').execute();
  await db.schema.dropTable('webhook_targets').execute();
}
