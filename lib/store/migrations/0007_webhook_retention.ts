import type { Kysely } from 'kysely';

/**
 * Retention of webhook records (`retention.webhookDays`): the hourly prune
 * deletes attempts by time and finished status_url targets by their last
 * update, by index rather than a scan of tables that grow with every POST.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.createIndex('webhook_attempts_created_at').on('webhook_attempts').column('created_at').execute();
  await db.schema.createIndex('webhook_call_targets_done_updated').on('webhook_call_targets').columns(['done', 'updated_at']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('webhook_call_targets_done_updated').execute();
  await db.schema.dropIndex('webhook_attempts_created_at').execute();
}
