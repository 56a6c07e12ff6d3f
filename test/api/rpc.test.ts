import t from 'tap';
import { RpcContract } from '../../lib/api/RpcContract.js';
import type { RpcMessage } from '../support/RpcTestClient.js';
import { startTestServer, startTestServerWithClient } from '../support/startTestServer.js';

const contract = new RpcContract();

const setup = startTestServerWithClient;

const DUO = { to1_uri: '13967446745', to2_uri: '13009347583', user_data: 'crm-42' };

function problems(reply: RpcMessage): Record<string, string> {
  return Object.fromEntries((reply.error?.data?.errors ?? []).map((e) => [e.param, e.message]));
}

t.test('construct by name and by position returns the seed result shape at once', async (t) => {
  const { client } = await setup(t);
  const byName = await client.call('ext.duo_callback.construct', DUO);
  t.match(byName.result, { res_id: /^0\.0\.0-ext\.duo_callback-\d+$/, user_data: 'crm-42', ipsc_info: { process_id: Number } });
  const byPosition = await client.call('ext.duo_callback.construct', [null, '1001', null, '1002', 30, 20, null, 3, null, 'pos']);
  t.match(byPosition.result, { user_data: 'pos' });
  const notify = await client.call('ext.notify_call.construct', [null, '1003', 'prompt.wav', 0, 30, 'n']);
  t.match(notify.result, { res_id: /^0\.0\.0-ext\.notify_call-\d+$/, user_data: 'n' });
  const get = await client.call('sys.resource.get', [(notify.result as { res_id: string }).res_id]);
  t.match(get.result, { class: 'ext.notify_call', state: 'Initiated', parties: [{ party: 1 }] });
  t.same(contract.eventProblems('ext.notify_call.on_released', {}).length > 0, true, 'event schema is live');
});

t.test('sys.resource.get / exists, cancel and its errors', async (t) => {
  const { client, engine } = await setup(t);
  const { result } = await client.call('ext.duo_callback.construct', DUO);
  const resId = (result as { res_id: string }).res_id;
  t.equal((await client.call('sys.resource.exists', { res_id: resId })).result, true);
  await client.waitForEvent('ext.duo_callback.on_progress', resId);
  const leg1 = engine.legs[0]!;
  leg1.answer();
  await client.waitForEvent('ext.duo_callback.on_progress', resId, 3);
  const context = (await client.call('sys.resource.get', { res_id: resId })).result as Record<string, unknown>;
  t.match(context, {
    res_id: resId,
    class: 'ext.duo_callback',
    state: 'Answer1',
    user_data: 'crm-42',
    parties: [{ party: 1, state: 'ANSWERED', sip_status: 200 }, { party: 2, state: 'CREATED' }],
  });
  engine.legs[1]!.answer();
  await client.waitForEvent('ext.duo_callback.on_progress', resId, 5);
  const refused = await client.call('ext.duo_callback.cancel', [resId]);
  t.match(refused.error, { code: -32002, message: 'Invalid state', data: { res_id: resId, state: 'Connected' } });
  leg1.hangUpRemotely();
  await client.waitForEvent('ext.duo_callback.on_released', resId);
  t.equal((await client.call('sys.resource.exists', [resId])).result, false);
  // Released: its final context (issue 9) and its CDR; an unknown id is still not found.
  t.match((await client.call('sys.resource.get', [resId])).result, { res_id: resId, state: 'Released', class: 'ext.duo_callback' });
  t.match((await client.call('sys.cdr.get', [resId])).result, { res_id: resId, released: { res_id: resId }, context: { state: 'Released' } });
  t.match((await client.call('sys.resource.get', ['0.0.0-ext.duo_callback-1'])).error, { code: -32001, data: { res_id: '0.0.0-ext.duo_callback-1' } });
  t.match((await client.call('ext.duo_callback.cancel', [resId])).error, { code: -32001 });

  const second = (await client.call('ext.duo_callback.construct', DUO)).result as { res_id: string };
  t.same((await client.call('ext.duo_callback.cancel', { res_id: second.res_id })).result, null);
  const [released] = await client.waitForEvent('ext.duo_callback.on_released', second.res_id);
  t.match(released!.params, { error: { code: 'cancelled' }, dropped_by: 'sys' });
});

