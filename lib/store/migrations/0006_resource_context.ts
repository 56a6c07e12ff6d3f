import type { Kysely } from 'kysely';

/**
 * The context of a live resource as of its last committed event (issue 9):
 * parties' numbers, gateway, SIP status, dial/ring/answer times. A restart
 * after a crash writes the CDR of a resource left live from it; released
 * resources keep their final record in `cdr` and this column goes back to null.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('resources').addColumn('context', 'text').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('resources').dropColumn('context').execute();
}
