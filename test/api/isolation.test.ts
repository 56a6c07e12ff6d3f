// Tenant isolation (issue 8): every method tried by account B on account A's
// resources and subscriptions answers as if they did not exist, and events
// never cross accounts — with a second connection of A as the positive control.
import t from 'tap';
import { RpcContract } from '../../lib/api/RpcContract.js';
import type { RpcMessage } from '../support/RpcTestClient.js';
import { RpcTestClient } from '../support/RpcTestClient.js';
import { startTestServer } from '../support/startTestServer.js';
import { storeBackends } from '../support/storeBackends.js';

const contract = new RpcContract();
const DUO = { to1_uri: '13967446745', to2_uri: '13009347583', user_data: 'a-secret' };
const NOTIFY = { to_uri: '13500000000', play_content: 'prompt.wav', user_data: 'a-notify' };

/** The error with the id it names replaced, so two answers compare as shapes. */
function shape(reply: RpcMessage, resId: string): unknown {
  return JSON.parse(JSON.stringify(reply.error ?? reply.result).replaceAll(resId, '<res_id>'));
}

// Accounts come from the real AccountStore, on each database.
for (const backend of storeBackends(t)) {
  t.test(`${backend.name}: account B sees, cancels and hears nothing of account A`, async (t) => {
    const ts = await startTestServer({ store: await backend.newStore() });
    const keyB = await ts.accounts.create('beta');
    const a = await ts.connect();
    const aWatcher = await ts.connect();
    const b = await RpcTestClient.connect(ts.url, keyB);
    const bUnauthenticated = await RpcTestClient.connect(ts.url, null);
    t.teardown(async () => {
      for (const c of [a, aWatcher, b, bUnauthenticated]) await c.close();
      await ts.stop();
    });
    t.same((await bUnauthenticated.call('sys.authenticate', [keyB])).result, { account_id: 'beta' });

    // Subscriptions first, so every event of A's resources is routed.
    for (const c of [aWatcher, b, bUnauthenticated]) t.ok((await c.call('sys.subscribe', {})).result, 'subscribed to everything');
    const duo = ((await a.call('ext.duo_callback.construct', DUO)).result as { res_id: string }).res_id;
    const notify = ((await a.call('ext.notify_call.construct', NOTIFY)).result as { res_id: string }).res_id;
    for (const c of [b, bUnauthenticated]) {
      t.ok((await c.call('sys.subscribe', { res_id: duo })).result, "B subscribes to A's res_id by name");
      t.ok((await c.call('sys.subscribe', { class: 'ext.notify_call' })).result);
    }
    const aSubscription = ((await aWatcher.call('sys.subscribe', { res_id: notify })).result as { subscription_id: string }).subscription_id;

    // A's far ends ring and answer: progress events flow.
    await a.waitForEvent('ext.duo_callback.on_progress', duo);
    await a.waitForEvent('ext.notify_call.on_progress', notify);
    ts.engine.legs[0]!.answer();
    await a.waitForEvent('ext.duo_callback.on_progress', duo, 3);

    const unknownDuo = duo.replace(/\d+$/, (n) => String(Number(n) + 1_000_000));
    const unknownNotify = notify.replace(/\d+$/, (n) => String(Number(n) + 1_000_000));
    const methods: Array<[string, (id: string) => unknown]> = [
      ['sys.resource.get', (id) => [id]],
      ['sys.resource.exists', (id) => ({ res_id: id })],
      ['ext.duo_callback.cancel', (id) => [id]],
      ['ext.notify_call.cancel', (id) => ({ res_id: id })],
    ];
    for (const [method, params] of methods) {
      for (const [mine, unknown] of [[duo, unknownDuo], [notify, unknownNotify]] as const) {
        const asB = await b.call(method, params(mine));
        const asUnknown = await b.call(method, params(unknown));
        t.same(shape(asB, mine), shape(asUnknown, unknown), `${method} on A's ${mine.split('-')[1]}: exactly as an unknown id (${JSON.stringify(asB.error ?? asB.result)})`);
        t.notOk(JSON.stringify(asB).includes('a-secret') || JSON.stringify(asB).includes('a-notify'), 'no user_data leaks');
      }
    }
    t.equal((await b.call('sys.resource.exists', [duo])).result, false);
    t.match((await b.call('sys.resource.get', [duo])).error, { code: -32001, message: 'Resource not found' });
    t.equal((await b.call('sys.unsubscribe', [aSubscription])).result, false, "B cannot end A's subscription");

    // A itself (another connection of the same account) sees all of it.
    t.match((await aWatcher.call('sys.resource.get', [duo])).result, { res_id: duo, state: 'Answer1', user_data: 'a-secret' });
    t.equal((await aWatcher.call('sys.resource.exists', [notify])).result, true);

    // Still live after B's cancels: A cancels its own.
    t.same((await a.call('ext.duo_callback.cancel', [duo])).result, null, 'A cancels its own duo_callback');
    await a.waitForEvent('ext.duo_callback.on_released', duo);
    ts.engine.legs.find((l) => l.request.requestUri.includes('13500000000'))!.hangUpRemotely();
    await a.waitForEvent('ext.notify_call.on_released', notify);
    await aWatcher.waitForEvent('ext.notify_call.on_released', notify);
    t.ok(aWatcher.events('ext.duo_callback.on_progress', duo).length >= 3, "A's watcher got A's events");
    t.equal((await aWatcher.call('sys.unsubscribe', [aSubscription])).result, true, 'A can end its subscription');

    // B constructs too: its events go to B's connections only.
    const bNotify = ((await b.call('ext.notify_call.construct', { ...NOTIFY, user_data: 'b' })).result as { res_id: string }).res_id;
    await b.waitForEvent('ext.notify_call.on_progress', bNotify);
    await bUnauthenticated.waitForEvent('ext.notify_call.on_progress', bNotify);
    t.equal((await a.call('sys.resource.exists', [bNotify])).result, false, "A cannot see B's resource");

    await new Promise((r) => setTimeout(r, 100));
    const crossed = (c: RpcTestClient, ids: string[]) => c.notifications.filter((n) => ids.includes(n.params?.res_id as string));
    t.same(crossed(b, [duo, notify]), [], "B's connection received none of A's events");
    t.same(crossed(bUnauthenticated, [duo, notify]), [], 'nor did the one authenticated by sys.authenticate');
    t.same(crossed(a, [bNotify]), [], "A received none of B's");
    t.same(crossed(aWatcher, [bNotify]), [], "A's catch-all subscription saw none of B's");
    for (const n of [...a.notifications, ...b.notifications]) t.same(contract.eventProblems(n.method!, n.params ?? {}), [], `${n.method} valid`);
  });
}

t.test('the server-wide resource limit still counts every account; the per-account one only its own', async (t) => {
  const ts = await startTestServer({ env: { CTI_LIMITS__MAX_RESOURCES: '3' } });
  const keyB = await ts.accounts.create('beta', { maxLiveResources: 1 });
  const a = await ts.connect();
  const b = await RpcTestClient.connect(ts.url, keyB);
  t.teardown(async () => {
    await a.close();
    await b.close();
    await ts.stop();
  });
  t.ok((await b.call('ext.notify_call.construct', NOTIFY)).result);
  t.match(await b.call('ext.notify_call.construct', NOTIFY), { error: { code: -32003, data: { limit: 'account beta: 1 live resources' } } });
  t.ok((await a.call('ext.notify_call.construct', NOTIFY)).result, "B's limit does not hold A back");
  t.ok((await a.call('ext.notify_call.construct', NOTIFY)).result);
  t.match(await a.call('ext.notify_call.construct', NOTIFY), { error: { code: -32003, data: { limit: '3 live resources' } } });
});
