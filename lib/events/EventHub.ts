import { nanoid } from 'nanoid';
import type { ResourceClass } from '../api/generated/types.js';
import { ServiceError } from '../errors/ServiceError.js';
import type { ResourceEvent } from '../resources/ResourceRegistry.js';
import type { EventSink } from './EventSink.js';

/** Every given field must match; an empty filter matches every event. */
export interface SubscriptionFilter {
  readonly resourceClass?: ResourceClass;
  readonly event?: ResourceEvent['name'];
  readonly resId?: string;
}

/**
 * Routes resource events to sinks of the resource's account only: always to
 * the resource's owner, and to every other sink of that account with a
 * matching subscription — each sink at most once per event. An owner that
 * went away simply misses its events; subscribers still get them.
 */
export class EventHub {
  readonly #sinks = new Map<string, EventSink>();
  readonly #subscriptions = new Map<string, Map<string, SubscriptionFilter>>();

  /** `maxPerSink`: subscriptions one sink may hold; one more is refused (capacity_exceeded). */
  constructor(private readonly maxPerSink: number) {}

  addSink(sink: EventSink): void {
    this.#sinks.set(sink.id, sink);
  }

  removeSink(sinkId: string): void {
    this.#sinks.delete(sinkId);
    this.#subscriptions.delete(sinkId);
  }

  /** @throws ServiceError capacity_exceeded when the sink already holds `maxPerSink` subscriptions. */
  subscribe(sinkId: string, filter: SubscriptionFilter): string {
    const mine = this.#subscriptions.get(sinkId) ?? new Map<string, SubscriptionFilter>();
    if (mine.size >= this.maxPerSink) {
      const limit = `${this.maxPerSink} subscriptions per connection (limits.maxSubscriptionsPerConnection)`;
      throw new ServiceError('capacity_exceeded', `this connection already holds ${limit}`, { limit });
    }
    const id = nanoid(12);
    mine.set(id, filter);
    this.#subscriptions.set(sinkId, mine);
    return id;
  }

  unsubscribe(sinkId: string, subscriptionId: string): boolean {
    return this.#subscriptions.get(sinkId)?.delete(subscriptionId) ?? false;
  }

  publish(event: ResourceEvent): void {
    const method = `${event.resourceClass}.${event.name}`;
    for (const sink of this.#sinks.values()) {
      if (sink.accountId !== event.accountId) continue;
      if (sink.id === event.ownerId || this.#wants(sink.id, event)) sink.deliver(method, event.params);
    }
  }

  #wants(sinkId: string, event: ResourceEvent): boolean {
    const filters = this.#subscriptions.get(sinkId);
    if (!filters) return false;
    for (const f of filters.values()) {
      if (
        (f.resourceClass === undefined || f.resourceClass === event.resourceClass) &&
        (f.event === undefined || f.event === event.name) &&
        (f.resId === undefined || f.resId === event.resId)
      ) {
        return true;
      }
    }
    return false;
  }
}
