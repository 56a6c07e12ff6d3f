// The HTTP API of seed 000 (issue 10): every route and every error over real
// HTTP requests to a real CtiServer (scripted engine, real AccountStore).
import { connect } from 'node:net';
import t, { type Test } from 'tap';
import type { AccountLimits } from '../../lib/accounts/Account.js';
import { startTestServer } from '../support/startTestServer.js';

/** Seed 000's example request exactly as the seed writes it (only {BASE_URL}, Host and Content-Length get values). */
const SEED_EXAMPLE = `POST {BASE_URL}/account/{account_id}/call/duo_callback HTTP/1.1
Host: api.yunhuni.com
Content-Type: application/json
Accept-Type: application/json
Content-Length: xxx

{
  "from1": "075589877675",
  "from2": "075589877675",
  "to1": "13967446745",
  "to2": "13009347583",
  "max_call_duration": 3600
}`;

async function server(t: Test, limits?: Partial<AccountLimits>) {
  const ts = await startTestServer();
  t.teardown(() => ts.stop());
  const key = limits ? await ts.accounts.create('limited', limits) : ts.apiKey;
  const account = limits ? 'limited' : ts.accountId;
  const request = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(`${ts.httpUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
      ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    let json: Record<string, any> = {};
    try {
      json = JSON.parse(text) as Record<string, any>;
    } catch {
      json = { text };
    }
    return { status: res.status, headers: res.headers, body: json };
  };
  const call = (path: string) => `/account/${account}/call${path}`;
  return { ...ts, key, account, request, call };
}

/** Sends raw bytes and returns the response head and body as text. */
function raw(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(text));
    let out = '';
    socket.on('data', (d) => (out += d.toString()));
    socket.on('end', () => resolve(out));
    socket.on('error', reject);
  });
}

const fields = (body: Record<string, any>) => Object.fromEntries((body.error?.fields ?? []).map((f: { field: string; message: string }) => [f.field, f.message]));

t.test('the seed 000 example request works as written; the id is a res_id on both APIs', async (t) => {
  const ts = await server(t);
  const [head, body] = SEED_EXAMPLE.replace('{BASE_URL}', '').replace('{account_id}', ts.accountId).split('\n\n');
  const port = new URL(ts.httpUrl).port;
  const request = `${head!.replace('Host: api.yunhuni.com', `Host: 127.0.0.1:${port}`).replace('xxx', String(Buffer.byteLength(body!))).replaceAll('\n', '\r\n')}\r\nAuthorization: Bearer ${ts.apiKey}\r\nConnection: close\r\n\r\n${body}`;
  const response = await raw(Number(port), request);
  t.match(response, /^HTTP\/1\.1 200 OK\r\n/);
  t.match(response, /content-type: application\/json/i);
  const id = (JSON.parse(response.split('\r\n\r\n')[1]!) as { id: string }).id;
  t.match(id, /^0\.0\.0-ext\.duo_callback-\d+$/);
  await new Promise((r) => setImmediate(r));
  const leg = ts.engine.legs[0]!;
  t.match(leg.request, { requestUri: /13967446745/ }, 'party 1 dialled first');
  const got = await ts.request('GET', ts.call(`/${id}`));
  t.equal(got.status, 200);
  t.match(got.body, { res_id: id, class: 'ext.duo_callback', state: 'Initiated' });
  const client = await ts.connect();
  t.teardown(() => client.close());
  t.match((await client.call('sys.resource.get', [id])).result, { res_id: id }, 'the same resource over the WebSocket API');
});

t.test('defaults and field names of seed 000 reach the resource', async (t) => {
  const ts = await server(t);
  const { body } = await ts.request('POST', ts.call('/duo_callback'), { to1: '1001', to2: '1002', ring_tone: 'ring.wav', user_data: 'u1' });
  const context = (await ts.request('GET', ts.call(`/${body.id}`))).body;
  t.match(context, { user_data: 'u1' });
  await new Promise((r) => setImmediate(r));
  const leg = ts.engine.legs[0]!;
  leg.answer();
  // ring_tone_mode defaults to 3: the whole ring tone is played to party 1 before party 2 is dialled.
  await t.resolves(async () => {
    for (let i = 0; i < 50 && leg.plays.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  });
  t.equal(leg.plays.length, 1, 'ring tone played (mode 3)');
  t.equal(ts.engine.legs.length, 1, 'party 2 not dialled before the tone ends');
});

t.test('notify_call, cancel, and the call gone afterwards', async (t) => {
  const ts = await server(t);
  const created = await ts.request('POST', ts.call('/notify_call'), { to: '1001', play_content: 'prompt.wav', play_repeat: 0 });
  t.equal(created.status, 200);
  const id = created.body.id as string;
  t.match(id, /ext\.notify_call/);
  const cancelled = await ts.request('POST', ts.call(`/${id}/cancel`));
  t.same([cancelled.status, cancelled.body], [200, { id }]);
  const released = await ts.request('GET', ts.call(`/${id}`));
  t.equal(released.status, 200, 'a released call answers its final context (issue 9)');
  t.match(released.body, { res_id: id, state: 'Released' });
  t.equal((await ts.request('POST', ts.call(`/${id}/cancel`))).status, 404, 'cancel of a released call: 404');
});

t.test('401: no key, malformed header, wrong key; WWW-Authenticate', async (t) => {
  const ts = await server(t);
  for (const authorization of [undefined, 'Basic dXNlcjpwYXNz', `Bearer ${ts.apiKey}x`, 'Bearer a b']) {
    const headers: Record<string, string> = authorization === undefined ? {} : { authorization };
    const res = await fetch(`${ts.httpUrl}${ts.call('/duo_callback')}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ to1: '1001', to2: '1002' }),
    });
    t.equal(res.status, 401, `${authorization ?? 'no header'}: 401`);
    t.match(res.headers.get('www-authenticate'), /^Bearer/);
    t.match(await res.json(), { error: { code: 'unauthorized', message: String } });
  }
  t.equal(ts.engine.legs.length, 0, 'nothing dialled');
});

