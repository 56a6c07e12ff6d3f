import t from 'tap';
import { Store } from '../../lib/store/Store.js';
import { pruneOlderThan } from '../../lib/store/pruneOlderThan.js';
import { storeBackends } from '../support/storeBackends.js';

for (const backend of storeBackends(t)) {
  t.test(`${backend.name}: old rows go a chunk at a time, the event loop runs between chunks, nothing newer or flagged otherwise is touched`, async (t) => {
    const store = await Store.open(await backend.newStore());
    t.teardown(() => store.close());
    // 1,200 rows all at t=100 (more than a chunk sharing one time), 900 at 101..1000, 500 at or after the cut-off 5000.
    const times = [...Array.from({ length: 1200 }, () => 100), ...Array.from({ length: 900 }, (_, i) => 101 + i), ...Array.from({ length: 500 }, (_, i) => 5000 + i)];
    for (let i = 0; i < times.length; i += 500) {
      await store.db
        .insertInto('events')
        .values(times.slice(i, i + 500).map((created_at, j) => ({ account_id: 'a', event_id: i + j + 1, res_id: 'r', method: 'x.on_progress', params: '{}', created_at })))
        .execute();
    }
    // Counts event-loop turns while the prune runs: one DELETE of everything would leave it at 0 or 1.
    let turns = 0;
    let pruning = true;
    const tick = (): void => {
      turns++;
      if (pruning) setImmediate(tick);
    };
    setImmediate(tick);
    const deleted = await pruneOlderThan(store.db, { table: 'events', time: 'created_at' }, 5000, 300);
    pruning = false;
    t.equal(deleted, 2100, 'every row older than the cut-off');
    const left = await store.db.selectFrom('events').select((eb) => [eb.fn.countAll<number>().as('n'), eb.fn.min('created_at').as('oldest')]).executeTakeFirstOrThrow();
    t.same([Number(left.n), Number(left.oldest)], [500, 5000], 'rows at or after the cut-off stay');
    t.ok(turns >= 3, `the event loop turned between chunks (${turns} turns)`);

    await store.db
      .insertInto('resources')
      .values(
        [
          ['live-old', 1, null],
          ['released-old', 0, 10],
          ['released-new', 0, 9000],
        ].map(([res_id, live, released_at]) => ({ res_id: res_id as string, account_id: 'a', node_id: 'n', class: 'ext.duo_callback', process_id: 1, owner_id: 'o', user_data: null, live: live as number, created_at: 1, released_at: released_at as number | null, cdr: null, dialogs: null })),
      )
      .execute();
    t.equal(await pruneOlderThan(store.db, { table: 'resources', time: 'released_at', flag: { column: 'live', equals: 0 } }, 5000), 1);
    const ids = (await store.db.selectFrom('resources').select('res_id').orderBy('res_id').execute()).map((r) => r.res_id);
    t.same(ids, ['live-old', 'released-new'], 'a live resource is never pruned, a recent CDR stays');
  });
}
