// Signed HTTP requests (issue 10): the documented worked example, the
// documented client snippet run as written, every tampered part refused,
// the time window, nonce replay.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t, { type Test } from 'tap';
import { signingKeyOf } from '../../lib/accounts/apiKey.js';
import { sign, stringToSign } from '../../lib/transport/http/RequestSignature.js';
import { startTestServer } from '../support/startTestServer.js';

const DOC = readFileSync(new URL('../../docs/http-api.md', import.meta.url), 'utf8');

interface Signed {
  method: string;
  path: string;
  body: string;
  keyId: string;
  timestamp: string;
  nonce: string;
  signature: string;
}

/** A correctly signed request for `key` (what the documented client does). */
function signed(key: string, method: string, path: string, body: string, timestamp = Math.floor(Date.now() / 1000)): Signed {
  const [, keyId, secret] = /^cti_([A-Za-z0-9]{16})_([A-Za-z0-9]{40})$/.exec(key)!;
  const nonce = randomBytes(12).toString('hex');
  const signature = sign(signingKeyOf(secret!), stringToSign(method, path, timestamp, nonce, body));
  return { method, path, body, keyId: keyId!, timestamp: String(timestamp), nonce, signature };
}

async function send(base: string, r: Signed, extra: Record<string, string> = {}) {
  const res = await fetch(base + r.path, {
    method: r.method,
    headers: {
      ...(r.body ? { 'content-type': 'application/json' } : {}),
      'x-cti-key-id': r.keyId,
      'x-cti-timestamp': r.timestamp,
      'x-cti-nonce': r.nonce,
      'x-cti-signature': r.signature,
      ...extra,
    },
    ...(r.body ? { body: r.body } : {}),
  });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

async function server(t: Test) {
  const ts = await startTestServer();
  t.teardown(() => ts.stop());
  return ts;
}

const BODY = JSON.stringify({ to1: '1001', to2: '1002' });

t.test('the worked example of docs/http-api.md is what the server computes', async (t) => {
  const key = /key\s+`(cti_[A-Za-z0-9_]+)`/.exec(DOC)![1]!;
  const secret = key.split('_')[2]!;
  const signingKey = signingKeyOf(secret);
  t.match(DOC, `signing key: \`${signingKey}\``);
  const text = stringToSign('POST', '/account/acme/call/duo_callback', 1767225600, 'f3a9c1d27b4e4a0c9d8e', '{"to1":"13967446745","to2":"13009347583"}');
  t.match(DOC, text.replaceAll('\n', '\\n'));
  t.match(DOC, `X-CTI-Signature: ${sign(signingKey, text)}`);
});

t.test('the documented client snippet, run as written, places and reads a call', async (t) => {
  const ts = await server(t);
  const block = /<!-- test: signed-client[^\n]*\n```js\n([\s\S]*?)```/.exec(DOC)![1]!;
  const file = join(mkdtempSync(join(tmpdir(), 'cti-signed-')), 'cti-signed.mjs');
  writeFileSync(file, block);
  const run = (...args: string[]) =>
    promisify(execFile)(process.execPath, [file, ...args], { env: { ...process.env, CTI_HTTP: ts.httpUrl, CTI_KEY: ts.apiKey } });
  const placed = await run('POST', `/account/${ts.accountId}/call/duo_callback`, BODY);
  t.match(placed.stdout, /^200 \{"id":"[^"]+"\}/);
  const id = (JSON.parse(placed.stdout.slice(4)) as { id: string }).id;
  const read = await run('GET', `/account/${ts.accountId}/call/${id}`);
  t.match(read.stdout, new RegExp(`^200 .*"res_id":"${id.replaceAll('.', '\\.')}"`));
  const cancelled = await run('POST', `/account/${ts.accountId}/call/${id}/cancel`);
  t.match(cancelled.stdout, /^200 /, 'a POST without a body signs the empty string');
});

t.test('each tampered part is refused, and nothing is dialled', async (t) => {
  const ts = await server(t);
  const path = `/account/${ts.accountId}/call/duo_callback`;
  const ok = () => signed(ts.apiKey, 'POST', path, BODY);
  const otherKey = await ts.accounts.createKey(ts.accountId);
  const flip = (hex: string) => (hex[0] === 'a' ? 'b' : 'a') + hex.slice(1);
  const tampered: Array<[string, Signed]> = [
    ['method', { ...ok(), method: 'PUT' }],
    ['path', { ...signed(ts.apiKey, 'POST', `/account/${ts.accountId}/call/notify_call`, BODY), path }],
    ['timestamp', (() => { const r = ok(); return { ...r, timestamp: String(Number(r.timestamp) - 1) }; })()],
    ['nonce', { ...ok(), nonce: randomBytes(12).toString('hex') }],
    ['body', { ...ok(), body: JSON.stringify({ to1: '1001', to2: '1003' }) }],
    ['signature', (() => { const r = ok(); return { ...r, signature: flip(r.signature) }; })()],
    ['key id', { ...ok(), keyId: /^cti_([A-Za-z0-9]{16})_/.exec(otherKey)![1]! }],
  ];
  for (const [part, request] of tampered) {
    const res = await send(ts.httpUrl, request);
    t.equal(res.status, part === 'method' ? 404 : 401, `tampered ${part}: refused`);
    if (part !== 'method') t.match(res.body, { error: { code: 'unauthorized', message: 'invalid signature' } });
  }
  // PUT has no route (404 before any credential check); the same signature under the real method fails too:
  const asPost = { ...signed(ts.apiKey, 'PUT', path, BODY), method: 'POST' };
  t.equal((await send(ts.httpUrl, asPost)).status, 401, 'signed for PUT, sent as POST: refused');
  t.equal(ts.engine.legs.length, 0, 'nothing dialled');
  t.equal((await send(ts.httpUrl, ok())).status, 200, 'the untampered request is accepted');
});

t.test('window, replay, malformed headers, mixed schemes, revoked keys, other accounts', async (t) => {
  const ts = await server(t);
  const path = `/account/${ts.accountId}/call/notify_call`;
  const body = JSON.stringify({ to: '1001', play_content: 'prompt.wav' });
  const now = Math.floor(Date.now() / 1000);
  for (const skew of [-301, 301]) {
    const res = await send(ts.httpUrl, signed(ts.apiKey, 'POST', path, body, now + skew));
    t.equal(res.status, 401, `${skew} s off: refused`);
    t.match(res.body.error.message, /300 s/);
  }
  t.equal((await send(ts.httpUrl, signed(ts.apiKey, 'POST', path, body, now - 290))).status, 200, '290 s off: accepted');

  const once = signed(ts.apiKey, 'POST', path, body);
  t.equal((await send(ts.httpUrl, once)).status, 200);
  const replay = await send(ts.httpUrl, once);
  t.equal(replay.status, 401, 'a replayed request is refused');
  t.match(replay.body.error.message, /already used/);

  const good = signed(ts.apiKey, 'POST', path, body);
  for (const [header, value] of [['x-cti-nonce', 'short'], ['x-cti-timestamp', '1e9'], ['x-cti-signature', 'XYZ'], ['x-cti-key-id', 'a/b']]) {
    const res = await send(ts.httpUrl, good, { [header!]: value! });
    t.equal(res.status, 401, `malformed ${header}: 401`);
    t.match(res.body.error.message, header!);
  }
  t.equal((await send(ts.httpUrl, good, { authorization: `Bearer ${ts.apiKey}` })).status, 401, 'a key and a signature at once: 401');

  const otherKey = await ts.accounts.create('other');
  t.equal((await send(ts.httpUrl, signed(otherKey, 'POST', path, body))).status, 403, "another account's signed request on this account's path: 403");
  await ts.accounts.revokeKey(otherKey);
  t.equal((await send(ts.httpUrl, signed(otherKey, 'POST', '/account/other/call/notify_call', body))).status, 401, 'a revoked key cannot sign');
});