t.test('403 for another account in the path; 404 for another account\'s id', async (t) => {
  const ts = await server(t);
  const otherKey = await ts.accounts.create('other');
  const forbidden = await ts.request('POST', '/account/other/call/duo_callback', { to1: '1001', to2: '1002' });
  t.equal(forbidden.status, 403);
  t.match(forbidden.body, { error: { code: 'forbidden' } });
  const mine = (await ts.request('POST', ts.call('/notify_call'), { to: '1001', play_content: 'prompt.wav' })).body.id as string;
  const asOther = (path: string, method = 'GET') =>
    fetch(`${ts.httpUrl}/account/other/call${path}`, { method, headers: { authorization: `Bearer ${otherKey}` } });
  const unknown = await asOther('/0.0.0-ext.notify_call-1');
  const foreign = await asOther(`/${mine}`);
  t.equal(foreign.status, 404, "another account's id: 404");
  t.same((await foreign.json() as { error: { code: string } }).error.code, (await unknown.json() as { error: { code: string } }).error.code, 'same answer as an unknown id');
  t.equal((await asOther(`/${mine}/cancel`, 'POST')).status, 404);
  t.equal((await ts.request('GET', ts.call(`/${mine}`))).status, 200, 'still live for its own account');
});

t.test('400 names every bad field, by the names the client sent', async (t) => {
  const ts = await server(t);
  const schema = await ts.request('POST', ts.call('/duo_callback'), { to2: '<sip:x>', ring_tone_mode: 7, max_dial_duration: 0, colour: 'red' });
  t.equal(schema.status, 400);
  t.match(schema.body, { error: { code: 'invalid_params', message: String } });
  t.match(fields(schema.body), { to1: 'is required', to2: /SIP URI/, ring_tone_mode: /one of/, max_dial_duration: />= 1/, colour: 'is not a param of this method' });
  const service = await ts.request('POST', ts.call('/duo_callback'), { to1: '1001', to2: '1001', ring_tone: 'missing.wav', max_call_duration: 86_400 });
  t.equal(service.status, 400);
  t.match(fields(service.body), { to2: /same number/, ring_tone: /./ });
  const mode = await ts.request('POST', ts.call('/duo_callback'), { to1: '1001', to2: '1002', recording: true, record_mode: 3 });
  t.match(fields(mode.body), { record_mode: String });
  const countdown = await ts.request('POST', ts.call('/duo_callback'), { to1: '1001', to2: '1002', max_call_duration: 60, countdown_time: 60, countdown_voice: 'missing.wav' });
  t.equal(countdown.status, 400);
  t.match(fields(countdown.body), { countdown_time: /less than/, countdown_voice: /missing\.wav/ }, 'seed 000 countdown fields named as sent');
  const dtmf = await ts.request('POST', ts.call('/notify_call'), { to: '1001', play_content: 'prompt.wav', collect_dtmf: { max_digits: 0 } });
  t.match([dtmf.status, fields(dtmf.body)], [400, { 'collect_dtmf.max_digits': /./ }]);
  const notify = await ts.request('POST', ts.call('/notify_call'), { to: ['1001', 'bad uri'], play_content: 'prompt.wav' });
  t.equal(notify.status, 400);
  t.ok(Object.keys(fields(notify.body)).some((f) => f.startsWith('to')), 'the notify_call field is named `to`');
  t.equal(ts.engine.legs.length, 0, 'nothing dialled');
  t.equal((await ts.request('GET', ts.call('/x'.repeat(1)).replace('/x', '/' + 'y'.repeat(129)))).status, 400, 'an id over 128 characters: 400');
});

