import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';

/**
 * Per-account construct rate: at most `constructsPerSecond` constructs in
 * each one-second window, counted on this node. Accounts with the same rate
 * share one limiter (keyed by account id), so the number of limiters is
 * bounded by the number of distinct rates configured, not by traffic.
 */
export class ConstructRate {
  readonly #limiters = new Map<number, RateLimiterMemory>();

  /**
   * Takes one construct from the account's allowance.
   * @returns null when admitted, else milliseconds until the next window opens.
   */
  async take(accountId: string, constructsPerSecond: number | null): Promise<number | null> {
    if (constructsPerSecond === null) return null;
    let limiter = this.#limiters.get(constructsPerSecond);
    if (!limiter) {
      limiter = new RateLimiterMemory({ keyPrefix: `constructs-${constructsPerSecond}`, points: constructsPerSecond, duration: 1 });
      this.#limiters.set(constructsPerSecond, limiter);
    }
    try {
      await limiter.consume(accountId);
      return null;
    } catch (err) {
      if (err instanceof RateLimiterRes) return Math.max(1, err.msBeforeNext);
      throw err;
    }
  }
}
