import type { Clock } from '../../util/Clock.js';
import type { Logger } from '../../util/logger.js';
import { TypedEventEmitter } from '../../util/TypedEmitter.js';
import type { WebhookTargetKind } from '../../store/StoreTables.js';
import type { EventLog, LoggedEvent, ResourceRecord } from '../EventLog.js';
import type { DeliveryCursor, WebhookStore } from './WebhookStore.js';
import type { DeliveryResult, WebhookTransport } from './WebhookTransport.js';

/** Retry timing, milliseconds (docs/http-api.md, Webhooks). */
export interface RetrySchedule {
  /** Delay after the first failure; doubled after each further one. */
  readonly firstDelayMs: number;
  /** No delay grows beyond this. */
  readonly maxDelayMs: number;
  /** After this long since an event's first attempt, its next failure marks it failed. */
  readonly retryForMs: number;
}

/** How long an account found without event_url is not looked up again: a new URL set by the admin command applies within this. */
const NO_TARGET_RECHECK_MS = 5_000;

/** Default: 5 s, 10 s, 20 s … capped at 1 h, for 25 h (at least 24 h after jitter). */
export const DEFAULT_RETRY_SCHEDULE: RetrySchedule = { firstDelayMs: 5_000, maxDelayMs: 3_600_000, retryForMs: 25 * 3_600_000 };

export interface WebhookDispatcherOptions {
  readonly store: WebhookStore;
  readonly eventLog: EventLog;
  readonly transport: WebhookTransport;
  readonly clock: Clock;
  readonly log: Logger;
  readonly schedule?: RetrySchedule;
  /** The most POSTs in flight at once, over all accounts. */
  readonly maxConcurrent?: number;
}

export type WebhookDispatcherEvents = {
  /** One POST done: `retrying` (will be retried), `delivered` (2xx) or `failed` (retries exhausted). */
  attempt: (outcome: AttemptOutcome) => void;
};

export type AttemptOutcome = 'delivered' | 'retrying' | 'failed';

/** The delay before attempt `failures + 1`: exponential, capped, with ±50 % jitter (so receivers coming back are not hit in step). */
export function retryDelayMs(schedule: RetrySchedule, failures: number, random = Math.random): number {
  const base = Math.min(schedule.maxDelayMs, schedule.firstDelayMs * 2 ** Math.min(failures - 1, 40));
  return Math.round(base * (0.5 + random()));
}

/**
 * One delivery stream: the account's event_url (every event of the account)
 * or one call's status_url (that resource's events, until its on_released).
 */
interface Stream {
  readonly kind: WebhookTargetKind;
  readonly accountId: string;
  /** With `status_url`: the resource. */
  readonly resId?: string;
  /** Loop key: the account id, or `res:<res_id>`. */
  readonly key: string;
}

/** Where a stream stands now: its URL, the signing secret and its cursor. */
interface StreamState extends DeliveryCursor {
  readonly url: string;
  readonly secret: string;
}

const accountStream = (accountId: string): Stream => ({ kind: 'event_url', accountId, key: accountId });
const callStream = (accountId: string, resId: string): Stream => ({ kind: 'status_url', accountId, resId, key: `res:${resId}` });

/**
 * Delivers every committed event of each account with an event_url, and of
 * each call with a status_url (issue 10), from the durable log, one at a time
 * per stream in event_id order (so in order per resource too). Each stream's
 * cursor and retry state live in the store: a restart resumes where delivery
 * stopped, waiting out a pending backoff. A 2xx ends an event; other answers
 * and errors retry per {@link RetrySchedule}; once `retryForMs` has passed
 * the event is marked failed and the next one goes. Head-of-line: a failing
 * receiver holds back its later events, which is what keeps the order. The
 * two kinds are independent: a call with a status_url also goes to the
 * account's event_url (as Twilio's StatusCallback does), each at its own pace.
 */
