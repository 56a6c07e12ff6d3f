/**
 * Counts events over the last `windowMs` (a sliding window of timestamps),
 * for rates such as "endpoints started in the last second". Memory is bounded
 * by the events of one window; callers refuse work long before that grows.
 */
export class EventWindow {
  readonly #windowMs: number;
  /** Timestamps (ms, monotonic), oldest first. */
  readonly #times: number[] = [];

  constructor(windowMs: number) {
    this.#windowMs = windowMs;
  }

  record(now: number, n = 1): void {
    for (let i = 0; i < n; i++) this.#times.push(now);
  }

  /** Events within the window ending at `now`. */
  count(now: number): number {
    this.#expire(now);
    return this.#times.length;
  }

  /** Ms until `n` more events fit under `limit` (0 when they fit now). */
  msUntilRoom(now: number, n: number, limit: number): number {
    this.#expire(now);
    const mustLeave = this.#times.length + n - limit;
    if (mustLeave <= 0) return 0;
    const oldest = this.#times[mustLeave - 1];
    return oldest === undefined ? this.#windowMs : Math.max(1, Math.ceil(oldest + this.#windowMs - now));
  }

  #expire(now: number): void {
    let drop = 0;
    while (drop < this.#times.length && this.#times[drop]! <= now - this.#windowMs) drop++;
    if (drop) this.#times.splice(0, drop);
  }
}
