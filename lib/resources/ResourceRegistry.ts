import { TypedEventEmitter } from '../util/TypedEmitter.js';
import type { ResourceClass, ResourceContext } from '../api/generated/types.js';
import { ServiceError } from '../errors/ServiceError.js';
import type { Clock } from '../util/Clock.js';
import type { Resource } from './Resource.js';

/** A resource event on its way to connections: the JSON-RPC method is `${resourceClass}.${name}`. */
export interface ResourceEvent {
  readonly resId: string;
  readonly resourceClass: ResourceClass;
  readonly name: 'on_progress' | 'on_released';
  /** Only connections of this account may receive the event. */
  readonly accountId: string;
  readonly ownerId: string;
  readonly params: object;
  /**
   * The resource's context when the event was made: with on_released the
   * final one (the CDR's parties and times); with on_progress the state so
   * far, kept in the resource's row so that a restart after a crash can
   * write a CDR with the party detail known until then (issue 9).
   */
  readonly context?: ResourceContext;
}

export type ResourceRegistryEvents = {
  event: (event: ResourceEvent) => void;
  /** A resource was accepted (before it dials): counted by the metrics. */
  added: (resource: Resource) => void;
};

/**
 * The live resources of this node: hands out ids, enforces the resource
 * limit, forwards each resource's events, and forgets a resource once it has
 * sent on_released.
 */
export class ResourceRegistry extends TypedEventEmitter<ResourceRegistryEvents> {
  readonly #live = new Map<string, Resource>();
  #lastProcessId = 0;

  constructor(
    readonly nodeId: string,
    private readonly maxResources: number,
    private readonly clock: Clock,
  ) {
    super();
  }

  get size(): number {
    return this.#live.size;
  }

  /** Throws capacity_exceeded when one more resource would pass the limit. */
  assertRoom(): void {
    if (this.#live.size >= this.maxResources) {
      throw new ServiceError('capacity_exceeded', `this server already runs ${this.maxResources} resources`, {
        limit: `${this.maxResources} live resources`,
      });
    }
  }

  /**
   * Ids unique across restarts too: process ids grow with the clock
   * (microsecond-like resolution), staying far below 2^53, and never go
   * below the last one stored ({@link resumeAfter}), so a clock set back
   * between two runs cannot repeat one.
   */
  nextIdentity(resourceClass: ResourceClass): { resId: string; processId: number } {
    this.#lastProcessId = Math.max(this.#lastProcessId + 1, this.clock.now() * 1000);
    return { resId: `${this.nodeId}-${resourceClass}-${this.#lastProcessId}`, processId: this.#lastProcessId };
  }

  /** Continues after the highest process id a previous run stored (issue 9). */
  resumeAfter(processId: number): void {
    this.#lastProcessId = Math.max(this.#lastProcessId, processId);
  }

  /** Live resources per class and state (`${class} ${state}` → count), for the metrics. */
  liveCounts(): Map<string, { resourceClass: ResourceClass; state: string; count: number }> {
    const counts = new Map<string, { resourceClass: ResourceClass; state: string; count: number }>();
    for (const r of this.#live.values()) {
      const key = `${r.resourceClass} ${r.state}`;
      const entry = counts.get(key) ?? { resourceClass: r.resourceClass, state: r.state, count: 0 };
      entry.count++;
      counts.set(key, entry);
    }
    return counts;
  }

  add(resource: Resource): void {
    this.#live.set(resource.resId, resource);
    this.emit('added', resource);
    const forward = (name: ResourceEvent['name'], params: object): void => {
      this.emit('event', {
        resId: resource.resId,
        resourceClass: resource.resourceClass,
        name,
        accountId: resource.identity.accountId,
        ownerId: resource.identity.ownerId,
        params,
        context: resource.context(),
      });
    };
    resource.on('progress', (params) => forward('on_progress', params));
    resource.once('released', (params) => {
      this.#live.delete(resource.resId);
      forward('on_released', params);
    });
  }

  /**
   * A live resource of the account; one that is releasing, or that belongs to
   * another account, counts as gone (ids leak nothing across accounts).
   */
  get(resId: string, accountId: string): Resource | undefined {
    const resource = this.#live.get(resId);
    return resource && !resource.released && resource.identity.accountId === accountId ? resource : undefined;
  }

  /** Throws capacity_exceeded when one more resource of the account would pass its own limit. */
  assertAccountRoom(accountId: string, maxLiveResources: number | null): void {
    if (maxLiveResources === null) return;
    let live = 0;
    for (const r of this.#live.values()) if (r.identity.accountId === accountId) live++;
    if (live >= maxLiveResources) {
      throw new ServiceError('capacity_exceeded', `account ${accountId} already runs ${maxLiveResources} resources (its limit)`, {
        limit: `account ${accountId}: ${maxLiveResources} live resources`,
      });
    }
  }

  /** Releases every live resource and resolves once each has sent on_released. */
  releaseAll(message: string): Promise<void> {
    const pending = [...this.#live.values()].map(
      (r) => new Promise<void>((resolve) => {
        r.once('released', () => resolve());
        r.abort(message);
      }),
    );
    return Promise.all(pending).then(() => undefined);
  }
}
