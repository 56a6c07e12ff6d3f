/**
 * The event log's commit timing (issue 9, Speed) and the diagnostics
 * channels the bench's probe reads: a commit happens at the end of the
 * event-loop turn that queued it, never after a timer, with or without a
 * store (SQLite here; PostgreSQL's commit is network I/O, same code path); the timing points carry the ids the client sees.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { EventLog } from '../../lib/events/EventLog.js';
import type { ResourceEvent } from '../../lib/resources/ResourceRegistry.js';
import { Store } from '../../lib/store/Store.js';
import { monotonicMs, type EventCommittedMessage, type FrameAnsweredMessage } from '../../lib/util/diagnostics.js';
import { systemClock } from '../../lib/util/Clock.js';
import { startTestServer } from '../support/startTestServer.js';

const log = pino({ level: 'silent' });

const progress = (resId: string): ResourceEvent => ({
  resId,
  resourceClass: 'ext.duo_callback',
  name: 'on_progress',
  accountId: 'a',
  ownerId: 's',
  params: { res_id: resId },
});

/** Collects a channel's messages for the rest of the test. */
function listen<T>(t: Test, name: string): T[] {
  const seen: T[] = [];
  const onMessage = (m: unknown): void => void seen.push(m as T);
  subscribe(name, onMessage);
  t.teardown(() => void unsubscribe(name, onMessage));
  return seen;
}

for (const backend of ['memory', 'sqlite'] as const) {
  t.test(`${backend}: queued events commit without waiting for a timer`, async (t) => {
    let store: Store | null = null;
    if (backend === 'sqlite') {
      const dir = mkdtempSync(join(tmpdir(), 'cti-commit-'));
      store = await Store.open({ type: 'sqlite', path: join(dir, 'cti.sqlite') });
      t.teardown(async () => {
        await store!.close();
        rmSync(dir, { recursive: true, force: true });
      });
    }
    const eventLog = new EventLog(store, { clock: systemClock, log });
    const committed = listen<EventCommittedMessage>(t, 'cti:event-log:committed');
    const emitted: number[] = [];
    eventLog.on('committed', (e) => emitted.push(e.eventId));

    // Every timer armed on the way to the commit is counted: the old group commit armed a 2 ms one.
    const realSetTimeout = globalThis.setTimeout;
    let timers = 0;
    globalThis.setTimeout = ((...args: Parameters<typeof setTimeout>) => {
      timers++;
      return realSetTimeout(...args);
    }) as typeof setTimeout;
    const before = monotonicMs();
    try {
      eventLog.append(progress('r1'));
      eventLog.append(progress('r2'));
      await eventLog.flush();
    } finally {
      globalThis.setTimeout = realSetTimeout;
    }
    t.equal(timers, 0, 'no timer between append and commit: nothing waits for companions');
    t.same(emitted, [1, 2], 'both events in one commit, in order');
    t.same(
      committed.map((m) => m.eventId),
      [1, 2],
      'the probe channel names the committed ids',
    );
    for (const m of committed) {
      t.ok(before <= m.queuedAt && m.queuedAt <= m.committedAt && m.committedAt <= monotonicMs(), 'queued ≤ committed, on the monotonic clock');
    }
  });
}

t.test('through the server: the committed ids are the notifications event_ids; each construct frame is timed', async (t) => {
  const ts = await startTestServer();
  t.teardown(() => ts.stop());
  const committed = listen<EventCommittedMessage>(t, 'cti:event-log:committed');
  const answered = listen<FrameAnsweredMessage>(t, 'cti:ws:answered');
  const client = await ts.connect();
  t.teardown(() => client.close());
  const sent = monotonicMs();
  const reply = await client.call('ext.duo_callback.construct', { to1_uri: '13967446745', to2_uri: '13009347583' });
  const resId = (reply.result as { res_id: string }).res_id;
  const [event] = await client.waitForEvent('ext.duo_callback.on_progress', resId);
  t.ok(
    committed.some((m) => m.eventId === event!.params!.event_id),
    'the event the client got was published with its event_id',
  );
  t.equal(answered.length, 1, 'one frame answered');
  t.ok(sent <= answered[0]!.receivedAt && answered[0]!.receivedAt <= answered[0]!.answeredAt, 'received ≤ answered, after the client sent it');
});
