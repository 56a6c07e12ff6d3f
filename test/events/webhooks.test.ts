/**
 * Issue 10 webhooks over a real store and a real HTTP receiver on loopback:
 * signed (verified with standardwebhooks), in order, retried with backoff
 * across a restart, attempts stored; the default refuses private targets.
 */
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { Webhook } from 'standardwebhooks';
import t from 'tap';
import { EventLog } from '../../lib/events/EventLog.js';
import { WebhookDispatcher, retryDelayMs, DEFAULT_RETRY_SCHEDULE } from '../../lib/events/webhooks/WebhookDispatcher.js';
import { WebhookStore } from '../../lib/events/webhooks/WebhookStore.js';
import { WebhookTransport } from '../../lib/events/webhooks/WebhookTransport.js';
import { checkWebhookUrl, isPrivateAddress } from '../../lib/events/webhooks/targetAddress.js';
import { Store } from '../../lib/store/Store.js';
import { systemClock } from '../../lib/util/Clock.js';
import { storeBackends } from '../support/storeBackends.js';
import { startWebhookReceiver, type ReceivedWebhook } from '../support/webhookReceiver.js';

const log = pino({ level: 'silent' });
const FAST = { firstDelayMs: 50, maxDelayMs: 200, retryForMs: 60_000 };

type Received = ReceivedWebhook;

/** A receiver that answers 500 to its first `failFirst` requests, then 204. */
const receiver = (failFirst: number) => startWebhookReceiver((n) => n <= failFirst);

function event(accountId: string, resId: string, n: number) {
  return { resId, resourceClass: 'ext.notify_call' as const, name: 'on_progress' as const, accountId, ownerId: 'o', params: { res_id: resId, n } };
}

function start(store: Store, eventLog: EventLog, allowPrivateTargets: boolean) {
  const dispatcher = new WebhookDispatcher({
    store: new WebhookStore(store),
    eventLog,
    transport: new WebhookTransport({ timeoutMs: 2000, allowPrivateTargets }),
    clock: systemClock,
    log,
    schedule: FAST,
  });
  return dispatcher;
}

async function until(what: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await what())) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

t.test('URL grammar and private address classes', async (t) => {
  for (const bad of ['ftp://x.example/', 'http://u:p@x.example/', 'x.example/hook', `https://x.example/${'a'.repeat(2100)}`, 'https://x.example/#f']) {
    t.throws(() => checkWebhookUrl(bad), { name: 'InvalidWebhookUrl' }, bad.slice(0, 40));
  }
  t.equal(checkWebhookUrl('https://hooks.example.com/a?b=1').href, 'https://hooks.example.com/a?b=1');
  for (const a of ['127.0.0.1', '10.1.2.3', '172.16.0.1', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '224.0.0.1', '::1', '::', 'fd00::1', 'fe80::1', 'ff02::1', '::ffff:127.0.0.1', '::ffff:10.0.0.1']) {
    t.ok(isPrivateAddress(a), `${a} refused`);
  }
  for (const a of ['93.184.216.34', '8.8.8.8', '2606:4700::1111', '172.32.0.1', '100.128.0.1']) t.notOk(isPrivateAddress(a), `${a} allowed`);
  const d = retryDelayMs(DEFAULT_RETRY_SCHEDULE, 1, () => 0.5);
  t.equal(d, 5000, 'first retry after 5 s (no jitter at the midpoint)');
  t.equal(retryDelayMs(DEFAULT_RETRY_SCHEDULE, 30, () => 0.5), 3_600_000, 'capped at 1 h');
});

t.test('default refuses loopback (literal and by name), attempt recorded, no request sent', async (t) => {
  const r = await receiver(0);
  t.teardown(() => r.server.close());
  const transport = new WebhookTransport({ timeoutMs: 2000, allowPrivateTargets: false });
  const literal = await transport.post(new URL(r.url), 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'a:1', '{}', new Date());
  t.match(literal, { status: null, error: /refused/ });
  const byName = await transport.post(new URL(r.url.replace('127.0.0.1', 'localhost')), 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'a:1', '{}', new Date());
  t.match(byName, { status: null, error: /refused/ });
  t.equal(r.requests(), 0, 'the receiver saw nothing');
});

