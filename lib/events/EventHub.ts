import { nanoid } from 'nanoid';
import type { ResourceClass } from '../api/generated/types.js';
import { ServiceError } from '../errors/ServiceError.js';
import type { LoggedEvent } from './EventLog.js';
import type { EventSink } from './EventSink.js';

/** Every given field must match; an empty filter matches every event. */
export interface SubscriptionFilter {
  readonly resourceClass?: ResourceClass;
  readonly event?: LoggedEvent['name'];
  readonly resId?: string;
}

/** Reads committed events back (the EventLog): oldest first, at most `limit`. */
export type ReplaySource = (accountId: string, afterEventId: number, limit: number) => Promise<readonly LoggedEvent[]>;

export interface EventHubOptions {
  /** Subscriptions one sink may hold; one more is refused (capacity_exceeded). */
  readonly maxPerSink: number;
  readonly replay: ReplaySource;
  /** Live events one sink may have waiting while its replay runs; more and the sink is closed. */
  readonly maxCatchUpEvents?: number;
}

/** A subscription that started from an event id: what its replay already delivered. */
interface Replayed {
  readonly filter: SubscriptionFilter;
  /** Events up to this id matching `filter` came from the replay. */
  through: number;
}

interface CatchUp {
  readonly waiting: LoggedEvent[];
}

const REPLAY_PAGE = 500;

/**
 * Routes committed events to sinks of the event's account only: always to
 * the resource's owner, and to every other sink of that account with a
 * matching subscription — each sink at most once per event. An owner that
 * went away simply misses its live events; it can replay them (issue 9).
 *
 * A subscription with `fromEventId` first replays the account's stored
 * events after that id that match it, then continues live: live events that
 * arrive meanwhile wait (bounded) and follow the replay, so the sink sees
 * the replayed and live events in event_id order with no gap; an event the
 * replay delivered is not delivered live again.
 */
export class EventHub {
  readonly #sinks = new Map<string, EventSink>();
  readonly #subscriptions = new Map<string, Map<string, SubscriptionFilter>>();
  readonly #replayed = new Map<string, Replayed[]>();
  readonly #catchingUp = new Map<string, CatchUp>();
  readonly #maxPerSink: number;
  readonly #replay: ReplaySource;
  readonly #maxCatchUp: number;

  constructor(options: EventHubOptions) {
    this.#maxPerSink = options.maxPerSink;
    this.#replay = options.replay;
    this.#maxCatchUp = options.maxCatchUpEvents ?? 10_000;
  }

  addSink(sink: EventSink): void {
    this.#sinks.set(sink.id, sink);
  }

  removeSink(sinkId: string): void {
    this.#sinks.delete(sinkId);
    this.#subscriptions.delete(sinkId);
    this.#replayed.delete(sinkId);
    this.#catchingUp.delete(sinkId);
  }

  /**
   * Adds a subscription; with `fromEventId` (≥ 0) its replay starts right
   * after the caller's reply is sent.
   * @throws ServiceError capacity_exceeded when the sink already holds `maxPerSink` subscriptions;
   *   invalid_state when a replay of this sink is still running.
   */
  subscribe(sinkId: string, filter: SubscriptionFilter, fromEventId?: number): string {
    const mine = this.#subscriptions.get(sinkId) ?? new Map<string, SubscriptionFilter>();
    if (mine.size >= this.#maxPerSink) {
      const limit = `${this.#maxPerSink} subscriptions per connection (limits.maxSubscriptionsPerConnection)`;
      throw new ServiceError('capacity_exceeded', `this connection already holds ${limit}`, { limit });
    }
    const sink = this.#sinks.get(sinkId);
    if (fromEventId !== undefined && (!sink || sink.accountId === null)) {
      throw new ServiceError('unauthorized', 'replay needs an authenticated connection');
    }
    if (fromEventId !== undefined && this.#catchingUp.has(sinkId)) {
      throw new ServiceError('invalid_state', 'this connection is still replaying events of an earlier sys.subscribe');
    }
    const id = nanoid(12);
    mine.set(id, filter);
    this.#subscriptions.set(sinkId, mine);
    if (fromEventId !== undefined && sink) {
      // Registered now, so every event committed from here on waits for the replay instead of overtaking it.
      const catchUp: CatchUp = { waiting: [] };
      this.#catchingUp.set(sinkId, catchUp);
      setImmediate(() => void this.#catchUp(sink, catchUp, filter, fromEventId));
    }
    return id;
  }

  unsubscribe(sinkId: string, subscriptionId: string): boolean {
    return this.#subscriptions.get(sinkId)?.delete(subscriptionId) ?? false;
  }

  publish(event: LoggedEvent): void {
    for (const sink of this.#sinks.values()) {
      if (sink.accountId !== event.accountId) continue;
      const catchUp = this.#catchingUp.get(sink.id);
      if (catchUp) {
        catchUp.waiting.push(event);
        if (catchUp.waiting.length > this.#maxCatchUp) this.#abandon(sink, `more than ${this.#maxCatchUp} live events waited for a replay`);
        continue;
      }
      this.#deliverLive(sink, event);
    }
  }

  #deliverLive(sink: EventSink, event: LoggedEvent): void {
    if (this.#alreadyReplayed(sink.id, event)) return;
    if (sink.id === event.ownerId || this.#wants(sink.id, event)) sink.deliver(event.method, event.params);
  }

  async #catchUp(sink: EventSink, catchUp: CatchUp, filter: SubscriptionFilter, fromEventId: number): Promise<void> {
    const replayed: Replayed = { filter, through: fromEventId };
    try {
      for (;;) {
        const page = await this.#replay(sink.accountId!, replayed.through, REPLAY_PAGE);
        if (this.#catchingUp.get(sink.id) !== catchUp) return; // the sink went away meanwhile
        for (const event of page) if (matches(filter, event)) sink.deliver(event.method, event.params);
        if (page.length) replayed.through = page[page.length - 1]!.eventId;
        if (page.length < REPLAY_PAGE) break;
      }
    } catch {
      this.#abandon(sink, 'the event log could not be read');
      return;
    }
    const list = this.#replayed.get(sink.id) ?? [];
    list.push(replayed);
    this.#replayed.set(sink.id, list);
    this.#catchingUp.delete(sink.id);
    for (const event of catchUp.waiting) this.#deliverLive(sink, event);
  }

  /** An event a replay of this sink delivered (a commit seen by the replay query before it was published). */
  #alreadyReplayed(sinkId: string, event: LoggedEvent): boolean {
    return this.#replayed.get(sinkId)?.some((r) => event.eventId <= r.through && matches(r.filter, event)) ?? false;
  }

  #abandon(sink: EventSink, reason: string): void {
    this.#catchingUp.delete(sink.id);
    sink.abandon(reason);
  }

  #wants(sinkId: string, event: LoggedEvent): boolean {
    const filters = this.#subscriptions.get(sinkId);
    if (!filters) return false;
    for (const f of filters.values()) if (matches(f, event)) return true;
    return false;
  }
}

function matches(f: SubscriptionFilter, event: LoggedEvent): boolean {
  return (
    (f.resourceClass === undefined || f.resourceClass === event.resourceClass) &&
    (f.event === undefined || f.event === event.name) &&
    (f.resId === undefined || f.resId === event.resId)
  );
}
