// Authentication at the WebSocket (issue 8): Bearer key at the upgrade or
// sys.authenticate, what an unauthenticated connection may do, bad / revoked /
// missing keys, disabled accounts, brute force throttling, Origin, timeout.
import t, { type Test } from 'tap';
import { RpcTestClient, UpgradeRefused } from '../support/RpcTestClient.js';
import type { StoreConfig } from '../../lib/config/ServerConfig.js';
import { startTestServer } from '../support/startTestServer.js';
import { storeBackends } from '../support/storeBackends.js';

const NOTIFY = { to_uri: '1001', play_content: 'prompt.wav' };
/** Every method an unauthenticated connection must be refused, with valid params. */
const GUARDED: Array<[string, unknown]> = [
  ['ext.duo_callback.construct', { to1_uri: '1001', to2_uri: '1002' }],
  ['ext.duo_callback.cancel', ['0.0.0-ext.duo_callback-1']],
  ['ext.notify_call.construct', NOTIFY],
  ['ext.notify_call.cancel', ['0.0.0-ext.notify_call-1']],
  ['sys.resource.get', ['0.0.0-ext.duo_callback-1']],
  ['sys.resource.exists', ['0.0.0-ext.duo_callback-1']],
  ['sys.subscribe', {}],
  ['sys.unsubscribe', ['abc']],
];

async function server(t: Test, env: Record<string, string> = {}, store?: StoreConfig) {
  const ts = await startTestServer({ env, ...(store ? { store } : {}) });
  const clients: RpcTestClient[] = [];
  t.teardown(async () => {
    for (const c of clients) await c.close();
    await ts.stop();
  });
  const open = async (key: string | null, headers: Record<string, string> = {}) => {
    const c = await RpcTestClient.connect(ts.url, key, headers);
    clients.push(c);
    return c;
  };
  return { ...ts, open };
}

async function refusal(t: Test, connecting: Promise<unknown>): Promise<UpgradeRefused> {
  const err = await connecting.then(
    () => new Error('the upgrade was accepted'),
    (e: unknown) => e,
  );
  t.type(err, UpgradeRefused, String(err));
  return err as UpgradeRefused;
}

t.test('without a key only rpc.discover and sys.authenticate work; then everything does', async (t) => {
  const ts = await server(t);
  const client = await ts.open(null);
  t.match((await client.call('rpc.discover')).result, { openrpc: String });
  for (const [method, params] of GUARDED) {
    t.match(await client.call(method, params), { error: { code: -32004, message: 'Unauthorized', data: { reason: /authenticate first/ } } }, `${method} refused`);
  }
  t.equal(ts.engine.legs.length, 0, 'nothing dialled');
  t.same((await client.call('sys.authenticate', { api_key: ts.apiKey })).result, { account_id: ts.accountId });
  const reply = await client.call('ext.notify_call.construct', NOTIFY);
  const resId = (reply.result as { res_id: string }).res_id;
  t.ok(resId, 'construct works once authenticated');
  await client.waitForEvent('ext.notify_call.on_progress', resId);
  t.pass('and its events arrive');
  t.same((await client.call('sys.authenticate', [ts.apiKey])).result, { account_id: ts.accountId }, 'again with a key of the same account: same answer');
  const otherKey = await ts.accounts.create('other');
  t.match(await client.call('sys.authenticate', [otherKey]), { error: { code: -32002 } }, 'a key of another account cannot rebind the connection');
});

t.test('a Bearer key at the upgrade authenticates the connection', async (t) => {
  const ts = await server(t);
  const client = await ts.open(ts.apiKey);
  t.equal((await client.call('sys.resource.exists', ['0.0.0-ext.notify_call-1'])).result, false);
  const lower = await ts.open(null, { authorization: `bearer ${ts.apiKey}` });
  t.equal((await lower.call('sys.resource.exists', ['x'])).result, false, 'the scheme is case-insensitive (RFC 7235)');
});

