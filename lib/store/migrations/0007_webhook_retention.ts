import type { Kysely } from 'kysely';

/**
 * Retention (`retention.*Days`): the hourly prune deletes by time, a chunk
 * at a time (lib/store/pruneOlderThan.ts), so each chunk must find its rows
 * by index rather than a scan of tables that grow with every call and POST:
 * webhook attempts by time, finished status_url targets by their last
 * update, released resources (CDRs) by release time. (Events have
 * `events_created_at` since 0002.)
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.createIndex('webhook_attempts_created_at').on('webhook_attempts').column('created_at').execute();
  await db.schema.createIndex('webhook_call_targets_done_updated').on('webhook_call_targets').columns(['done', 'updated_at']).execute();
  await db.schema.createIndex('resources_live_released').on('resources').columns(['live', 'released_at']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('resources_live_released').execute();
  await db.schema.dropIndex('webhook_call_targets_done_updated').execute();
  await db.schema.dropIndex('webhook_attempts_created_at').execute();
}
