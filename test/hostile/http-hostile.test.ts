// Hostile bytes at the HTTP API (issue 10): prototype poisoning, deep nesting,
// huge headers, traversal in paths and file names, CR/LF toward SIP, and
// authentication off (auth.mode "none"). Every case gets the documented error
// body, the server keeps answering, nothing is dialled.
import { connect } from 'node:net';
import t from 'tap';
import { startTestServer } from '../support/startTestServer.js';

t.test('hostile requests get their error, never a crash', async (t) => {
  const ts = await startTestServer();
  t.teardown(() => ts.stop());
  const post = async (path: string, body: string, headers: Record<string, string> = {}) => {
    const res = await fetch(ts.httpUrl + path, {
      method: 'POST',
      headers: { authorization: `Bearer ${ts.apiKey}`, 'content-type': 'application/json', ...headers },
      body,
    });
    return { status: res.status, body: (await res.json()) as { error?: { code: string; fields?: Array<{ field: string }> } } };
  };
  const duo = `/account/${ts.accountId}/call/duo_callback`;

  const poisoned = await post(duo, '{"to1":"1001","to2":"1002","__proto__":{"admin":true}}');
  t.equal(poisoned.status, 400, '__proto__ refused');
  t.equal(poisoned.body.error?.code, 'invalid_request');
  const ctor = await post(duo, '{"to1":"1001","to2":"1002","constructor":{"prototype":{"x":1}}}');
  t.equal(ctor.status, 400, 'constructor.prototype refused');

  const deep = await post(duo, `{"to1":"1001","to2":"1002","user_data":${'['.repeat(30_000)}${']'.repeat(30_000)}}`);
  t.equal(deep.status, 400, 'deeply nested JSON: 400');

  const traversal = await post(duo, JSON.stringify({ to1: '1001', to2: '1002', ring_tone: '../../../../etc/passwd' }));
  t.equal(traversal.status, 400);
  t.same(traversal.body.error?.fields?.map((f) => f.field), ['ring_tone'], 'named by its seed field');

  const crlf = await post(duo, JSON.stringify({ to1: '1001\r\nX-Evil: 1', to2: '1002', from1: 'sip:a@gw1>\r\nVia: x' }));
  t.equal(crlf.status, 400);
  t.same(crlf.body.error?.fields?.map((f) => f.field).sort(), ['from1', 'to1'], 'both CR/LF fields named');

  const longKey = await post(duo, '{}', { authorization: `Bearer ${'a'.repeat(8000)}` });
  t.equal(longKey.status, 401, 'an 8000-character key: 401 without a store lookup');

  for (const path of [`/account/${ts.accountId}/call/..%2F..%2Fetc%2Fpasswd`, `/account/${ts.accountId}/call/%00`, `/account/${'a'.repeat(65)}/call/x`]) {
    const res = await fetch(ts.httpUrl + path, { headers: { authorization: `Bearer ${ts.apiKey}` } });
    t.ok([400, 403, 404].includes(res.status), `${path.slice(0, 60)}: ${res.status}`);
    t.match(await res.json(), { error: { code: String, message: String } }, 'the one error shape');
  }
  t.equal(ts.engine.legs.length, 0, 'nothing dialled');
  t.equal((await fetch(`${ts.httpUrl}/healthz`)).status, 200, 'still answering');
});

t.test('auth.mode "none": every request is the account default, other paths 403', async (t) => {
  const ts = await startTestServer({ env: { CTI_AUTH__MODE: 'none' } });
  t.teardown(() => ts.stop());
  const send = (account: string) =>
    fetch(`${ts.httpUrl}/account/${account}/call/duo_callback`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ to1: '1001', to2: '1002' }),
    });
  t.equal((await send('default')).status, 200);
  t.equal((await send('test')).status, 403);
});

t.test('a client trickling its request is cut off at http.requestTimeoutSeconds', async (t) => {
  const ts = await startTestServer({ env: { CTI_HTTP__REQUEST_TIMEOUT_SECONDS: '1' } });
  t.teardown(() => ts.stop());
  const port = Number(new URL(ts.httpUrl).port);
  const started = Date.now();
  const answer = await new Promise<string>((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(`POST /account/test/call/duo_callback HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ts.apiKey}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"to1":`);
    });
    let out = '';
    socket.on('data', (d) => (out += d.toString()));
    socket.on('close', () => resolve(out));
    socket.on('error', reject);
  });
  const seconds = (Date.now() - started) / 1000;
  t.ok(seconds >= 0.9 && seconds < 10, `closed after ${seconds.toFixed(1)} s`);
  t.match(answer, /^(HTTP\/1\.1 408|$)/, 'a 408 or a plain close, never a handled request');
  t.equal(ts.engine.legs.length, 0);
});
