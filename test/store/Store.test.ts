import t from 'tap';
import { statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { sql } from 'kysely';
import pg from 'pg';
import type { Logger } from '../../lib/util/logger.js';
import { Store, StoreError } from '../../lib/store/Store.js';
import { migrations } from '../../lib/store/migrations/index.js';
import { storeBackends } from '../support/storeBackends.js';

for (const backend of storeBackends(t)) {
  t.test(backend.name, async (t) => {
    t.test('migrations run from empty and again on reopen', async (t) => {
      const config = await backend.newStore();
      const store = await Store.open(config);
      const tables = (await store.db.introspection.getTables()).map((x) => x.name);
      t.ok(tables.includes('accounts') && tables.includes('api_keys'), `tables: ${tables.join(', ')}`);
      const applied = await sql<{ name: string }>`select name from kysely_migration order by name`.execute(store.db);
      t.same(applied.rows.map((r) => r.name), Object.keys(migrations));
      await store.ping();
      await store.close();
      await t.rejects(store.ping(), 'a closed store does not answer');

      const again = await Store.open(config);
      const reapplied = await sql<{ name: string }>`select name from kysely_migration`.execute(again.db);
      t.equal(reapplied.rows.length, Object.keys(migrations).length, 'nothing ran twice');
      await again.close();
    });

    t.test('a store migrated by a newer release is refused, not guessed at', async (t) => {
      const config = await backend.newStore();
      const store = await Store.open(config);
      await sql`insert into kysely_migration (name, timestamp) values ('9999_future', '2030-01-01T00:00:00.000Z')`.execute(store.db);
      await store.close();
      await t.rejects(Store.open(config), StoreError);
    });

    t.test('bigint times read back as numbers', async (t) => {
      const store = await Store.open(await backend.newStore());
      t.teardown(() => store.close());
      const ms = 1_900_000_000_123;
      await store.db
        .insertInto('accounts')
        .values({ account_id: 'a', name: 'a', enabled: 1, max_live_resources: null, constructs_per_second: null, gateways: null, caller_ids: null, created_at: ms, updated_at: ms })
        .execute();
      const row = await store.db.selectFrom('accounts').select(['created_at', 'enabled']).executeTakeFirstOrThrow();
      t.same(row, { created_at: ms, enabled: 1 });
      t.equal(typeof row.created_at, 'number');
    });
  });
}

t.test('sqlite: folder and file are private to the server user', async (t) => {
  const [sqlite] = storeBackends(t);
  const config = await sqlite!.newStore();
  if (config.type !== 'sqlite') throw new Error('expected sqlite');
  const store = await Store.open(config);
  await store.close();
  t.equal(statSync(config.path).mode & 0o777, 0o600);
  t.equal(statSync(dirname(config.path)).mode & 0o777, 0o700);
});

t.test('sqlite: a path that cannot be created is a one-line StoreError', async (t) => {
  const notADir = join(t.testdir(), 'file');
  writeFileSync(notADir, '');
  const err = await Store.open({ type: 'sqlite', path: join(notADir, 'data', 'cti.sqlite') }).then(
    () => null,
    (e: unknown) => e,
  );
  t.type(err, StoreError);
  t.match((err as Error).message, /^cannot open the sqlite store: [^\n]+$/);
});

t.test('postgres: connections the server drops do not end the process; the next query reconnects', async (t) => {
  const postgres = storeBackends(t)[1]!;
  const config = await postgres.newStore();
  if (config.type !== 'postgres') throw new Error('expected postgres');
  const lost: string[] = [];
  const log = { warn: (o: { err: string }, msg: string) => lost.push(`${msg}: ${o.err}`) } as unknown as Logger;
  const store = await Store.open(config, { log });
  t.teardown(() => store.close());
  await Promise.all([store.ping(), store.ping(), store.ping()]);
  // What a PostgreSQL restart or failover does to idle connections.
  const database = new URL(config.url).pathname.slice(1);
  const admin = new pg.Client({ connectionString: config.url });
  await admin.connect();
  await admin.query('select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()', [database]);
  await admin.end();
  await new Promise((resolve) => setTimeout(resolve, 300));
  t.ok(lost.length > 0, `reported: ${lost[0] ?? 'nothing'}`);
  await store.ping();
  t.pass('the store answers again');
});

t.test('postgres: an unreachable server is a one-line StoreError without the password', async (t) => {
  const err = await Store.open({ type: 'postgres', url: 'postgres://cti:hunter2@localhost/cti?host=/nonexistent-socket-dir', poolSize: 1 }).then(
    () => null,
    (e: unknown) => e,
  );
  t.type(err, StoreError);
  const message = (err as Error).message;
  t.notMatch(message, /hunter2/);
  t.notMatch(message, /\n/);
  t.match(message, /cannot open the postgres store/);
});