t.test('invalid params: data names each param and why', async (t) => {
  const { client } = await setup(t);
  const cases: Array<[string, unknown, Record<string, RegExp>]> = [
    ['ext.duo_callback.construct', {}, { to1_uri: /is required/, to2_uri: /is required/ }],
    ['ext.duo_callback.construct', { ...DUO, to1_uri: 42 }, { to1_uri: /must be string/ }],
    ['ext.duo_callback.construct', { ...DUO, to1_uri: 'not a uri' }, { to1_uri: /SIP URI .* or a phone number/ }],
    ['ext.duo_callback.construct', { ...DUO, ring_play_mode: 5 }, { ring_play_mode: /one of 0, 1, 2, 3, null/ }],
    ['ext.duo_callback.construct', { ...DUO, max_ring_seconds: 0 }, { max_ring_seconds: />= 1/ }],
    ['ext.duo_callback.construct', { ...DUO, max_answer_seconds: 1.5 }, { max_answer_seconds: /integer/ }],
    ['ext.duo_callback.construct', { ...DUO, colour: 'red' }, { colour: /not a param/ }],
    ['ext.duo_callback.construct', { ...DUO, to2_uri: DUO.to1_uri }, { to2_uri: /same number/ }],
    ['ext.duo_callback.construct', { ...DUO, ring_play_file: 'none.wav' }, { ring_play_file: /does not exist/ }],
    ['ext.duo_callback.construct', { ...DUO, record_file: '../x.wav' }, { record_file: /leaves its folder/ }],
    ['ext.duo_callback.construct', [null, '1', null, '2', 1, 1, null, 0, null, null, null, null, null, null, 'extra'], { params: /at most 14 positional/ }],
    ['ext.duo_callback.construct', { ...DUO, record_file: 'r.wav', record_mode: 3 }, { record_mode: /must be one of 0, 1, 2/ }],
    ['ext.duo_callback.construct', [null, '1', null, '2', 10, 1, null, 0, null, null, 'soon'], { countdown_seconds: /integer/ }],
    ['ext.duo_callback.cancel', {}, { res_id: /is required/ }],
    ['ext.notify_call.construct', { to_uri: [], play_content: 'prompt.wav' }, { to_uri: /fewer than 1/ }],
    ['ext.notify_call.construct', { to_uri: '1', play_content: [['x', 3]] }, { 'play_content[0]': /type 3 is not supported/ }],
    ['ext.notify_call.construct', { to_uri: '1', play_content: 'prompt.wav', play_repeat: -1 }, { play_repeat: />= 0/ }],
    ['sys.subscribe', { event: 'on_everything' }, { event: /one of/ }],
  ];
  for (const [method, params, expected] of cases) {
    const reply = await client.call(method, params);
    t.equal(reply.error?.code, -32602, `${method} ${JSON.stringify(params)} is invalid params`);
    t.match(problems(reply), expected, JSON.stringify(problems(reply)));
  }
});

