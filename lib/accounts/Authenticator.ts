import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import type { Account, AccountDirectory } from './Account.js';

/** Longest API key looked up; longer presented keys are refused without touching the store. */
export const MAX_API_KEY_CHARS = 256;

export type AuthOutcome =
  | { readonly kind: 'accepted'; readonly account: Account }
  /** Malformed, unknown or revoked key, or a disabled account: the caller is not told which. */
  | { readonly kind: 'refused' }
  /** Too many failed attempts from this source; nothing was checked. */
  | { readonly kind: 'throttled'; readonly retryAfterMs: number };

export interface AuthenticatorOptions {
  /** Failed attempts one source address may make per window before it is throttled. */
  readonly maxFailedAttempts: number;
  readonly failedAttemptsWindowSeconds: number;
}

/**
 * Checks presented API keys against the account directory, throttling
 * brute force per source address (OWASP authentication cheat sheet: limit
 * failed attempts). Every attempt takes a point before the key is checked,
 * and a successful one gives it back, so parallel guesses cannot slip past
 * the limit while the slow hash runs. A throttled source is refused even with
 * a valid key until its window ends.
 */
export class Authenticator {
  readonly #failures: RateLimiterMemory;

  constructor(
    private readonly directory: AccountDirectory,
    options: AuthenticatorOptions,
  ) {
    this.#failures = new RateLimiterMemory({
      keyPrefix: 'auth-failures',
      points: options.maxFailedAttempts,
      duration: options.failedAttemptsWindowSeconds,
    });
  }

  /**
   * @param presentedKey the key as the client sent it (any string).
   * @param source the client's address (`socket.remoteAddress`).
   * Rejects only when the store is unreachable.
   */
  async authenticate(presentedKey: string, source: string): Promise<AuthOutcome> {
    try {
      await this.#failures.consume(source);
    } catch (err) {
      if (err instanceof RateLimiterRes) return { kind: 'throttled', retryAfterMs: Math.max(1, err.msBeforeNext) };
      throw err;
    }
    const account = presentedKey.length <= MAX_API_KEY_CHARS ? await this.directory.authenticate(presentedKey) : null;
    if (!account) return { kind: 'refused' };
    await this.#failures.reward(source, 1);
    return { kind: 'accepted', account };
  }
}