for (const backend of storeBackends(t)) {
  t.test(`${backend.name}: bad, malformed, revoked and missing keys; disabled accounts`, async (t) => {
    const ts = await server(t, {}, await backend.newStore());
    for (const key of [`${ts.apiKey}x`, 'cti_test.nope', 'x'.repeat(300)]) {
      const r = await refusal(t, RpcTestClient.connect(ts.url, key));
      t.equal(r.status, 401, 'bad key: 401');
      t.match(r.headers['www-authenticate'], /^Bearer/);
    }
    for (const header of ['Basic dXNlcjpwYXNz', 'Bearer', 'Bearer a b', `Bearer ${ts.apiKey}\u00e9`]) {
      t.equal((await refusal(t, RpcTestClient.connect(ts.url, null, { authorization: header }))).status, 401, `malformed header ${JSON.stringify(header)}: 401`);
    }
    const client = await ts.open(null);
    t.match(await client.call('sys.authenticate', ['cti_test.wrong']), { error: { code: -32004, data: { reason: 'invalid API key' } } });
    t.match(await client.call('sys.authenticate', ['x'.repeat(257)]), { error: { code: -32602 } }, 'over-long key: invalid params, the store is not asked');
    t.match(await client.call('sys.authenticate', {}), { error: { code: -32602 } });
    t.match(await client.call('sys.resource.exists', ['x']), { error: { code: -32004 } }, 'still unauthenticated');

    const key2 = await ts.accounts.createKey(ts.accountId);
    const before = await ts.open(key2);
    await ts.accounts.revokeKey(key2);
    t.equal((await refusal(t, RpcTestClient.connect(ts.url, key2))).status, 401, 'revoked key: 401');
    t.match(await (await ts.open(null)).call('sys.authenticate', [key2]), { error: { code: -32004 } }, 'revoked key over sys.authenticate');
    t.equal((await before.call('sys.resource.exists', ['x'])).result, false, 'a connection opened before the revocation keeps its account');
    t.ok((await ts.open(ts.apiKey)).socket, 'the other key of the account still works');

    const disabledKey = await ts.accounts.create('gone');
    const open = await ts.open(disabledKey);
    await ts.accounts.setEnabled('gone', false);
    t.equal((await refusal(t, RpcTestClient.connect(ts.url, disabledKey))).status, 401, 'disabled account: 401');
    t.match(await open.call('ext.notify_call.construct', NOTIFY), { error: { code: -32004 } }, 'an open connection of a disabled account constructs nothing');
    t.equal(ts.engine.legs.length, 0);
  });
}

t.test('failed attempts are throttled per source address', async (t) => {
  const ts = await server(t, { CTI_AUTH__MAX_FAILED_ATTEMPTS: '3', CTI_AUTH__FAILED_ATTEMPTS_WINDOW_SECONDS: '60' });
  const good = await ts.open(ts.apiKey);
  t.ok(good, 'a success does not count');
  for (let i = 0; i < 3; i++) t.equal((await refusal(t, RpcTestClient.connect(ts.url, `guess-${i}`))).status, 401);
  const throttled = await refusal(t, RpcTestClient.connect(ts.url, 'guess-3'));
  t.equal(throttled.status, 429, 'the next guess: 429');
  t.ok(Number(throttled.headers['retry-after']) >= 1 && Number(throttled.headers['retry-after']) <= 60, `Retry-After ${String(throttled.headers['retry-after'])}`);
  t.equal((await refusal(t, RpcTestClient.connect(ts.url, ts.apiKey))).status, 429, 'even a valid key, until the window ends');
  const unauthenticated = await ts.open(null);
  const reply = await unauthenticated.call('sys.authenticate', [ts.apiKey]);
  t.match(reply, { error: { code: -32006, message: 'Rate limited', data: { retry_after_ms: Number } } }, 'sys.authenticate is throttled too');
  t.ok((reply.error!.data!.retry_after_ms as number) > 0);
  t.equal((await good.call('sys.resource.exists', ['x'])).result, false, 'authenticated connections are unaffected');
});

