import t from 'tap';
import { Store } from '../../lib/store/Store.js';
import { PreparedQuery } from '../../lib/store/PreparedQuery.js';
import { StatementCache } from '../../lib/store/StatementCache.js';
import { EventLogQueries } from '../../lib/events/EventLogQueries.js';
import { storeBackends } from '../support/storeBackends.js';
import SQLite from 'better-sqlite3';

for (const backend of storeBackends(t)) {
  t.test(`${backend.name}: a prepared query runs again and again with new values, stored verbatim`, async (t) => {
    const store = await Store.open(await backend.newStore());
    t.teardown(() => store.close());
    const insert = PreparedQuery.compile(['id', 'name'], (p) =>
      store.db.insertInto('accounts').values({ account_id: p.id, name: p.name, enabled: 1, max_live_resources: null, constructs_per_second: 7, gateways: null, caller_ids: null, created_at: 5, updated_at: 5 }),
    );
    // A value that looks like the placeholder marker, or like SQL, is only a value: slots are fixed at compile time.
    // (PostgreSQL text cannot hold NUL: there the marker without it.)
    const marker = backend.name === 'sqlite' ? '\u0000cti-placeholder:id' : 'cti-placeholder:id';
    const hostile = [marker, "x'); drop table accounts; --", 'plain'];
    for (const [i, name] of hostile.entries()) await insert.execute(store.db, { id: `acc-${i}`, name });
    const rows = await store.db.selectFrom('accounts').selectAll().orderBy('account_id').execute();
    t.same(
      rows.map((r) => [r.account_id, r.name, Number(r.constructs_per_second)]),
      hostile.map((name, i) => [`acc-${i}`, name, 7]),
    );
  });

  t.test(`${backend.name}: the event log's statements keep event ids without gaps`, async (t) => {
    const store = await Store.open(await backend.newStore());
    t.teardown(() => store.close());
    const q = new EventLogQueries(store.db);
    const ids = await store.db.transaction().execute(async (trx) => [await q.advanceSequence(trx, 'a', 3), await q.advanceSequence(trx, 'a', 1), await q.advanceSequence(trx, 'b', 2)]);
    t.same(ids, [3, 4, 2], 'last id after each advance, per account');
  });

  t.test(`${backend.name}: multi-row INSERTs bind each row's values to that row, whatever the row count (row 10 and up included)`, async (t) => {
    const store = await Store.open(await backend.newStore());
    t.teardown(() => store.close());
    const q = new EventLogQueries(store.db);
    const resource = (i: number) => ({ res_id: `r${i}`, account_id: `a${i % 3}`, node_id: `n${i}`, class: `c${i}`, process_id: 1000 + i, owner_id: `o${i}`, user_data: i % 2 ? null : `u${i}`, created_at: 5000 + i });
    const event = (i: number) => ({ account_id: `a${i % 3}`, event_id: 100 + i, res_id: `r${i}`, method: `m${i}`, params: `{"p":${i}}`, created_at: 7000 + i });
    // 12 rows, then 1, then 12 again (the cached 12-row statement), then 3.
    const batches = [[0, 12], [12, 13], [13, 25], [25, 28]] as const;
    for (const [from, to] of batches) {
      const ids = Array.from({ length: to - from }, (_, k) => from + k);
      await store.db.transaction().execute(async (trx) => {
        await q.insertResources(trx, ids.map(resource));
        await q.insertEvents(trx, ids.map(event));
      });
    }
    const all = Array.from({ length: 28 }, (_, i) => i);
    const resources = await store.db.selectFrom('resources').select(['res_id', 'account_id', 'node_id', 'class', 'process_id', 'owner_id', 'user_data', 'created_at', 'live']).execute();
    t.same(
      resources.map((r) => ({ ...r, process_id: Number(r.process_id), created_at: Number(r.created_at), live: Number(r.live) })).sort((a, b) => a.process_id - b.process_id),
      all.map((i) => ({ ...resource(i), live: 1 })),
      'every resource row holds its own values',
    );
    const events = await store.db.selectFrom('events').select(['account_id', 'event_id', 'res_id', 'method', 'params', 'created_at']).execute();
    t.same(
      events.map((e) => ({ ...e, event_id: Number(e.event_id), created_at: Number(e.created_at) })).sort((a, b) => a.event_id - b.event_id),
      all.map(event),
      'every event row holds its own values',
    );
  });

  t.test(`${backend.name}: a placeholder bound twice or never is a programming error, found at compile time`, async (t) => {
    const store = await Store.open(await backend.newStore());
    t.teardown(() => store.close());
    const db = store.db;
    t.throws(() => PreparedQuery.compile(['a'], () => db.selectFrom('accounts').selectAll().where('account_id', '=', 'x')), /placeholder a is bound 0 times/);
    t.throws(
      () => PreparedQuery.compile(['a'], (p) => db.selectFrom('accounts').selectAll().where('account_id', '=', p.a).where('name', '=', p.a)),
      /placeholder a is bound 2 times/,
    );
  });
}


t.test('the statement cache reuses statements, is bounded, and never hands out a busy one', (t) => {
  const db = new SQLite(':memory:');
  const cache = new StatementCache(db, 2);
  db.exec('create table n (v integer)');
  db.exec('insert into n values (1), (2), (3)');
  const a = cache.prepare('select v from n');
  t.equal(cache.prepare('select v from n'), a, 'same text, same statement');
  cache.prepare('select v + 1 from n');
  cache.prepare('select v + 2 from n');
  t.not(cache.prepare('select v from n'), a, 'least recently used dropped past capacity');
  const b = cache.prepare('select v * 2 from n');
  const it = b.iterate();
  it.next();
  const c = cache.prepare('select v * 2 from n');
  t.not(c, b, 'a statement still iterating is not shared');
  t.same(c.all(), [{ 'v * 2': 2 }, { 'v * 2': 4 }, { 'v * 2': 6 }]);
  it.return?.();
  cache.close();
  t.end();
});
