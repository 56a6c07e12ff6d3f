import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RpcMessage } from '../support/RpcTestClient.js';
import { startTestServerWithClient } from '../support/startTestServer.js';

/** `seconds` of silence as an 8 kHz 16-bit mono PCM WAV. */
function wav(seconds: number): Buffer {
  const bytes = seconds * 16_000;
  const h = Buffer.alloc(44);
  h.write('RIFF', 0);
  h.writeUInt32LE(36 + bytes, 4);
  h.write('WAVEfmt ', 8);
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20);
  h.writeUInt16LE(1, 22);
  h.writeUInt32LE(8000, 24);
  h.writeUInt32LE(16_000, 28);
  h.writeUInt16LE(2, 32);
  h.writeUInt16LE(16, 34);
  h.write('data', 36);
  h.writeUInt32LE(bytes, 40);
  return Buffer.concat([h, Buffer.alloc(bytes)]);
}

const setup = startTestServerWithClient;

const problems = (reply: RpcMessage): Record<string, string> =>
  Object.fromEntries((reply.error?.data?.errors ?? []).map((e) => [e.param, e.message]));

t.test('batches: [null], [], one element, over the limit', async (t) => {
  const { client } = await setup(t, { CTI_LISTEN__MAX_BATCH_LENGTH: '5' });
  t.same(await client.raw('[null]'), [{ jsonrpc: '2.0', id: null, error: { code: -32600, message: 'Invalid Request', data: { reason: 'a request must be an object, got null' } } }]);
  t.same(await client.raw('[]'), { jsonrpc: '2.0', id: null, error: { code: -32600, message: 'Invalid Request', data: { reason: 'an empty batch' } } });
  t.same(await client.raw('[{"jsonrpc":"2.0","id":1,"method":"sys.resource.exists","params":["x"]}]'), [{ jsonrpc: '2.0', id: 1, result: false }], 'one reply, still an array');
  const six = JSON.stringify(Array.from({ length: 6 }, (_, i) => ({ jsonrpc: '2.0', id: i, method: 'ext.notify_call.construct', params: { to_uri: '1', play_content: 'prompt.wav' } })));
  t.same(await client.raw(six), { jsonrpc: '2.0', id: null, error: { code: -32600, message: 'Invalid Request', data: { reason: 'a batch of 6 requests exceeds the limit of 5' } } });
});

t.test('JSON-RPC 2.0 envelope answers of issue 7 point 9', async (t) => {
  const { client, engine } = await setup(t);
  for (const method of ['1', 'null', '[]', '{}']) {
    t.match(await client.raw(`{"jsonrpc":"2.0","id":7,"method":${method}}`), { id: 7, error: { code: -32600 } }, `method ${method}`);
  }
  for (const text of ['false', '0', 'null', '""']) t.match(await client.raw(text), { id: null, error: { code: -32600 } }, text);
  for (const id of ['{}', '[1]', 'true']) {
    const frame = `{"jsonrpc":"2.0","id":${id},"method":"ext.notify_call.construct","params":{"to_uri":"1","play_content":"prompt.wav"}}`;
    t.same(await client.raw(frame), { jsonrpc: '2.0', id: null, error: { code: -32600, message: 'Invalid Request', data: { reason: `id must be a string, number or null, got ${id === 'true' ? 'a boolean' : id === '{}' ? 'an object' : 'an array'}` } } });
  }
  const deepId = `${'['.repeat(5000)}1${']'.repeat(5000)}`;
  t.match(await client.raw(`{"jsonrpc":"2.0","id":${deepId},"method":"rpc.discover"}`), { id: null, error: { code: -32600 } }, 'an id nested 5,000 deep');
  t.equal(engine.legs.length, 0, 'no method ran for a bad id');
});