t.test('protocol errors: parse, invalid request, unknown method, batch, frames', async (t) => {
  const { client, config } = await setup(t);
  t.match(await client.raw('{"jsonrpc": "2.0", "method": '), { id: null, error: { code: -32700 } });
  t.match(await client.raw('{"foo": 1}'), { id: null, error: { code: -32600 } });
  t.match(
    await client.raw('{"jsonrpc": "2.0", "id": 3, "method": "ext.duo_callback.construct", "params": "text"}'),
    { id: 3, error: { code: -32600, data: { reason: 'params must be an object or an array, got a string' } } },
    'params must be structured (JSON-RPC 2.0 §4.2)',
  );
  t.match(await client.call('ext.nothing.here', {}), { error: { code: -32601 } });
  t.match(await client.raw('[]'), { id: null, error: { code: -32600 } }, 'empty batch');
  const batch = await client.raw(
    JSON.stringify([
      { jsonrpc: '2.0', id: 'a', method: 'sys.resource.exists', params: ['0.0.0-ext.notify_call-1'] },
      { jsonrpc: '2.0', method: 'sys.resource.exists', params: ['x'] },
      { jsonrpc: '2.0', id: 'b', method: 'nope' },
      { jsonrpc: '2.0', id: 'c', method: 'ext.notify_call.construct', params: { to_uri: '1', play_content: 'prompt.wav' } },
    ]),
  );
  t.ok(Array.isArray(batch), 'a batch gets an array');
  const byId = Object.fromEntries((batch as RpcMessage[]).map((r) => [r.id, r]));
  t.equal((batch as RpcMessage[]).length, 3, 'no reply for the notification inside the batch');
  t.equal(byId.a?.result, false);
  t.equal(byId.b?.error?.code, -32601);
  t.match(byId.c?.result, { res_id: /ext\.notify_call/ });
  client.send(JSON.stringify({ jsonrpc: '2.0', method: 'sys.resource.exists', params: ['x'] }));
  client.send(JSON.stringify([{ jsonrpc: '2.0', method: 'sys.resource.exists', params: ['x'] }]));
  t.match(await client.raw(Buffer.from('{}'), true), { error: { code: -32600, data: { reason: /binary/ } } });
  const big = JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'sys.resource.exists', params: ['x'.repeat(config.listen.maxFrameBytes)] });
  t.match(await client.raw(big), { id: null, error: { code: -32600, data: { reason: /exceeds the limit/ } } });
  t.equal(client.unclaimedReplies, 0, 'notifications got no reply');
  t.equal((await client.call('sys.resource.exists', ['x'])).result, false, 'connection still serves requests');
});

t.test('rpc.discover returns the OpenRPC document', async (t) => {
  const { client } = await setup(t);
  const reply = await client.call('rpc.discover');
  t.match(reply.result, { openrpc: /^1\./, methods: Array });
  t.same((reply.result as { methods: Array<{ name: string }> }).methods.map((m) => m.name), contract.document.methods.map((m) => m.name));
});

t.test('project errors: engine unavailable, capacity exceeded', async (t) => {
  const { client, engine } = await setup(t, { CTI_LIMITS__MAX_RESOURCES: '1' });
  engine.available = false;
  t.match(await client.call('ext.duo_callback.construct', DUO), { error: { code: -32005, message: 'Engine unavailable', data: { engine: 'scripted' } } });
  engine.available = true;
  t.ok((await client.call('ext.duo_callback.construct', DUO)).result);
  t.match(await client.call('ext.duo_callback.construct', DUO), { error: { code: -32003, message: 'Capacity exceeded' } });
});

t.test('events reach the owner and subscribers; events match the schema', async (t) => {
  const ts = await setup(t);
  const { client: owner, engine } = ts;
  const watcher = await ts.connect();
  const releasedOnly = await ts.connect();
  const stranger = await ts.connect();
  t.teardown(() => Promise.all([watcher.close(), releasedOnly.close(), stranger.close()]));
  t.match((await watcher.call('sys.subscribe', { class: 'ext.duo_callback' })).result, { subscription_id: String });
  await watcher.call('sys.subscribe', {}); // overlaps: still one copy of each event
  await releasedOnly.call('sys.subscribe', [null, 'on_released', null]);

  const { res_id } = (await owner.call('ext.duo_callback.construct', DUO)).result as { res_id: string };
  await owner.waitForEvent('ext.duo_callback.on_progress', res_id);
  engine.legs[0]!.answer();
  engine.legs[0]!.hangUpRemotely();
  const [released] = await owner.waitForEvent('ext.duo_callback.on_released', res_id);
  await watcher.waitForEvent('ext.duo_callback.on_released', res_id);
  await releasedOnly.waitForEvent('ext.duo_callback.on_released', res_id);
  t.same(watcher.notifications, owner.notifications, 'subscriber sees exactly what the owner sees');
  t.equal(releasedOnly.notifications.length, 1, 'event filter applied');
  t.equal(stranger.notifications.length, 0, 'no subscription, no events');
  t.match(released!.params, { res_id, error: null, dropped_by: 'usr', user_data: 'crm-42' });
  for (const n of owner.notifications) t.same(contract.eventProblems(n.method!, n.params), [], `${n.method} matches the schema`);
});

