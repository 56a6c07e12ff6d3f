import t, { type Test } from 'tap';
import type { RpcMessage } from '../support/RpcTestClient.js';
import { startTestServerWithClient } from '../support/startTestServer.js';

const setup = (t: Test) => startTestServerWithClient(t);

const DUO = { to1_uri: '13900000001', to2_uri: '13900000002' };

function refusedParams(reply: RpcMessage): string[] {
  return reply.error?.code === -32602 ? (reply.error.data?.errors ?? []).map((e) => e.param) : [`not -32602: ${JSON.stringify(reply)}`];
}

/** Issue 7 point 1, one test per example: each is -32602 naming the param, and nothing is dialled. */
const EXAMPLES: Array<[string, string, Record<string, unknown>]> = [
  ['U+010D U+010A header injection in from1_uri', 'from1_uri', { ...DUO, from1_uri: 'sip:a@gw' + '\u010d\u010a' + 'X-Evil:\u0120 1' }],
  ['the same in to1_uri (request line rewrite)', 'to1_uri', { ...DUO, to1_uri: 'sip:1000@gw1' + '\u010d\u010a' + 'X-Evil:\u0120 1' }],
  ['Content-Length: 0 plus a blank line', 'to1_uri', { ...DUO, to1_uri: 'sip:1000@gw1\u010d\u010aContent-Length:\u0120 0\u010d\u010a\u010d\u010a' }],
  ['raw CR LF', 'from2_uri', { ...DUO, from2_uri: 'sip:1000@gw1\r\nX-Evil: 1' }],
  ['a NUL', 'to2_uri', { ...DUO, to2_uri: 'sip:10\u000000@gw1' }],
  ['sip:%ZZ@gw', 'to1_uri', { ...DUO, to1_uri: 'sip:%ZZ@gw1' }],
  ['a truncated %E0%A4%A escape', 'to1_uri', { ...DUO, to1_uri: 'sip:%E0%A4%A@gw1' }],
  ['%0d%0a', 'to2_uri', { ...DUO, to2_uri: 'sip:1000%0d%0aX-Evil:%201@gw1' }],
  ['%0d%0a in a caller id', 'from1_uri', { ...DUO, from1_uri: 'sip:1000%0D%0A@gw1' }],
  ['sips: (no TLS here)', 'to1_uri', { ...DUO, to1_uri: 'sips:1000@gw1' }],
];

for (const [name, param, params] of EXAMPLES) {
  t.test(`${name}: -32602 naming ${param}, decided at construct`, async (t) => {
    const { client, engine } = await setup(t);
    const reply = await client.call('ext.duo_callback.construct', params);
    t.same(refusedParams(reply), [param]);
    t.equal(engine.legs.length, 0, 'nothing dialled');
  });
}

t.test('notify_call: the same rules for to_uri (each list entry) and from_uri', async (t) => {
  const { client } = await setup(t);
  const bad = 'sip:1000%0a@gw1';
  t.same(refusedParams(await client.call('ext.notify_call.construct', { to_uri: bad, play_content: 'prompt.wav' })), ['to_uri']);
  t.same(refusedParams(await client.call('ext.notify_call.construct', { to_uri: ['1000', bad], play_content: 'prompt.wav' })), ['to_uri[1]']);
  t.same(refusedParams(await client.call('ext.notify_call.construct', { to_uri: '1000', from_uri: 'sips:1@gw1', play_content: 'prompt.wav' })), ['from_uri']);
  const sips = await client.call('ext.notify_call.construct', { to_uri: 'sips:1000@gw1', play_content: 'prompt.wav' });
  t.match(sips.error?.data?.errors, [{ param: 'to_uri', message: /sips: needs TLS/ }]);
});

t.test('valid escapes stay escaped on the wire; # is escaped; nothing outside printable ASCII reaches the engine', async (t) => {
  const { client, engine } = await setup(t);
  const reply = await client.call('ext.duo_callback.construct', {
    to1_uri: 'sip:%31%32%e0%a4%a4;x@gw1',
    from1_uri: 'sip:caller%3Bid@example.com;user=phone',
    to2_uri: '*88#',
    from2_uri: '+8613900000000',
  });
  t.ok(reply.result, JSON.stringify(reply.error));
  await client.waitForEvent('ext.duo_callback.on_progress');
  const first = engine.legs[0]!.request;
  t.equal(first.requestUri, 'sip:12%E0%A4%A4;x@192.0.2.10:5060', 'unreserved escapes decoded, others kept (RFC 3261 §19.1.4)');
  t.equal(first.fromUri, 'sip:caller%3Bid@192.0.2.10', "the escaped caller id kept; host and params are the gateway's");
  engine.legs[0]!.answer();
  await client.waitForEvent('ext.duo_callback.on_progress', undefined, 3);
  const second = engine.legs[1]!.request;
  t.equal(second.requestUri, 'sip:*88%23@192.0.2.10:5060');
  t.equal(second.fromUri, 'sip:+8613900000000@192.0.2.10');
  for (const r of [first, second]) t.match(`${r.requestUri}${r.fromUri}`, /^[!-~]+$/, 'printable ASCII only');
});

t.test('two spellings of the same number are the same party', async (t) => {
  const { client } = await setup(t);
  const reply = await client.call('ext.duo_callback.construct', { to1_uri: 'sip:1000@gw1', to2_uri: 'sip:%31000@gw1' });
  t.match(reply.error?.data?.errors, [{ param: 'to2_uri', message: /same number/ }]);
});
