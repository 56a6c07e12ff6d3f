/**
 * How long a server takes to answer one kind of request, for admission
 * control: a running average of the requests completed (or failed: a
 * timeout is slowness too) and the age of the oldest one still in flight,
 * since a stalled server completes none to average. Memory: one entry per
 * request in flight.
 */
export class LatencyGauge {
  #averageMs: number;
  readonly #weight: number;
  /** Start (performance.now()) of each request in flight, oldest first (Map keeps insertion order). */
  readonly #inFlight = new Map<object, number>();

  /**
   * @param initialMs the average before the first request completes
   * @param weight of the newest request in the running average (0 < weight ≤ 1)
   */
  constructor(initialMs: number, weight = 0.2) {
    this.#averageMs = initialMs;
    this.#weight = weight;
  }

  /** Running average of the requests that ended, ms. */
  get averageMs(): number {
    return this.#averageMs;
  }

  /** Requests in flight. */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  /** Times `request` from now until it settles; resolves and rejects as it does. */
  async time<T>(request: Promise<T>): Promise<T> {
    const started = performance.now();
    const token = {};
    this.#inFlight.set(token, started);
    try {
      return await request;
    } finally {
      this.#inFlight.delete(token);
      this.#averageMs += this.#weight * (performance.now() - started - this.#averageMs);
    }
  }

  /**
   * What a request takes now, ms: the running average or the oldest request
   * still in flight, whichever is longer; 0 while nothing is in flight, so an
   * idle server is judged afresh rather than by what its last requests took.
   */
  busyMs(now: number): number {
    if (this.#inFlight.size === 0) return 0;
    const oldest = this.#inFlight.values().next().value ?? now;
    return Math.max(this.#averageMs, now - oldest);
  }
}
