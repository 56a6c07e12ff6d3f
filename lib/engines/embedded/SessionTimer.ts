/**
 * The session timer of one confirmed dialog (RFC 4028), a two-state timer
 * (the headers' grammar: ../sessionExpires.ts). When we are the
 * refresher, `refresh` fires at half the interval (§10); when the far end is,
 * `expired` fires when the interval ends less the RFC's slack, min(32 s,
 * interval/3) (§10), and the leg sends BYE. Each 2xx to a refresh (either
 * way) arms it again. A refresh of ours that met glare (491) is fired again
 * later ({@link SessionTimer.retryAfterGlare}).
 */
import { systemClock, type Clock, type Timer } from '../../util/Clock.js';
import { MAX_SESSION_EXPIRES_SECONDS, MIN_SE_SECONDS } from '../sessionExpires.js';

/** RFC 4028 §10: the far end's refresh must arrive before the interval ends less min(32 s, interval/3). */
export function expiryMs(seconds: number): number {
  return (seconds - Math.min(32, seconds / 3)) * 1000;
}

/** 491s to one refresh that are retried (RFC 3261 §14.1 sets no number); after that it counts as refused. */
export const MAX_GLARE_RETRIES = 2;

/**
 * RFC 3261 §14.1: after a 491 the owner of the Call-ID (we place every call)
 * waits a random 2.1 to 4 s, in units of 10 ms, before trying again.
 */
export function glareWaitMs(random: () => number = Math.random): number {
  return 2100 + 10 * Math.floor(random() * 191);
}

export type SessionTimerState =
  | { readonly kind: 'off' }
  | { readonly kind: 'we_refresh'; readonly seconds: number }
  | { readonly kind: 'they_refresh'; readonly seconds: number };

export class SessionTimer {
  readonly #onRefresh: () => void;
  readonly #onExpired: () => void;
  readonly #clock: Clock;
  #state: SessionTimerState = { kind: 'off' };
  #refreshTimer: Timer | undefined;
  /** 491s retried since the interval was last armed. */
  #glareRetries = 0;
  #expiryTimer: Timer | undefined;

  /**
   * `onRefresh`: we are the refresher and half the interval passed (send a
   * refresh). `onExpired`: no refresh succeeded in time (send BYE). Neither
   * fires after stop(). `clock` times both (tests drive it by hand).
   */
  constructor(onRefresh: () => void, onExpired: () => void, clock: Clock = systemClock) {
    this.#onRefresh = onRefresh;
    this.#onExpired = onExpired;
    this.#clock = clock;
  }

  get state(): SessionTimerState {
    return this.#state;
  }

  /**
   * Starts the interval again: `seconds` long (bounded to
   * MIN_SE_SECONDS..MAX_SESSION_EXPIRES_SECONDS), refreshed by `we` or
   * `they`. When we refresh, the session still expires if no refresh of
   * ours gets a 2xx before the end of the interval (less the slack).
   */
  arm(seconds: number, refresher: 'we' | 'they'): void {
    this.stop();
    const bounded = Math.min(Math.max(seconds, MIN_SE_SECONDS), MAX_SESSION_EXPIRES_SECONDS);
    this.#state = { kind: refresher === 'we' ? 'we_refresh' : 'they_refresh', seconds: bounded };
    if (refresher === 'we') this.#refreshTimer = this.#clock.setTimer((bounded * 1000) / 2, this.#fireRefresh);
    this.#expiryTimer = this.#clock.setTimer(expiryMs(bounded), this.#fireExpired);
  }

  /**
   * Our refresh got 491 (glare, RFC 3261 §14.1): `onRefresh` fires again
   * after {@link glareWaitMs}, at most {@link MAX_GLARE_RETRIES} times per
   * armed interval. Returns false (nothing scheduled) when no retry is left
   * or we are not the refresher. arm() and stop() cancel a pending retry:
   * a far end's own refresh in the meantime makes it moot.
   */
  retryAfterGlare(): boolean {
    if (this.#state.kind !== 'we_refresh' || this.#glareRetries >= MAX_GLARE_RETRIES) return false;
    this.#glareRetries++;
    this.#refreshTimer?.cancel();
    this.#refreshTimer = this.#clock.setTimer(glareWaitMs(), this.#fireRefresh);
    return true;
  }

  stop(): void {
    this.#refreshTimer?.cancel();
    this.#expiryTimer?.cancel();
    this.#refreshTimer = undefined;
    this.#expiryTimer = undefined;
    this.#state = { kind: 'off' };
    this.#glareRetries = 0;
  }

  readonly #fireRefresh = (): void => {
    this.#refreshTimer = undefined;
    this.#onRefresh();
  };

  readonly #fireExpired = (): void => {
    this.stop();
    this.#onExpired();
  };
}