export class WebhookDispatcher extends TypedEventEmitter<WebhookDispatcherEvents> {
  readonly #o: WebhookDispatcherOptions;
  readonly #schedule: RetrySchedule;
  readonly #maxConcurrent: number;
  /** Streams whose loop runs (by key) → wake the loop early. */
  readonly #loops = new Map<string, () => void>();
  /** Running loops: stop() waits for them, so an attempt in flight is stored before the store closes. */
  readonly #running = new Set<Promise<void>>();
  /** Calls whose status_url has events left: res_id → account id (to start their loop on a new event). */
  readonly #calls = new Map<string, string>();
  readonly #waitingForSlot: Array<() => void> = [];
  /** Accounts found without an event_url → when (clock ms): saves a store query per committed event. */
  readonly #withoutTarget = new Map<string, number>();
  /** Per stream with a running loop: [last committed event id seen, delivery cursor]. */
  readonly #backlog = new Map<string, [number, number]>();
  #inFlight = 0;
  #stopped = false;
  readonly #onCommitted = (event: LoggedEvent) => {
    const call = this.#calls.has(event.resId) ? callStream(event.accountId, event.resId) : undefined;
    for (const stream of call ? [accountStream(event.accountId), call] : [accountStream(event.accountId)]) {
      const backlog = this.#backlog.get(stream.key);
      if (backlog) backlog[0] = Math.max(backlog[0], event.eventId);
      this.#wake(stream);
    }
  };
  readonly #onStored = (record: ResourceRecord) => {
    if (!record.statusUrl) return;
    this.#calls.set(record.resId, record.accountId);
    this.#wake(callStream(record.accountId, record.resId));
  };

  constructor(options: WebhookDispatcherOptions) {
    super();
    this.#o = options;
    this.#schedule = options.schedule ?? DEFAULT_RETRY_SCHEDULE;
    this.#maxConcurrent = options.maxConcurrent ?? 16;
  }

  /** Starts a loop for every account with an event_url and every call with events left for its status_url; follows new ones. */
  async start(): Promise<void> {
    this.#o.eventLog.on('stored', this.#onStored);
    this.#o.eventLog.on('committed', this.#onCommitted);
    for (const accountId of await this.#o.store.activeAccounts()) this.wake(accountId);
    for (const [accountId, resId] of await this.#o.store.openCallTargets()) {
      this.#calls.set(resId, accountId);
      this.#wake(callStream(accountId, resId));
    }
  }

  /** Events committed but not yet delivered or failed, over the streams being delivered (the queue depth metric; a status_url's count is an upper bound: other calls' events in between count too). */
  get queueDepth(): number {
    let depth = 0;
    for (const [last, cursor] of this.#backlog.values()) depth += Math.max(0, last - cursor);
    return depth;
  }

  /** Makes the account's event_url loop look for work now (new event, URL set). */
  wake(accountId: string): void {
    this.#wake(accountStream(accountId));
  }

  #wake(stream: Stream): void {
    if (this.#stopped) return;
    const wake = this.#loops.get(stream.key);
    if (wake) return wake();
    if (stream.kind === 'event_url') {
      const checked = this.#withoutTarget.get(stream.accountId);
      if (checked !== undefined && this.#o.clock.now() - checked < NO_TARGET_RECHECK_MS) return;
      this.#withoutTarget.delete(stream.accountId);
    }
    this.#loops.set(stream.key, () => undefined);
    const running = this.#run(stream).catch((err: unknown) => {
      this.#loops.delete(stream.key);
      this.#backlog.delete(stream.key);
      this.#o.log.error({ err, accountId: stream.accountId, resId: stream.resId }, 'webhook loop failed');
    });
    this.#running.add(running);
    void running.finally(() => this.#running.delete(running));
  }

  /**
   * Stops taking work; resolves once POSTs in flight finished and their
   * attempts are stored (bounded by the request timeout), so the store may
   * close then.
   */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#o.eventLog.off('committed', this.#onCommitted);
    this.#o.eventLog.off('stored', this.#onStored);
    for (const wake of this.#loops.values()) wake();
    await Promise.allSettled([...this.#running]);
  }

  async #run(stream: Stream): Promise<void> {
    let woken = false;
    while (!this.#stopped) {
      woken = false;
      this.#loops.set(stream.key, () => void (woken = true));
      const state = await this.#state(stream);
      if (!state) break;
      const backlog = this.#backlog.get(stream.key) ?? [state.delivered_event_id, 0];
      backlog[1] = state.delivered_event_id;
      this.#backlog.set(stream.key, backlog);
      const wait = state.next_attempt_at - this.#o.clock.now();
      if (wait > 0) {
        await this.#sleep(stream.key, wait);
        continue;
      }
      const { eventLog } = this.#o;
      const [event] = stream.resId
        ? await eventLog.replayResource(stream.accountId, stream.resId, state.delivered_event_id, 1)
        : await eventLog.replay(stream.accountId, state.delivered_event_id, 1);
      if (event) backlog[0] = Math.max(backlog[0], event.eventId);
      if (!event) {
        if (woken) continue;
        break; // idle: the next committed event starts a new loop
      }
      const result = await this.#deliver(new URL(state.url), state.secret, event);
      if (this.#stopped && result.status === null) break; // cut short by stop: retried after restart
      await this.#record(stream, state, event, result);
    }
    this.#loops.delete(stream.key);
    this.#backlog.delete(stream.key);
  }

  /** The stream's URL, secret and cursor; undefined when there is nothing to deliver to (no event_url; a status_url done). */
  async #state(stream: Stream): Promise<StreamState | undefined> {
    const { store, clock } = this.#o;
    if (!stream.resId) {
      const target = await store.target(stream.accountId);
      if (!target?.url) this.#withoutTarget.set(stream.accountId, clock.now());
      return target?.url ? { ...target, url: target.url } : undefined;
    }
    const target = await store.callTarget(stream.resId);
    if (!target || target.done) {
      this.#calls.delete(stream.resId);
      return undefined;
    }
    return { ...target, secret: await store.secret(stream.accountId, clock.now()) };
  }

  async #deliver(url: URL, secret: string, event: LoggedEvent): Promise<DeliveryResult> {
    while (this.#inFlight >= this.#maxConcurrent) await new Promise<void>((resolve) => this.#waitingForSlot.push(resolve));
    // Stopped while waiting for a slot: no new POST (the loop stops without an attempt; the next start sends it).
    if (this.#stopped) {
      this.#waitingForSlot.shift()?.();
      return { status: null, latencyMs: 0, error: 'stopped' };
    }
    this.#inFlight++;
    try {
      const now = new Date(this.#o.clock.now());
      const body = JSON.stringify({ type: event.method, timestamp: new Date(event.time).toISOString(), data: event.params });
      return await this.#o.transport.post(url, secret, `${event.accountId}:${event.eventId}`, body, now);
    } finally {
      this.#inFlight--;
      this.#waitingForSlot.shift()?.();
    }
  }

  /**
   * Stores the attempt; moves the cursor past the event (delivered or
   * failed) or schedules the retry. A status_url is done once its
   * resource's on_released is past.
   */
  async #record(stream: Stream, state: StreamState, event: LoggedEvent, result: DeliveryResult): Promise<void> {
    const { accountId } = stream;
    const attempt = state.pending_attempts + 1;
    const now = this.#o.clock.now();
    const ok = result.error === null;
    // A retry whose first attempt's row is gone: retention keeps attempts for at least the retry window (CtiServer), so
    // that attempt is older than it (e.g. a node down longer than the window): the delivery is over, not starting again.
    const first = attempt === 1 ? now : ((await this.#o.store.firstAttemptAt(accountId, event.eventId, stream.kind)) ?? -Infinity);
    const failed = !ok && now - first >= this.#schedule.retryForMs;
    const outcome: AttemptOutcome = ok ? 'delivered' : failed ? 'failed' : 'retrying';
    const fields = { accountId, resId: stream.resId, target: stream.kind, eventId: event.eventId, attempt, status: result.status, error: result.error, outcome };
    if (!ok) this.#o.log.warn(fields, 'webhook attempt failed');
    const done = ok || failed;
    const finished = done && stream.resId !== undefined && event.name === 'on_released';
    await this.#o.store.recordAttempt(
      { account_id: accountId, event_id: event.eventId, target: stream.kind, attempt, status: result.status, latency_ms: result.latencyMs, error: result.error, outcome, created_at: now },
      done
        ? { delivered_event_id: event.eventId, pending_attempts: 0, next_attempt_at: 0 }
        : { delivered_event_id: state.delivered_event_id, pending_attempts: attempt, next_attempt_at: now + retryDelayMs(this.#schedule, attempt) },
      stream.resId ? { resId: stream.resId, done: finished } : undefined,
    );
    if (finished) this.#calls.delete(stream.resId!);
    this.emit('attempt', outcome);
  }

  #sleep(key: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = this.#o.clock.setTimer(Math.min(ms, 2 ** 31 - 1), done);
      function done() {
        timer.cancel();
        resolve();
      }
      // A wake during a backoff does not cut it short (the receiver asked for time), except stop.
      this.#loops.set(key, () => {
        if (this.#stopped) done();
      });
    });
  }
}