t.test('subscriptions per connection are capped; the cap is named', async (t) => {
  const { client, connect } = await setup(t, { CTI_LIMITS__MAX_SUBSCRIPTIONS_PER_CONNECTION: '3' });
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) ids.push(((await client.call('sys.subscribe', {})).result as { subscription_id: string }).subscription_id);
  const refused = await client.call('sys.subscribe', { class: 'ext.notify_call' });
  t.match(refused.error, { code: -32003, message: 'Capacity exceeded', data: { limit: '3 subscriptions per connection (limits.maxSubscriptionsPerConnection)' } });
  t.equal((await client.call('sys.unsubscribe', [ids[0]])).result, true);
  t.ok((await client.call('sys.subscribe', {})).result, 'room again after an unsubscribe');
  const other = await connect();
  t.teardown(() => other.close());
  t.ok((await other.call('sys.subscribe', {})).result, 'per connection, not global');
});

t.test('play list length and total play time are capped (play_content × play_repeat)', async (t) => {
  const { client, config } = await setup(t, { CTI_LIMITS__MAX_PLAY_FILES: '10', CTI_LIMITS__MAX_PLAY_SECONDS: '600' });
  writeFileSync(join(config.mediaDir, 'minute.wav'), wav(60));
  writeFileSync(join(config.mediaDir, 'raw.bin'), Buffer.alloc(8000 * 700)); // no header: counted at 8000 bytes/s = 700 s
  const call = (params: Record<string, unknown>) => client.call('ext.notify_call.construct', { to_uri: '1', ...params });

  t.match(problems(await call({ play_content: [['minute.wav|'.repeat(11), 7]] })), { play_content: 'names 11 files; the limit is 10' });
  t.ok((await call({ play_content: 'minute.wav', play_repeat: 9 })).result, '60 s × 10 = the limit exactly');
  t.same(problems(await call({ play_content: 'minute.wav', play_repeat: 10 })), {
    play_content: "plays 60 s × 11 = 660 s, over this server's limit of 600 s",
    play_repeat: "plays 60 s × 11 = 660 s, over this server's limit of 600 s",
  });
  t.same(Object.keys(problems(await call({ play_content: 'raw.bin', play_repeat: 0 }))), ['play_content'], 'the prompt alone is too long');
  // Issue 7: the same file 4,710 times in one request.
  const many = Array.from({ length: 64 }, () => ['minute.wav|'.repeat(73).slice(0, -1), 7]);
  t.match(problems(await call({ play_content: many })), { play_content: 'names 4672 files; the limit is 10' });
});

t.test('ext.notify_call.cancel over JSON-RPC: any state, then not found; the class is checked', async (t) => {
  const { client, engine } = await setup(t);
  const construct = async () => ((await client.call('ext.notify_call.construct', { to_uri: '1', play_content: 'prompt.wav' })).result as { res_id: string }).res_id;
  const ringing = await construct();
  await client.waitForEvent('ext.notify_call.on_progress', ringing);
  engine.legs[0]!.ring();
  t.same((await client.call('ext.notify_call.cancel', [ringing])).result, null);
  const playing = await construct();
  await client.waitForEvent('ext.notify_call.on_progress', playing);
  engine.legs[1]!.answer();
  await client.waitForEvent('ext.notify_call.on_progress', playing, 2);
  t.same((await client.call('ext.notify_call.cancel', { res_id: playing })).result, null);
  for (const id of [ringing, playing]) {
    const [released] = await client.waitForEvent('ext.notify_call.on_released', id);
    t.match(released!.params, { error: { code: 'cancelled', message: 'cancelled by the application' }, dropped_by: 'sys' });
    t.match((await client.call('ext.notify_call.cancel', [id])).error, { code: -32001, data: { res_id: id } });
  }
  const duo = ((await client.call('ext.duo_callback.construct', { to1_uri: '1', to2_uri: '2' })).result as { res_id: string }).res_id;
  t.match((await client.call('ext.notify_call.cancel', [duo])).error, { code: -32001 });
  t.match((await client.call('ext.duo_callback.cancel', [duo])).result, null);
});
