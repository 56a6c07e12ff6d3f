// Per-account limits at construct (issue 8): live resources, construct rate,
// allowed gateways, allowed caller ids — read from the account at each construct.
import t, { type Test } from 'tap';
import type { AccountLimits } from '../../lib/accounts/Account.js';
import type { RpcMessage } from '../support/RpcTestClient.js';
import { RpcTestClient } from '../support/RpcTestClient.js';
import { startTestServer } from '../support/startTestServer.js';

const NOTIFY = { to_uri: '1001', play_content: 'prompt.wav' };
const DUO = { to1_uri: '1001', to2_uri: '1002' };

async function accountWith(t: Test, limits: Partial<AccountLimits>) {
  const ts = await startTestServer();
  const key = await ts.accounts.create('limited', limits);
  const client = await RpcTestClient.connect(ts.url, key);
  t.teardown(async () => {
    await client.close();
    await ts.stop();
  });
  return { ts, client };
}

const problems = (reply: RpcMessage) => Object.fromEntries((reply.error?.data?.errors ?? []).map((e) => [e.param, e.message]));

t.test('live resources: -32003 naming the account limit; room again after a release', async (t) => {
  const { ts, client } = await accountWith(t, { maxLiveResources: 2 });
  const first = (await client.call('ext.notify_call.construct', NOTIFY)).result as { res_id: string };
  t.ok((await client.call('ext.duo_callback.construct', DUO)).result);
  t.match(await client.call('ext.notify_call.construct', NOTIFY), {
    error: { code: -32003, message: 'Capacity exceeded', data: { limit: 'account limited: 2 live resources', reason: /its limit/ } },
  });
  t.equal(ts.engine.legs.length, 2, 'the refused one dialled nothing');
  await client.waitForEvent('ext.notify_call.on_progress', first.res_id);
  ts.engine.legs[0]!.hangUpRemotely();
  await client.waitForEvent('ext.notify_call.on_released', first.res_id);
  t.ok((await client.call('ext.notify_call.construct', NOTIFY)).result, 'room again');
  await ts.accounts.setLimits('limited', { maxLiveResources: null });
  t.ok((await client.call('ext.notify_call.construct', NOTIFY)).result, 'a changed limit applies to the next construct');
});

t.test('construct rate: -32006 with retry_after_ms, then allowed again', async (t) => {
  const { client } = await accountWith(t, { constructsPerSecond: 3 });
  const replies = await Promise.all(Array.from({ length: 5 }, () => client.call('ext.notify_call.construct', NOTIFY)));
  t.equal(replies.filter((r) => r.result).length, 3, '3 in the window');
  const limited = replies.filter((r) => r.error);
  t.equal(limited.length, 2);
  for (const r of limited) {
    t.match(r.error, { code: -32006, message: 'Rate limited', data: { retry_after_ms: Number, reason: /3 resources per second/ } });
    t.ok((r.error!.data!.retry_after_ms as number) > 0 && (r.error!.data!.retry_after_ms as number) <= 1000);
  }
  await new Promise((resolve) => setTimeout(resolve, (limited[0]!.error!.data!.retry_after_ms as number) + 50));
  t.ok((await client.call('ext.notify_call.construct', NOTIFY)).result, 'allowed after retry_after_ms');
});

t.test('gateways: only the listed ones, else -32602 naming the param', async (t) => {
  const { ts, client } = await accountWith(t, { gateways: ['gw1'] });
  t.ok((await client.call('ext.notify_call.construct', { ...NOTIFY, to_uri: 'sip:1001@gw1' })).result, 'gw1 allowed');
  t.ok((await client.call('ext.notify_call.construct', NOTIFY)).result, 'bare numbers go to the default gateway gw1');
  const duo = await client.call('ext.duo_callback.construct', { to1_uri: '1001', to2_uri: 'sip:1002@gw2' });
  t.equal(duo.error?.code, -32602);
  t.match(problems(duo), { to2_uri: /gateway 'gw2' is not allowed for this account/ });
  t.notOk('to1_uri' in problems(duo));
  t.match(problems(await client.call('ext.notify_call.construct', { ...NOTIFY, to_uri: ['sip:1@gw2', '2'] })), { 'to_uri[0]': /gw2/ });
  const before = ts.engine.legs.length;
  await ts.accounts.setLimits('limited', { gateways: [] });
  t.match(problems(await client.call('ext.notify_call.construct', NOTIFY)), { to_uri: /gw1/ }, 'an empty list allows none');
  await new Promise((r) => setImmediate(r));
  t.equal(ts.engine.legs.length, before, 'nothing dialled');
});

t.test('caller ids: from*_uri must present one of the account\'s numbers', async (t) => {
  const { ts, client } = await accountWith(t, { callerIds: ['075500001111', '4000'] });
  t.ok((await client.call('ext.notify_call.construct', { ...NOTIFY, from_uri: '075500001111' })).result, 'a listed number');
  t.ok((await client.call('ext.notify_call.construct', { ...NOTIFY, from_uri: 'sip:4000@gw2.example' })).result, 'a listed user part in a URI');
  t.ok((await client.call('ext.notify_call.construct', { ...NOTIFY, from_uri: 'sip:4000@evil.example.com' })).result, 'a listed user part at a foreign host');
  await new Promise((r) => setImmediate(r));
  t.match(ts.engine.legs.at(-1)!.request.fromUri, /^sip:4000@/, 'the caller id is kept');
  t.notMatch(ts.engine.legs.at(-1)!.request.fromUri, /evil/, "but the From host is the gateway's, never the client's");
  t.ok((await client.call('ext.notify_call.construct', NOTIFY)).result, "omitted: the gateway's caller id");
  const spoof = await client.call('ext.duo_callback.construct', { ...DUO, from1_uri: '4000', from2_uri: '110' });
  t.equal(spoof.error?.code, -32602);
  t.match(problems(spoof), { from2_uri: /not one of this account's caller ids/ });
  t.notOk('from1_uri' in problems(spoof), 'the allowed one is not named');
  t.match(problems(await client.call('ext.notify_call.construct', { ...NOTIFY, from_uri: 'sip:gw1' })), { from_uri: /must present a caller id/ }, 'no user part');
  const malformed = await client.call('ext.notify_call.construct', { ...NOTIFY, from_uri: 'sip:4000@gw1;x=<' });
  t.equal(malformed.error?.code, -32602, 'a malformed from_uri is invalid params, not an internal error');
  t.match(problems(malformed), { from_uri: /RFC 3261/ });
  t.match(problems(await client.call('ext.notify_call.construct', { ...NOTIFY, from_uri: '4000#' })), { from_uri: /caller ids/ }, "a '#' suffix is another caller id");
  await ts.accounts.setLimits('limited', { callerIds: [] });
  t.match(problems(await client.call('ext.notify_call.construct', { ...NOTIFY, from_uri: '4000' })), { from_uri: /must be omitted/ });
  t.ok((await client.call('ext.notify_call.construct', NOTIFY)).result, 'an empty list still allows the gateway caller id');
  const froms = ts.engine.legs.map((l) => l.request.fromUri);
  t.ok(froms.every((f) => /^sip:(075500001111|4000|075589877675)@/.test(f)), `only allowed caller ids reached the engine: ${froms.join(' ')}`);
});