t.test('redirects are not followed; the body read is bounded', async (t) => {
  let hits = 0;
  const server = createServer((req, res) => {
    hits++;
    if (req.url === '/redirect') return void res.writeHead(302, { location: '/other' }).end();
    res.writeHead(200);
    res.end('x'.repeat(10_000_000));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const transport = new WebhookTransport({ timeoutMs: 2000, allowPrivateTargets: true });
  t.match(await transport.post(new URL(`${base}/redirect`), 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'a:1', '{}', new Date()), { status: 302, error: 'HTTP 302' });
  t.equal(hits, 1, 'the redirect was not followed');
  const big = await transport.post(new URL(`${base}/big`), 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'a:2', '{}', new Date());
  t.match(big, { status: 200, error: null }, 'a 2xx is delivered without reading 10 MB');
});

for (const backend of storeBackends(t)) {
  t.test(`${backend.name}: failing receiver + restart with retries pending: every event, verified, in order`, async (t) => {
    const config = await backend.newStore();
    const r = await receiver(3);
    t.teardown(() => r.server.close());

    let store = await Store.open(config);
    let eventLog = new EventLog(store, { clock: systemClock, log });
    await eventLog.flush();
    eventLog.append(event('acc', 'before', 0));
    await eventLog.flush();
    const targets = new WebhookStore(store);
    const { secret } = await targets.setUrl('acc', r.url, Date.now());
    t.match(secret, /^whsec_/);
    const firstRun = start(store, eventLog, true);
    let recorded = 0;
    // Stopped as the second failed attempt is stored: no attempt is in flight (and still recording) when the store closes.
    firstRun.on('attempt', () => {
      if (++recorded === 2) firstRun.stop();
    });
    await firstRun.start();
    for (let n = 1; n <= 3; n++) {
      eventLog.append(event('acc', 'r1', n));
      eventLog.append(event('acc', 'r2', n));
    }
    await eventLog.flush();
    await until(() => recorded >= 2); // failing: retries pending
    await firstRun.stop();
    await store.close();

    // Restart: new store handle, new log, new dispatcher; delivery resumes from the stored cursor.
    store = await Store.open(config);
    eventLog = new EventLog(store, { clock: systemClock, log });
    const dispatcher = start(store, eventLog, true);
    await dispatcher.start();
    eventLog.append(event('acc', 'r1', 4));
    await eventLog.flush();
    await until(() => r.received.length >= 7);
    await dispatcher.stop();

    const wh = new Webhook(secret);
    const bodies = r.received.map((m) => {
      const verified = wh.verify(m.body, m.headers as Record<string, string>) as { type: string; data: { res_id: string; n: number; event_id: number } };
      t.equal(m.headers['webhook-id'], `acc:${verified.data.event_id}`, 'webhook-id is the event id');
      return verified.data;
    });
    t.same(bodies.map((b) => b.event_id), [2, 3, 4, 5, 6, 7, 8], 'each event once, in event_id order, none from before the URL');
    t.same(bodies.filter((b) => b.res_id === 'r1').map((b) => b.n), [1, 2, 3, 4], 'in order per resource');
    t.throws(() => wh.verify(r.received[0]!.body.replace('r', 'R'), r.received[0]!.headers as Record<string, string>), 'a tampered body fails verification');

    const attempts = await new WebhookStore(store).attempts('acc', 100);
    const first = attempts.filter((a) => a.event_id === 2).sort((a, b) => a.attempt - b.attempt);
    t.same(first.map((a) => [a.attempt, a.status, a.outcome]), [[1, 500, 'retrying'], [2, 500, 'retrying'], [3, 500, 'retrying'], [4, 204, 'delivered']]);
    t.ok(first.every((a) => a.latency_ms >= 0));
    const page = await new WebhookStore(store).attempts('acc', 2, 4);
    t.same(page.map((a) => a.event_id), [3, 2], 'paged: older events before the token');
    await store.close();
  });

  t.test(`${backend.name}: retries end: marked failed, the next event goes`, async (t) => {
    const store = await Store.open(await backend.newStore());
    t.teardown(() => store.close());
    const r = await receiver(2);
    t.teardown(() => r.server.close());
    const eventLog = new EventLog(store, { clock: systemClock, log });
    await new WebhookStore(store).setUrl('acc', r.url, Date.now());
    const dispatcher = new WebhookDispatcher({
      store: new WebhookStore(store),
      eventLog,
      transport: new WebhookTransport({ timeoutMs: 2000, allowPrivateTargets: true }),
      clock: systemClock,
      log,
      schedule: { firstDelayMs: 30, maxDelayMs: 30, retryForMs: 1 },
    });
    await dispatcher.start();
    t.teardown(() => dispatcher.stop());
    eventLog.append(event('acc', 'r1', 1));
    eventLog.append(event('acc', 'r1', 2));
    await until(() => r.received.length >= 1);
    const attempts = await new WebhookStore(store).attempts('acc', 100);
    t.same(attempts.filter((a) => a.event_id === 1).map((a) => a.outcome).sort(), ['failed', 'retrying']);
    t.equal(JSON.parse(r.received[0]!.body).data.n, 2, 'the next event was delivered after the failed one');
  });

  t.test(`${backend.name}: a delivery whose first attempt was pruned is past its retry window: marked failed, not retried forever`, async (t) => {
    const store = await Store.open(await backend.newStore());
    t.teardown(() => store.close());
    const r = await receiver(100);
    t.teardown(() => r.server.close());
    const eventLog = new EventLog(store, { clock: systemClock, log });
    const webhooks = new WebhookStore(store);
    await webhooks.setUrl('acc', r.url, Date.now());
    const dispatcher = new WebhookDispatcher({
      store: webhooks,
      eventLog,
      transport: new WebhookTransport({ timeoutMs: 2000, allowPrivateTargets: true }),
      clock: systemClock,
      log,
      schedule: { firstDelayMs: 1000, maxDelayMs: 1000, retryForMs: 3_600_000 },
    });
    await dispatcher.start();
    t.teardown(() => dispatcher.stop());
    eventLog.append(event('acc', 'r1', 1));
    eventLog.append(event('acc', 'r1', 2));
    await until(async () => (await webhooks.attempts('acc', 100)).length >= 1);
    // What retention does to an attempt older than the retry window (CtiServer keeps attempts at least that long).
    await store.db.deleteFrom('webhook_attempts').where('event_id', '=', 1).where('attempt', '=', 1).execute();
    await until(async () => (await webhooks.attempts('acc', 100)).some((a) => a.event_id === 1 && a.attempt === 2));
    const second = (await webhooks.attempts('acc', 100)).find((a) => a.event_id === 1 && a.attempt === 2);
    t.equal(second?.outcome, 'failed', 'the second attempt gives up');
    await until(async () => (await webhooks.attempts('acc', 100)).some((a) => a.event_id === 2));
    t.pass('the next event is tried');
  });
}

for (const backend of storeBackends(t)) {
  t.test(`${backend.name}: a call's status_url: its events only, verified, in order, resumed after a restart; event_url gets them too`, async (t) => {
    const config = await backend.newStore();
    const account = await receiver(0);
    const call = await receiver(3);
    t.teardown(() => account.server.close());
    t.teardown(() => call.server.close());
    const record = (resId: string, statusUrl?: string) => ({
      resId,
      accountId: 'acc',
      nodeId: 'n1',
      resourceClass: 'ext.notify_call' as const,
      processId: 1,
      ownerId: 'o',
      userData: null,
      createdAt: Date.now(),
      ...(statusUrl ? { statusUrl } : {}),
    });
    const released = (resId: string) => ({ ...event('acc', resId, 9), name: 'on_released' as const });

    let store = await Store.open(config);
    let eventLog = new EventLog(store, { clock: systemClock, log });
    eventLog.append(event('acc', 'older', 0));
    await eventLog.flush();
    const { secret } = await new WebhookStore(store).setUrl('acc', account.url, Date.now());
    let dispatcher = start(store, eventLog, true);
    await dispatcher.start();
    await eventLog.constructed(record('c1', call.url));
    await eventLog.constructed(record('c2'));
    for (let n = 1; n <= 2; n++) {
      eventLog.append(event('acc', 'c1', n));
      eventLog.append(event('acc', 'c2', n));
    }
    await eventLog.flush();
    await until(() => call.requests() >= 2); // the status_url fails: its retries are pending
    await dispatcher.stop();
    await store.close();

    store = await Store.open(config);
    eventLog = new EventLog(store, { clock: systemClock, log });
    dispatcher = start(store, eventLog, true);
    await dispatcher.start();
    t.same(await new WebhookStore(store).openCallTargets(), [['acc', 'c1']], 'the pending status_url is resumed after the restart');
    eventLog.append(released('c1'));
    eventLog.append(released('c2'));
    await eventLog.flush();
    await until(() => call.received.length >= 3 && account.received.length >= 6);
    await new Promise((r) => setTimeout(r, 200)); // nothing more may come
    await dispatcher.stop();

    const wh = new Webhook(secret);
    // At least once: a POST cut short by the stop is sent again; receivers drop repeats by webhook-id.
    const verified = (list: Received[]) => {
      const byId = new Map(list.map((m) => [m.headers['webhook-id'], m]));
      return [...byId.values()].map((m) => (wh.verify(m.body, m.headers as Record<string, string>) as { data: { res_id: string; n: number; event_id: number } }).data);
    };
    const toCall = verified(call.received);
    t.same(toCall.map((d) => [d.res_id, d.n]), [['c1', 1], ['c1', 2], ['c1', 9]], "the status_url got its call's events only, in order, signed with the account's secret");
    const ids = toCall.map((d) => d.event_id);
    t.same(ids, [...ids].sort((a, b) => a - b));
    t.same(verified(account.received).map((d) => d.res_id), ['c1', 'c2', 'c1', 'c2', 'c1', 'c2'], 'the event_url got every event (both targets, as Twilio does)');

    const webhooks = new WebhookStore(store);
    t.match(await webhooks.callTarget('c1'), { done: 1, delivered_event_id: ids.at(-1) }, 'done after on_released');
    t.same(await webhooks.openCallTargets(), []);
    t.equal(await webhooks.callTarget('c2'), undefined, 'no target without status_url');
    const attempts = (await webhooks.attempts('acc', 100)).filter((a) => a.event_id === ids[0]).sort((a, b) => a.attempt - b.attempt);
    t.match(attempts.filter((a) => a.target === 'event_url'), [{ attempt: 1, status: 204, outcome: 'delivered' }], 'event_url: delivered at once');
    const toStatus = attempts.filter((a) => a.target === 'status_url');
    t.same(toStatus.map((a) => a.attempt), toStatus.map((_, i) => i + 1), 'status_url attempts numbered 1, 2, 3 …');
    t.ok(toStatus.length >= 3, `status_url: ${toStatus.length} attempts, stored per target beside the event_url's`);
    t.ok(toStatus.slice(0, -1).every((a) => a.status === 500 && a.outcome === 'retrying'), 'failed ones retried');
    t.match(toStatus.at(-1), { status: 204, outcome: 'delivered' }, 'then delivered');
    await store.close();
  });
}