t.test('parallel guesses cannot pass the limit while keys are checked', async (t) => {
  const ts = await server(t, { CTI_AUTH__MAX_FAILED_ATTEMPTS: '5' });
  // Guesses with the real key id and a wrong secret: each costs the store a slow hash check.
  const [prefix, keyId] = ts.apiKey.split('_');
  const results = await Promise.all(
    Array.from({ length: 20 }, (_, i) => refusal(t, RpcTestClient.connect(ts.url, `${prefix}_${keyId}_${'x'.repeat(39)}${i % 10}`))),
  );
  const statuses = results.map((r) => r.status);
  t.equal(statuses.filter((s) => s === 401).length, 5, `5 checked, the rest throttled: ${statuses.join(' ')}`);
  t.equal(statuses.filter((s) => s === 429).length, 15);
});

t.test('a burst of connections with a valid key is not throttled by itself', async (t) => {
  const ts = await server(t, { CTI_AUTH__MAX_FAILED_ATTEMPTS: '3' });
  const clients = await Promise.all(Array.from({ length: 30 }, () => ts.open(ts.apiKey)));
  t.equal(clients.length, 30, 'all 30 opened');
  t.equal((await clients[29]!.call('sys.resource.exists', ['x'])).result, false);
});

t.test('browser upgrades only from listen.allowedOrigins', async (t) => {
  const ts = await server(t, { CTI_LISTEN__ALLOWED_ORIGINS: '["https://app.example.com"]' });
  for (const origin of ['https://evil.example', 'null', 'https://app.example.com.evil.example', 'http://app.example.com']) {
    const r = await refusal(t, RpcTestClient.connect(ts.url, ts.apiKey, { origin }));
    t.equal(r.status, 403, `Origin ${origin}: 403 even with a valid key`);
  }
  const allowed = await ts.open(ts.apiKey, { origin: 'https://APP.example.com' });
  t.equal((await allowed.call('sys.resource.exists', ['x'])).result, false, 'an allowed origin connects (compared case-insensitively)');
  t.ok(await ts.open(ts.apiKey), 'no Origin (a server): not affected');

  const none = await server(t);
  t.equal((await refusal(t, RpcTestClient.connect(none.url, none.apiKey, { origin: `http://127.0.0.1:${new URL(none.url).port}` }))).status, 403, 'default: no origin allowed, not even the server itself');
});

t.test('an unauthenticated connection is closed after auth.timeoutSeconds', async (t) => {
  const ts = await server(t, { CTI_AUTH__TIMEOUT_SECONDS: '1' });
  const idle = await ts.open(null);
  const late = await ts.open(null);
  const authed = await ts.open(ts.apiKey);
  await late.call('sys.authenticate', [ts.apiKey]);
  const started = Date.now();
  const code = await new Promise<number>((resolve) => idle.socket.once('close', (c) => resolve(c)));
  t.equal(code, 1008, 'policy violation');
  t.ok(Date.now() - started < 3000, 'within about a second');
  await new Promise((r) => setTimeout(r, 300));
  t.equal(authed.socket.readyState, authed.socket.OPEN, 'authenticated at the upgrade: stays open');
  t.equal(late.socket.readyState, late.socket.OPEN, 'authenticated by sys.authenticate: stays open');
});

t.test('auth.mode none: every connection is the default account, without a key', async (t) => {
  const ts = await server(t, { CTI_AUTH__MODE: 'none' });
  const client = await ts.open(null);
  const reply = await client.call('ext.notify_call.construct', NOTIFY);
  t.ok((reply.result as { res_id: string }).res_id);
  t.same((await client.call('sys.authenticate', ['anything'])).result, { account_id: 'default' });
});