t.test('bodies: too large 413, not JSON 400, wrong type 415, one error shape', async (t) => {
  const ts = await server(t);
  const big = await ts.request('POST', ts.call('/duo_callback'), JSON.stringify({ to1: '1001', to2: '1002', user_data: 'x'.repeat(70_000) }));
  t.equal(big.status, 413);
  t.match(big.body, { error: { code: 'payload_too_large', message: String } });
  const bad = await ts.request('POST', ts.call('/duo_callback'), '{"to1": ');
  t.equal(bad.status, 400);
  t.match(bad.body, { error: { code: 'invalid_request' } });
  const text = await ts.request('POST', ts.call('/duo_callback'), 'to1=1', { 'content-type': 'text/plain' });
  t.equal(text.status, 415);
  t.match(text.body, { error: { code: 'unsupported_media_type' } });
  const route = await ts.request('GET', '/nope');
  t.match([route.status, route.body], [404, { error: { code: 'not_found' } }]);
});

t.test('409 invalid state, 429 with Retry-After, 503 engine unavailable', async (t) => {
  const ts = await server(t, { constructsPerSecond: 2 });
  const id = (await ts.request('POST', ts.call('/duo_callback'), { to1: '1001', to2: '1002', ring_tone_mode: 0 })).body.id as string;
  await new Promise((r) => setImmediate(r));
  ts.engine.legs[0]!.answer();
  for (let i = 0; i < 50 && ts.engine.legs.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
  ts.engine.legs[1]!.answer();
  for (let i = 0; i < 50 && (await ts.request('GET', ts.call(`/${id}`))).body.state !== 'Connected'; i++) await new Promise((r) => setTimeout(r, 10));
  const conflict = await ts.request('POST', ts.call(`/${id}/cancel`));
  t.equal(conflict.status, 409);
  t.match(conflict.body, { error: { code: 'invalid_state' } });

  await ts.request('POST', ts.call('/notify_call'), { to: '1001', play_content: 'prompt.wav' });
  const limited = await ts.request('POST', ts.call('/notify_call'), { to: '1001', play_content: 'prompt.wav' });
  t.equal(limited.status, 429);
  t.match(limited.headers.get('retry-after'), /^[1-9]\d*$/);
  t.match(limited.body, { error: { code: 'rate_limited', retry_after_ms: Number } });

  await new Promise((r) => setTimeout(r, 1100));
  ts.engine.available = false;
  const down = await ts.request('POST', ts.call('/notify_call'), { to: '1001', play_content: 'prompt.wav' });
  t.equal(down.status, 503);
  t.match(down.body, { error: { code: 'engine_unavailable' } });
});

t.test("recording: true records from the bridge (record_mode 0) or party 2's dialling (2) into a new file of the account's recordings folder", async (t) => {
  const ts = await server(t);
  await ts.request('POST', ts.call('/duo_callback'), { to1: '1001', to2: '1002', ring_tone_mode: 0, recording: true, record_mode: 0 });
  await new Promise((r) => setImmediate(r));
  ts.engine.legs[0]!.answer();
  for (let i = 0; i < 50 && ts.engine.legs.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
  t.same(ts.engine.legs[0]!.recordings, [], 'mode 0: not while party 2 rings');
  ts.engine.legs[1]!.answer();
  for (let i = 0; i < 50 && !ts.engine.legs[0]!.recordings.length; i++) await new Promise((r) => setTimeout(r, 10));
  t.match(ts.engine.legs[0]!.recordings, [{ path: new RegExp(`^${ts.config.recordingsDir}/${ts.accountId}/http/[0-9a-f-]{36}\\.wav$`), farEnd: 'left' }]);
  await ts.request('POST', ts.call('/duo_callback'), { to1: '1005', to2: '1006', ring_tone_mode: 0, recording: true, record_mode: 2 });
  for (let i = 0; i < 50 && ts.engine.legs.length < 3; i++) await new Promise((r) => setTimeout(r, 10));
  ts.engine.legs[2]!.answer();
  for (let i = 0; i < 50 && ts.engine.legs.length < 4; i++) await new Promise((r) => setTimeout(r, 10));
  await new Promise((r) => setImmediate(r));
  t.match(ts.engine.legs[3]!.recordings, [{ farEnd: 'right', stopped: false }], 'mode 2: party 2\'s leg from its dialling, party 1 left');
  const off = await ts.request('POST', ts.call('/duo_callback'), { to1: '1003', to2: '1004', recording: 0, record_mode: 0 });
  t.equal(off.status, 200, 'the seed SDK\'s recording=0 is accepted');
});

t.test('health, readiness, metrics and the OpenAPI document', async (t) => {
  const ts = await server(t);
  t.same((await ts.request('GET', '/healthz')).body, { status: 'ok' });
  t.same(await ts.request('GET', '/readyz').then((r) => [r.status, r.body]), [200, { status: 'ready', engine: true, store: true }]);
  ts.engine.available = false;
  t.same(await ts.request('GET', '/readyz').then((r) => [r.status, r.body]), [503, { status: 'not_ready', engine: false, store: true }]);
  ts.engine.available = true;

  const id = (await ts.request('POST', ts.call('/notify_call'), { to: '1001', play_content: 'prompt.wav' })).body.id as string;
  await new Promise((r) => setImmediate(r));
  ts.engine.legs[0]!.reject(486);
  const answered = (await ts.request('POST', ts.call('/notify_call'), { to: '1005', play_content: 'prompt.wav' })).body.id as string;
  for (let i = 0; i < 50 && ts.engine.legs.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
  ts.engine.legs[1]!.answer();
  ts.engine.legs[1]!.hangUpRemotely();
  for (let i = 0; i < 50 && (await ts.request('GET', ts.call(`/${answered}`))).status === 200; i++) await new Promise((r) => setTimeout(r, 10));
  for (let i = 0; i < 50 && (await ts.request('GET', ts.call(`/${id}`))).status === 200; i++) await new Promise((r) => setTimeout(r, 10));
  await ts.request('POST', ts.call('/duo_callback'), { to1: '1001', to2: '1002' });
  // A saturated engine: 429 with Retry-After, counted by cause (issue 11, kind 8).
  ts.engine.saturated = { cause: 'endpoint_rate', message: 'FreeSWITCH endpoints are started at 80 per second at most', retryAfterMs: 1200 };
  const refused = await ts.request('POST', ts.call('/duo_callback'), { to1: '1001', to2: '1002' });
  t.equal(refused.status, 429, 'a saturated engine answers 429');
  t.match(refused.body, { error: { code: 'rate_limited', retry_after_ms: 1200 } });
  t.equal(refused.headers.get('retry-after'), '2', 'Retry-After: 1200 ms rounded up to seconds');
  ts.engine.saturated = undefined;
  const client = await ts.connect();
  t.teardown(() => client.close());
  const metrics = await fetch(`${ts.httpUrl}/metrics`);
  t.match(metrics.headers.get('content-type'), /^text\/plain/);
  const text = await metrics.text();
  t.match(text, /cti_constructs_total\{class="ext.notify_call"\} 2/);
  t.match(text, /cti_releases_total\{class="ext.notify_call",error_code="busy"\} 1/);
  t.match(text, /cti_live_resources\{class="ext.duo_callback",state="Initiated"\} 1/);
  t.match(text, /cti_engine_available\{engine="scripted"\} 1/);
  t.match(text, /cti_ws_connections 1/);
  t.match(text, /cti_engine_refusals_total\{cause="endpoint_rate"\} 1/, 'the refusal counted by cause');
  t.match(text, /cti_setup_latency_seconds_count\{class="ext.notify_call"\} 1/, 'the answered call\'s setup time');

  const doc = (await ts.request('GET', '/openapi.json')).body;
  t.equal(doc.openapi, '3.1.0');
  t.same(Object.keys(doc.paths).filter((p: string) => p.startsWith('/account')).sort(), [
    '/account/{account_id}/call/duo_callback',
    '/account/{account_id}/call/notify_call',
    '/account/{account_id}/call/{id}',
    '/account/{account_id}/call/{id}/cancel',
    '/account/{account_id}/cdr',
    '/account/{account_id}/cdr/{id}',
    '/account/{account_id}/events',
    '/account/{account_id}/webhooks/attempts',
  ]);
  const duo = doc.paths['/account/{account_id}/call/duo_callback'].post.requestBody.content['application/json'].schema;
  t.same(Object.keys(duo.properties), ['from1', 'to1', 'from2', 'to2', 'ring_tone', 'ring_tone_mode', 'max_dial_duration', 'max_call_duration', 'recording', 'record_mode', 'countdown_time', 'countdown_voice', 'user_data', 'status_url']);
  t.match(duo.properties, { ring_tone_mode: { default: 3 }, max_dial_duration: { default: 45, maximum: 600 } }, 'ranges from rpc-schema, defaults from the seed');
  t.ok(doc.components.schemas.ResId, 'the $refs resolve inside the document');
});

t.test('CDRs and the durable event log over HTTP', async (t) => {
  const ts = await server(t);
  const ids: string[] = [];
  for (const to of ['1001', '1002']) {
    ids.push((await ts.request('POST', ts.call('/notify_call'), { to, play_content: 'prompt.wav', user_data: `u-${to}` })).body.id as string);
  }
  await new Promise((r) => setImmediate(r));
  ts.engine.legs[0]!.reject(486);
  ts.engine.legs[1]!.reject(480);
  const account = `/account/${ts.account}`;
  let page = await ts.request('GET', `${account}/cdr?limit=1`);
  for (let i = 0; i < 50 && page.body.cdrs?.length !== 1; i++) {
    await new Promise((r) => setTimeout(r, 20));
    page = await ts.request('GET', `${account}/cdr?limit=1`);
  }
  t.equal(page.status, 200);
  t.equal(page.body.cdrs.length, 1, 'limit from the query string (text coerced to an integer)');
  t.type(page.body.next_cursor, 'string');
  const next = await ts.request('GET', `${account}/cdr?limit=1&cursor=${encodeURIComponent(page.body.next_cursor as string)}`);
  t.same([page.body.cdrs[0].res_id, next.body.cdrs[0]?.res_id].sort(), [...ids].sort(), 'two pages, both calls');
  const one = await ts.request('GET', `${account}/cdr/${ids[0]}`);
  t.match(one.body, { res_id: ids[0], user_data: 'u-1001', released: { error: { code: 'busy' } }, context: { state: 'Released' } });

  const events = await ts.request('GET', `${account}/events?after=0`);
  t.equal(events.status, 200);
  const released = (events.body.events as Array<{ method: string; params: { res_id: string } }>).filter((e) => e.method === 'ext.notify_call.on_released');
  t.same(released.map((e) => e.params.res_id).sort(), [...ids].sort(), 'both on_released in the log');
  t.equal(events.body.more, false);
  const first = (events.body.events as Array<{ params: { event_id: number } }>)[0]!.params.event_id;
  const after = await ts.request('GET', `${account}/events?after=${first}&limit=1`);
  t.equal(after.body.events.length, 1);
  t.ok(after.body.events[0].params.event_id > first, 'after is exclusive');
  t.equal(after.body.more, true);

  t.match(fields((await ts.request('GET', `${account}/events`)).body), { after: 'is required' });
  t.match(fields((await ts.request('GET', `${account}/cdr?limit=abc&since=-1&cursor=x`)).body), { limit: String, since: String, cursor: String });
  const otherKey = await ts.accounts.create('other');
  const foreign = await fetch(`${ts.httpUrl}/account/other/cdr/${ids[0]}`, { headers: { authorization: `Bearer ${otherKey}` } });
  t.equal(foreign.status, 404, "another account's CDR: 404");
  const foreignEvents = await fetch(`${ts.httpUrl}/account/other/events?after=0`, { headers: { authorization: `Bearer ${otherKey}` } });
  t.same(((await foreignEvents.json()) as { events: unknown[] }).events, [], 'no events of another account');
});