t.test('subscribe by res_id, unsubscribe', async (t) => {
  const ts = await setup(t);
  const watcher = await ts.connect();
  t.teardown(() => watcher.close());
  const a = (await ts.client.call('ext.notify_call.construct', { to_uri: '1', play_content: 'prompt.wav' })).result as { res_id: string };
  const b = (await ts.client.call('ext.notify_call.construct', { to_uri: '2', play_content: 'prompt.wav' })).result as { res_id: string };
  const sub = (await watcher.call('sys.subscribe', { res_id: b.res_id })).result as { subscription_id: string };
  await ts.client.waitForEvent('ext.notify_call.on_progress', b.res_id);
  ts.engine.legs[0]!.reject(486);
  ts.engine.legs[1]!.reject(404);
  await watcher.waitForEvent('ext.notify_call.on_released', b.res_id);
  t.equal(watcher.events('ext.notify_call.on_released', a.res_id).length, 0);
  t.equal((await watcher.call('sys.unsubscribe', [sub.subscription_id])).result, true);
  t.equal((await watcher.call('sys.unsubscribe', [sub.subscription_id])).result, false);
});

t.test('a resource outlives its owner\'s connection; subscribers still get its events', async (t) => {
  const ts = await setup(t);
  const owner = await ts.connect();
  const watcher = await ts.connect();
  t.teardown(() => watcher.close());
  await watcher.call('sys.subscribe', {});
  const { res_id } = (await owner.call('ext.duo_callback.construct', DUO)).result as { res_id: string };
  await owner.waitForEvent('ext.duo_callback.on_progress', res_id);
  await owner.close();
  ts.engine.legs[0]!.answer();
  ts.engine.legs[1]!.answer();
  await watcher.waitForEvent('ext.duo_callback.on_progress', res_id, 5);
  t.match((await watcher.call('sys.resource.get', [res_id])).result, { state: 'Connected' });
  ts.engine.legs[1]!.hangUpRemotely();
  const [released] = await watcher.waitForEvent('ext.duo_callback.on_released', res_id);
  t.match(released!.params, { error: null, dropped_by: 'usr' });
});

t.test('stopping the server releases every live resource before closing connections', async (t) => {
  const ts = await startTestServer();
  const client = await ts.connect();
  const ids: string[] = [];
  for (const to of ['1', '2', '3']) {
    ids.push(((await client.call('ext.notify_call.construct', { to_uri: to, play_content: 'prompt.wav' })).result as { res_id: string }).res_id);
  }
  await client.waitForEvent('ext.notify_call.on_progress', undefined, 3);
  ts.engine.legs[0]!.answer();
  const closed = new Promise((resolve) => client.socket.once('close', (code) => resolve(code)));
  await ts.stop();
  t.equal(await closed, 1001, 'going away');
  for (const id of ids) {
    t.match(client.events('ext.notify_call.on_released', id), [{ params: { error: { code: 'cancelled', message: 'server shutting down' } } }]);
  }
  t.ok(ts.engine.legs.every((l) => l.ended), 'every call hung up');
});
