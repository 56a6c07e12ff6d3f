import type { Clock } from '../../util/Clock.js';
import type { Logger } from '../../util/logger.js';
import { TypedEventEmitter } from '../../util/TypedEmitter.js';
import type { EventLog, LoggedEvent } from '../EventLog.js';
import type { WebhookStore } from './WebhookStore.js';
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
 * Delivers every committed event of each account with an event_url, from
 * the durable log, one at a time per account in event_id order (so in order
 * per resource too). The cursor and the retry state live in the store: a
 * restart resumes where delivery stopped, waiting out a pending backoff. A
 * 2xx ends an event; other answers and errors retry per {@link RetrySchedule};
 * once `retryForMs` has passed the event is marked failed and the next one
 * goes. Head-of-line: a failing receiver holds back its later events, which
 * is what keeps the order.
 */
export class WebhookDispatcher extends TypedEventEmitter<WebhookDispatcherEvents> {
  readonly #o: WebhookDispatcherOptions;
  readonly #schedule: RetrySchedule;
  readonly #maxConcurrent: number;
  /** Accounts whose loop runs → wake the loop early. */
  readonly #loops = new Map<string, () => void>();
  readonly #waitingForSlot: Array<() => void> = [];
  /** Accounts found without an event_url → when (clock ms): saves a store query per committed event. */
  readonly #withoutTarget = new Map<string, number>();
  /** Per account with a running loop: [last committed event id seen, delivery cursor]. */
  readonly #backlog = new Map<string, [number, number]>();
  #inFlight = 0;
  #stopped = false;
  readonly #onCommitted = (event: LoggedEvent) => {
    const backlog = this.#backlog.get(event.accountId);
    if (backlog) backlog[0] = Math.max(backlog[0], event.eventId);
    this.wake(event.accountId);
  };

  constructor(options: WebhookDispatcherOptions) {
    super();
    this.#o = options;
    this.#schedule = options.schedule ?? DEFAULT_RETRY_SCHEDULE;
    this.#maxConcurrent = options.maxConcurrent ?? 16;
  }

  /** Starts a loop for every account with an event_url and follows new events. */
  async start(): Promise<void> {
    this.#o.eventLog.on('committed', this.#onCommitted);
    for (const accountId of await this.#o.store.activeAccounts()) this.wake(accountId);
  }

  /** Events committed but not yet delivered or failed, over the accounts being delivered to (the queue depth metric). */
  get queueDepth(): number {
    let depth = 0;
    for (const [last, cursor] of this.#backlog.values()) depth += Math.max(0, last - cursor);
    return depth;
  }

  /** Makes the account's loop look for work now (new event, URL set). */
  wake(accountId: string): void {
    if (this.#stopped) return;
    const wake = this.#loops.get(accountId);
    if (wake) return wake();
    const checked = this.#withoutTarget.get(accountId);
    if (checked !== undefined && this.#o.clock.now() - checked < NO_TARGET_RECHECK_MS) return;
    this.#withoutTarget.delete(accountId);
    this.#loops.set(accountId, () => undefined);
    void this.#run(accountId).catch((err: unknown) => {
      this.#loops.delete(accountId);
      this.#backlog.delete(accountId);
      this.#o.log.error({ err, accountId }, 'webhook loop failed');
    });
  }

  /** Stops taking work; POSTs in flight finish (bounded by the request timeout). */
  stop(): void {
    this.#stopped = true;
    this.#o.eventLog.off('committed', this.#onCommitted);
    for (const wake of this.#loops.values()) wake();
  }

  async #run(accountId: string): Promise<void> {
    let woken = false;
    while (!this.#stopped) {
      woken = false;
      this.#loops.set(accountId, () => void (woken = true));
      const target = await this.#o.store.target(accountId);
      if (!target?.url) {
        this.#withoutTarget.set(accountId, this.#o.clock.now());
        break;
      }
      const backlog = this.#backlog.get(accountId) ?? [target.delivered_event_id, 0];
      backlog[1] = target.delivered_event_id;
      this.#backlog.set(accountId, backlog);
      const wait = target.next_attempt_at - this.#o.clock.now();
      if (wait > 0) {
        await this.#sleep(accountId, wait);
        continue;
      }
      const [event] = await this.#o.eventLog.replay(accountId, target.delivered_event_id, 1);
      if (event) backlog[0] = Math.max(backlog[0], event.eventId);
      if (!event) {
        if (woken) continue;
        break; // idle: the next committed event starts a new loop
      }
      const result = await this.#deliver(new URL(target.url), target.secret, event);
      if (this.#stopped && result.status === null) break; // cut short by stop: retried after restart
      await this.#record(target.delivered_event_id, event, target.pending_attempts + 1, result);
    }
    this.#loops.delete(accountId);
    this.#backlog.delete(accountId);
  }

  async #deliver(url: URL, secret: string, event: LoggedEvent): Promise<DeliveryResult> {
    while (this.#inFlight >= this.#maxConcurrent) await new Promise<void>((resolve) => this.#waitingForSlot.push(resolve));
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

  /** Stores the attempt; moves the cursor past the event (delivered or failed) or schedules the retry. */
  async #record(deliveredEventId: number, event: LoggedEvent, attempt: number, result: DeliveryResult): Promise<void> {
    const accountId = event.accountId;
    const now = this.#o.clock.now();
    const ok = result.error === null;
    const first = attempt === 1 ? now : ((await this.#o.store.firstAttemptAt(accountId, event.eventId)) ?? now);
    const failed = !ok && now - first >= this.#schedule.retryForMs;
    const outcome: AttemptOutcome = ok ? 'delivered' : failed ? 'failed' : 'retrying';
    if (!ok) this.#o.log.warn({ accountId, eventId: event.eventId, attempt, status: result.status, error: result.error, outcome }, 'webhook attempt failed');
    await this.#o.store.recordAttempt(
      { account_id: accountId, event_id: event.eventId, attempt, status: result.status, latency_ms: result.latencyMs, error: result.error, outcome, created_at: now },
      ok || failed
        ? { delivered_event_id: event.eventId, pending_attempts: 0, next_attempt_at: 0 }
        : { delivered_event_id: deliveredEventId, pending_attempts: attempt, next_attempt_at: now + retryDelayMs(this.#schedule, attempt) },
    );
    this.emit('attempt', outcome);
  }

  #sleep(accountId: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = this.#o.clock.setTimer(Math.min(ms, 2 ** 31 - 1), done);
      function done() {
        timer.cancel();
        resolve();
      }
      // A wake during a backoff does not cut it short (the receiver asked for time), except stop.
      this.#loops.set(accountId, () => {
        if (this.#stopped) done();
      });
    });
  }
}
