/**
 * The retention job of the real server on both stores (issue 9, issue 10):
 * at start-up (then hourly) it deletes CDRs older than `retention.cdrDays`,
 * events older than `retention.eventDays`, and webhook attempts and finished
 * status_url targets older than `retention.webhookDays`; everything younger,
 * and a status_url target still delivering whatever its age, stays.
 */
import t from 'tap';
import { Store } from '../../lib/store/Store.js';
import { startTestServer } from '../support/startTestServer.js';
import { storeBackends } from '../support/storeBackends.js';

const DAY_MS = 86_400_000;

for (const backend of storeBackends(t)) {
  t.test(`${backend.name}: CDRs, events, webhook attempts and finished status_url targets pruned by their own retention`, async (t) => {
    const config = await backend.newStore();
    const now = Date.now();
    const ago = (days: number): number => now - days * DAY_MS;
    const seed = await Store.open(config);
    const { db } = seed;
    const resource = (resId: string, releasedAt: number) => ({
      res_id: resId,
      account_id: 'acc',
      node_id: 'another-node',
      class: 'ext.notify_call',
      process_id: releasedAt,
      owner_id: 'owner',
      user_data: null,
      live: 0,
      created_at: releasedAt - 60_000,
      released_at: releasedAt,
      cdr: '{}',
      dialogs: null,
      context: null,
    });
    await db.insertInto('resources').values([resource('cdr-40d', ago(40)), resource('cdr-10d', ago(10))]).execute();
    const event = (eventId: number, createdAt: number) => ({ account_id: 'acc', event_id: eventId, res_id: 'cdr-10d', method: 'ext.notify_call.on_progress', params: '{}', created_at: createdAt });
    await db.insertInto('events').values([event(1, ago(40)), event(2, ago(10))]).execute();
    const attempt = (eventId: number, createdAt: number) => ({
      account_id: 'acc',
      event_id: eventId,
      target: 'event_url' as const,
      attempt: 1,
      status: 200,
      latency_ms: 5,
      error: null,
      outcome: 'delivered',
      created_at: createdAt,
    });
    await db.insertInto('webhook_attempts').values([attempt(1, ago(10)), attempt(2, ago(1))]).execute();
    const callTarget = (resId: string, done: number, updatedAt: number) => ({
      res_id: resId,
      account_id: 'acc',
      url: 'https://crm.example/status',
      delivered_event_id: 0,
      pending_attempts: 0,
      next_attempt_at: 0,
      done,
      updated_at: updatedAt,
    });
    await db
      .insertInto('webhook_call_targets')
      .values([callTarget('done-10d', 1, ago(10)), callTarget('done-1d', 1, ago(1)), callTarget('delivering-10d', 0, ago(10))])
      .execute();

    const ts = await startTestServer({ store: config, env: { CTI_RETENTION__CDR_DAYS: '30', CTI_RETENTION__EVENT_DAYS: '30', CTI_RETENTION__WEBHOOK_DAYS: '7' } });
    t.teardown(async () => {
      await ts.stop();
      await seed.close();
    });
    const left = async () => ({
      cdrs: (await db.selectFrom('resources').select('res_id').orderBy('res_id').execute()).map((r) => r.res_id),
      events: (await db.selectFrom('events').select('event_id').orderBy('event_id').execute()).map((r) => Number(r.event_id)),
      attempts: (await db.selectFrom('webhook_attempts').select('event_id').orderBy('event_id').execute()).map((r) => Number(r.event_id)),
      callTargets: (await db.selectFrom('webhook_call_targets').select('res_id').orderBy('res_id').execute()).map((r) => r.res_id),
    });
    const expected = { cdrs: ['cdr-10d'], events: [2], attempts: [2], callTargets: ['delivering-10d', 'done-1d'] };
    let rows = await left();
    for (const until = Date.now() + 10_000; Date.now() < until && JSON.stringify(rows) !== JSON.stringify(expected); rows = await left()) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    t.same(rows, expected, 'older than its retention: gone; younger, or still delivering: kept');
  });

  t.test(`${backend.name}: webhook attempts and events a delivery may still be retrying are kept even when webhookDays and eventDays are shorter than retryForHours`, async (t) => {
    const config = await backend.newStore();
    const now = Date.now();
    const seed = await Store.open(config);
    const { db } = seed;
    // A first attempt 2 days ago of a delivery retried for 72 h: the dispatcher times its give-up from it (firstAttemptAt).
    const attempt = (eventId: number, createdAt: number) => ({ account_id: 'acc', event_id: eventId, target: 'event_url' as const, attempt: 1, status: 503, latency_ms: 5, error: 'HTTP 503', outcome: 'retrying', created_at: createdAt });
    await db.insertInto('webhook_attempts').values([attempt(1, now - 10 * DAY_MS), attempt(2, now - 2 * DAY_MS)]).execute();
    // The events such a delivery still has to send.
    const event = (eventId: number, createdAt: number) => ({ account_id: 'acc', event_id: eventId, res_id: 'r', method: 'ext.notify_call.on_progress', params: '{}', created_at: createdAt });
    await db.insertInto('events').values([event(1, now - 10 * DAY_MS), event(2, now - 2 * DAY_MS)]).execute();
    const ts = await startTestServer({
      store: config,
      env: { CTI_RETENTION__WEBHOOK_DAYS: '1', CTI_RETENTION__EVENT_DAYS: '1', CTI_WEBHOOKS__RETRY_FOR_HOURS: '72', CTI_WEBHOOKS__MAX_RETRY_DELAY_SECONDS: '3600' },
    });
    t.teardown(async () => {
      await ts.stop();
      await seed.close();
    });
    const left = async () => ({
      attempts: (await db.selectFrom('webhook_attempts').select('event_id').orderBy('event_id').execute()).map((r) => Number(r.event_id)),
      events: (await db.selectFrom('events').select('event_id').orderBy('event_id').execute()).map((r) => Number(r.event_id)),
    });
    const expected = { attempts: [2], events: [2] };
    let rows = await left();
    for (const until = Date.now() + 10_000; Date.now() < until && JSON.stringify(rows) !== JSON.stringify(expected); rows = await left()) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    t.same(rows, expected, 'older than the retry window and the retention: gone; within the retry window: kept');
  });
}
