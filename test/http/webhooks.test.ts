/**
 * Webhooks through the whole server (issue 10): an account's event_url gets
 * every event of its HTTP-constructed call, signed, in order, after a
 * receiver that fails first; the attempts are readable over the HTTP API by
 * that account only; the metrics count them.
 */
import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import t from 'tap';
import { WebhookStore } from '../../lib/events/webhooks/WebhookStore.js';
import { RpcTestClient } from '../support/RpcTestClient.js';
import { startTestServer } from '../support/startTestServer.js';

t.test('event_url: every event of a call, verified, in order; attempts over HTTP and RPC', async (t) => {
  const received: Array<{ body: string; headers: IncomingHttpHeaders }> = [];
  let requests = 0;
  const receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (++requests <= 2) return void res.writeHead(503).end();
      received.push({ body: Buffer.concat(chunks).toString(), headers: req.headers });
      res.writeHead(200).end('ok');
    });
  });
  receiver.listen(0, '127.0.0.1');
  await once(receiver, 'listening');
  t.teardown(() => receiver.close());

  const ts = await startTestServer({ env: { CTI_WEBHOOKS__ALLOW_PRIVATE_TARGETS: 'true', CTI_WEBHOOKS__FIRST_RETRY_SECONDS: '1', CTI_WEBHOOKS__MAX_RETRY_DELAY_SECONDS: '1' } });
  t.teardown(() => ts.stop());
  const { secret } = await new WebhookStore(ts.store).setUrl(ts.accountId, `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/cti`, Date.now());
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
  t.same(first.map((a) => [a.status, a.outcome]), [[503, 'retrying'], [503, 'retrying'], [200, 'delivered']], 'first event: two 503s then 200');
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
