import { TypedEventEmitter } from '../util/TypedEmitter.js';
import type {
  DroppedBy,
  Progress,
  ProgressEvent,
  Redirect,
  ReleaseError,
  ResourceClass,
  ResourceContext,
  ResourceState,
} from '../api/generated/types.js';
import { unixSeconds, type Clock } from '../util/Clock.js';
import type { Logger } from '../util/logger.js';
import type { Party } from './Party.js';

/** What every resource's `on_released` carries; subclasses add their own fields. */
export interface ReleaseBase {
  readonly res_id: string;
  readonly error: ReleaseError;
  readonly begin_time: number;
  readonly answer_time: number | null;
  readonly end_time: number;
  readonly dropped_by: DroppedBy;
  readonly user_data: string | null;
  /** Present when a party was redirected (3xx followed): each redirect, in order. */
  readonly redirects?: Redirect[];
}

/** An event's params as a resource makes them: the event log adds `event_id` when it commits them (issue 9). */
export type Unlogged<T extends { event_id: number }> = Omit<T, 'event_id'>;

export type ResourceEvents = {
  progress: (event: Unlogged<ProgressEvent>) => void;
  /** Emitted exactly once, after the resource's calls were told to end. */
  released: (event: ReleaseBase) => void;
};

export interface ResourceIdentity {
  readonly resId: string;
  readonly processId: number;
  /** The account it belongs to: only that account's connections see it, its events or its id (issue 8). */
  readonly accountId: string;
  /** Session id of the connection that constructed it (its events always go there). */
  readonly ownerId: string;
  readonly userData: string | null;
}

/** A teardown that hangs (a media server that never answers) must not hold back on_released. */
const TEARDOWN_LIMIT_MS = 5000;

/**
 * Base of every call resource: identity, state, times, and the guarantee that
 * `released` is emitted exactly once whatever happens.
 */
export abstract class Resource<Released extends ReleaseBase = ReleaseBase> extends TypedEventEmitter<ResourceEvents> {
  abstract readonly resourceClass: ResourceClass;
  readonly beginTime: number;
  protected answerTime: number | null = null;
  #state: ResourceState = 'Initiated';
  #releasing = false;
  readonly #redirects: Redirect[] = [];

  constructor(
    readonly identity: ResourceIdentity,
    protected readonly clock: Clock,
    protected readonly log: Logger,
  ) {
    super();
    this.beginTime = clock.now();
  }

  get resId(): string {
    return this.identity.resId;
  }

  get state(): ResourceState {
    return this.#state;
  }

  get released(): boolean {
    return this.#releasing;
  }

  /** Places the first call; called once, right after construction. */
  abstract start(): void;

  abstract context(): ResourceContext;

  /** Ends the resource from outside (server shutdown). */
  abort(message: string): void {
    this.release({ code: 'cancelled', message }, 'sys');
  }

  /** The application's `cancel`: released with `cancelled`, dropped by `sys`. Subclasses check their state first. */
  protected releaseCancelled(): void {
    this.abort('cancelled by the application');
  }

  protected setState(state: Exclude<ResourceState, 'Released'>): void {
    this.log.info({ from: this.#state, to: state }, 'state');
    this.#state = state;
  }

  /** `extra`: `dtmf` (the digits collected so far) with progress `dtmf`, `redirect` with `redirected`. */
  protected progress(
    progress: Progress,
    party: 1 | 2,
    sipStatus: number | null,
    extra: Pick<Unlogged<ProgressEvent>, 'dtmf' | 'redirect'> = {},
  ): void {
    this.emit('progress', {
      res_id: this.resId,
      state: this.#state,
      progress,
      party,
      sip_status: sipStatus,
      time: unixSeconds(this.clock.now()),
      user_data: this.identity.userData,
      ...extra,
    });
  }

  /** Reports each redirect `party` follows: a `redirected` progress event now, `redirects` in on_released. */
  protected reportRedirects(party: Party): void {
    party.on('redirected', (redirect) => {
      if (this.released) return;
      this.#redirects.push(redirect);
      this.log.info({ party: party.number, from: redirect.from_uri, to: redirect.to_uri, sip_status: redirect.sip_status }, 'redirected');
      this.progress('redirected', party.number, redirect.sip_status, { redirect });
    });
  }

  /**
   * Moves to Released at once (later events are ignored), ends the calls,
   * then emits `released`. Only the first call counts.
   */
  protected release(error: ReleaseError, droppedBy: DroppedBy): void {
    if (this.#releasing) return;
    this.#releasing = true;
    const endTime = this.clock.now();
    const from = this.#state;
    this.#state = 'Released';
    this.log.info({ from, error, dropped_by: droppedBy }, 'released');
    const base: ReleaseBase = {
      res_id: this.resId,
      error,
      begin_time: unixSeconds(this.beginTime),
      answer_time: this.answerTime === null ? null : unixSeconds(this.answerTime),
      end_time: unixSeconds(endTime),
      dropped_by: droppedBy,
      user_data: this.identity.userData,
      ...(this.#redirects.length > 0 ? { redirects: [...this.#redirects] } : {}),
    };
    let limit: NodeJS.Timeout | undefined;
    const timedOut = new Promise<void>((resolve) => {
      limit = setTimeout(() => {
        this.log.error('teardown did not finish in time; releasing anyway');
        resolve();
      }, TEARDOWN_LIMIT_MS);
    });
    Promise.race([Promise.resolve().then(() => this.teardown()), timedOut])
      .catch((err: unknown) => this.log.error({ err }, 'teardown failed'))
      .finally(() => {
        clearTimeout(limit);
        this.emit('released', this.releaseParams(base));
      });
  }

  /** Ends every call and media connection of the resource. */
  protected abstract teardown(): Promise<void>;

  protected abstract releaseParams(base: ReleaseBase): Released;

  protected baseContext(connectTime: number | null): Omit<ResourceContext, 'parties'> {
    const time = (ms: number | null): number | null => (ms === null ? null : unixSeconds(ms));
    return {
      res_id: this.resId,
      class: this.resourceClass,
      state: this.#state,
      user_data: this.identity.userData,
      begin_time: unixSeconds(this.beginTime),
      answer_time: time(this.answerTime),
      connect_time: time(connectTime),
    };
  }
}
