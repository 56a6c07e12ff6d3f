import type { Kysely } from 'kysely';

/**
 * The signing key of each API key (issue 10, signed HTTP requests). Numbered
 * 0003 because issue 9's event log takes 0002. Keys created earlier keep null
 * (their secret is stored only as a hash, so nothing can be derived): they
 * authenticate with Bearer only.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('api_keys').addColumn('signing_key', 'varchar(64)').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('api_keys').dropColumn('signing_key').execute();
}
