/**
 * Webhooks through the whole server (issue 10): an account's event_url gets
 * every event of its HTTP-constructed call, signed, in order, after a
 * receiver that fails first; the attempts are readable over the HTTP API by
 * that account only; the metrics count them.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Webhook } from 'standardwebhooks';
import t from 'tap';
import { WebhookStore } from '../../lib/events/webhooks/WebhookStore.js';
import { RpcTestClient } from '../support/RpcTestClient.js';
import { startTestServer } from '../support/startTestServer.js';
import { startWebhookReceiver } from '../support/webhookReceiver.js';

t.test('event_url: every event of a call, verified, in order; attempts over HTTP and RPC', async (t) => {
  const { server: receiver, url: receiverUrl, received } = await startWebhookReceiver((n) => n <= 2);
  t.teardown(() => receiver.close());

  const ts = await startTestServer({ env: { CTI_WEBHOOKS__ALLOW_PRIVATE_TARGETS: 'true', CTI_WEBHOOKS__FIRST_RETRY_SECONDS: '1', CTI_WEBHOOKS__MAX_RETRY_DELAY_SECONDS: '1' } });
  t.teardown(() => ts.stop());
  const { secret } = await new WebhookStore(ts.store).setUrl(ts.accountId, receiverUrl, Date.now());
  const auth = { authorization: `Bearer ${ts.apiKey}` };
  const base = `${ts.httpUrl}/account/${ts.accountId}`;

  const made = await fetch(`${base}/call/notify_call`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ to: '1003', play_content: 'prompt.wav' }),
  });
  t.equal(made.status, 200);
  const { id } = (await made.json()) as { id: string };
  t.equal((await fetch(`${base}/call/${id}/cancel`, { method: 'POST', headers: auth })).status, 200);

  const end = Date.now() + 30_000;
  while (!received.some((r) => r.body.includes('on_released')) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  const wh = new Webhook(secret);
  const events = received.map((r) => wh.verify(r.body, r.headers as Record<string, string>) as { type: string; data: { res_id: string; event_id: number } });
  t.ok(events.length >= 2, `${events.length} events delivered`);
  t.equal(events.at(-1)!.type, 'ext.notify_call.on_released', 'on_released last');
  t.ok(events.every((e) => e.data.res_id === id), 'all of the call');
  const ids = events.map((e) => e.data.event_id);
  t.same(ids, [...ids].sort((a, b) => a - b), 'in event order');
  const log = (await (await fetch(`${base}/events?after=0`, { headers: auth })).json()) as { events: Array<{ params: { event_id: number } }> };
  t.same(ids, log.events.map((e) => e.params.event_id), 'every event of the durable log, once');

  const page = (await (await fetch(`${base}/webhooks/attempts?limit=50`, { headers: auth })).json()) as {
    attempts: Array<{ event_id: number; attempt: number; status: number | null; outcome: string; latency_ms: number }>;
    next_before: number | null;
  };
  const first = page.attempts.filter((a) => a.event_id === ids[0]).sort((a, b) => a.attempt - b.attempt);
  t.same(first.map((a) => [a.status, a.outcome]), [[500, 'retrying'], [500, 'retrying'], [204, 'delivered']], 'first event: two 500s then 204');
  t.equal(page.next_before, null);
  const small = (await (await fetch(`${base}/webhooks/attempts?limit=1`, { headers: auth })).json()) as { attempts: unknown[]; next_before: number };
  t.equal(small.attempts.length, 1);
  t.equal(small.next_before, ids.at(-1), 'paged by event');

  // The same pages over the WebSocket API, scoped to the connection's account.
  const client = await ts.connect();
  t.teardown(() => client.close());
  t.same((await client.call('sys.webhooks.attempts', { limit: 50 })).result, page, 'sys.webhooks.attempts: the same page as HTTP');
  t.same((await client.call('sys.webhooks.attempts', [null, 1])).result, small, 'positional params, paged the same');
  t.same((await client.call('sys.webhooks.attempts', { before: small.next_before, limit: 200 })).result, { attempts: page.attempts.filter((a) => a.event_id < small.next_before), next_before: null }, 'before: older events only');
  const refused = await client.call('sys.webhooks.attempts', { limit: 0, before: 'x', extra: 1 });
  t.match(refused.error, { code: -32602, data: { errors: [{ param: String }] } }, 'bad params named');

  const bad = await fetch(`${base}/webhooks/attempts?limit=0&before=x&extra=1`, { headers: auth });
  t.equal(bad.status, 400);
  const otherKey = await ts.accounts.create('other');
  const foreign = await fetch(`${base}/webhooks/attempts`, { headers: { authorization: `Bearer ${otherKey}` } });
  t.equal(foreign.status, 403, "another account's attempts: refused");
  const mine = (await (await fetch(`${ts.httpUrl}/account/other/webhooks/attempts`, { headers: { authorization: `Bearer ${otherKey}` } })).json()) as { attempts: unknown[] };
  t.same(mine.attempts, [], 'the other account has none');
  const other = await RpcTestClient.connect(ts.url, otherKey);
  t.teardown(() => other.close());
  t.same((await other.call('sys.webhooks.attempts', {})).result, { attempts: [], next_before: null }, "over RPC too: another account's key sees none of them");

  const metrics = await (await fetch(`${ts.httpUrl}/metrics`)).text();
  t.match(metrics, /cti_webhook_attempts_total\{outcome="retrying"\} 2/);
  t.match(metrics, /cti_webhook_attempts_total\{outcome="delivered"\} \d+/);
  t.match(metrics, /cti_webhook_queue_depth \d+/);
  t.match(metrics, /cti_webhook_failures_total 0/);
});

t.test('status_url over both APIs: checked at construct; every event of the call arrives, verified, after a failing receiver and a server restart', async (t) => {
  let failing = true;
  const { server: receiver, url, received, requests } = await startWebhookReceiver(() => failing);
  t.teardown(() => receiver.close());
  const statusUrl = `${url}?call=1`;

  // Default: private targets refused at construct, by name, on both APIs.
  const strict = await startTestServer();
  t.teardown(() => strict.stop());
  const client = await strict.connect();
  t.teardown(() => client.close());
  for (const [url, why] of [
    [statusUrl, /loopback, private or link-local/],
    ['http://localhost:8080/x', /loopback/],
    ['https://[::1]/x', /loopback/],
    ['https://10.0.0.7/x', /private/],
    ['https://169.254.169.254/latest', /link-local/],
    ['ftp://hooks.example.com/x', /http or https/],
    ['https://user:pw@hooks.example.com/x', /user name or password/],
    ['https://hooks.example.com/x#frag', /fragment/],
    [`https://hooks.example.com/${'a'.repeat(2100)}`, /2048/],
  ] as const) {
    const reply = await client.call('ext.notify_call.construct', { to_uri: '1001', play_content: 'prompt.wav', status_url: url });
    t.match(reply.error, { code: -32602, data: { errors: [{ param: 'status_url', message: why }] } }, `RPC refuses ${url.slice(0, 40)}`);
  }
  const http = await fetch(`${strict.httpUrl}/account/${strict.accountId}/call/duo_callback`, {
    method: 'POST',
    headers: { authorization: `Bearer ${strict.apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ to1: '1001', to2: '1002', status_url: 'http://192.168.1.1/hook' }),
  });
  t.equal(http.status, 400);
  t.match(await http.json(), { error: { fields: [{ field: 'status_url', message: /private/ }] } }, 'HTTP names the field');
  t.equal(strict.engine.legs.length, 0, 'nothing dialled');

  // The operator allows private targets (this test's receiver is on loopback).
  const root = mkdtempSync(join(tmpdir(), 'cti-status-url-'));
  const store = { type: 'sqlite' as const, path: join(root, 'cti.db') };
  const env = { CTI_WEBHOOKS__ALLOW_PRIVATE_TARGETS: 'true', CTI_WEBHOOKS__FIRST_RETRY_SECONDS: '1', CTI_WEBHOOKS__MAX_RETRY_DELAY_SECONDS: '1' };
  let ts = await startTestServer({ store, env });
  const made = await fetch(`${ts.httpUrl}/account/${ts.accountId}/call/notify_call`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ts.apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ to: '1003', play_content: 'prompt.wav', status_url: statusUrl }),
  });
  t.equal(made.status, 200);
  const { id } = (await made.json()) as { id: string };
  const rpc = await ts.connect();
  const viaRpc = await rpc.call('ext.duo_callback.construct', { to1_uri: '1004', to2_uri: '1005', status_url: statusUrl });
  t.ok(viaRpc.result, 'the RPC takes status_url too');
  await rpc.close();
  t.equal((await fetch(`${ts.httpUrl}/account/${ts.accountId}/call/${id}/cancel`, { method: 'POST', headers: { authorization: `Bearer ${ts.apiKey}` } })).status, 200);
  const end = Date.now() + 20_000;
  while (requests() < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  t.ok(requests() >= 2, 'the receiver failed, retries pending');
  await ts.stop();

  failing = false;
  ts = await startTestServer({ store, env });
  t.teardown(() => ts.stop());
  while (!received.some((r) => r.body.includes('ext.notify_call.on_released')) && Date.now() < end + 20_000) await new Promise((r) => setTimeout(r, 50));
  const secret = (await new WebhookStore(ts.store).target(ts.accountId))!.secret;
  const wh = new Webhook(secret);
  const events = received.map((r) => wh.verify(r.body, r.headers as Record<string, string>) as { type: string; data: { res_id: string; event_id: number } });
  const ofCall = events.filter((e) => e.data.res_id === id);
  t.ok(ofCall.length >= 2, `${ofCall.length} events of the call arrived, signed with the account's secret`);
  t.equal(ofCall.at(-1)!.type, 'ext.notify_call.on_released', 'on_released last');
  const ids = ofCall.map((e) => e.data.event_id);
  t.same(ids, [...new Set(ids)].sort((a, b) => a - b), 'each once, in order');
  const log = (await (await fetch(`${ts.httpUrl}/account/${ts.accountId}/events?after=0`, { headers: { authorization: `Bearer ${ts.apiKey}` } })).json()) as {
    events: Array<{ params: { event_id: number; res_id: string } }>;
  };
  t.same(ids, log.events.filter((e) => e.params.res_id === id).map((e) => e.params.event_id), 'every event of the call in the durable log');
  const page = (await (await fetch(`${ts.httpUrl}/account/${ts.accountId}/webhooks/attempts?limit=200`, { headers: { authorization: `Bearer ${ts.apiKey}` } })).json()) as {
    attempts: Array<{ event_id: number; target: string; status: number | null; outcome: string }>;
  };
  const first = page.attempts.filter((a) => a.event_id === ids[0]);
  t.ok(first.every((a) => a.target === 'status_url'), 'no event_url set: status_url attempts only');
  t.same(first.at(0), { ...first.at(0), status: 204, outcome: 'delivered' }, 'the last attempt delivered');
  t.ok(first.some((a) => a.status === 500 && a.outcome === 'retrying'), 'after failed ones');
});
