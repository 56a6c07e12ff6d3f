import { RateLimiterMemory } from 'rate-limiter-flexible';
import type { Account, AccountDirectory } from './Account.js';

/** Longest API key looked up; longer presented keys are refused without touching the store. */
export const MAX_API_KEY_CHARS = 256;
/** Key checks one source address may have waiting at once; more are throttled without waiting. */
const MAX_QUEUED_PER_SOURCE = 256;

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

interface SourceQueue {
  tail: Promise<unknown>;
  pending: number;
}

/**
 * Checks presented API keys against the account directory, throttling
 * brute force per source address (OWASP authentication cheat sheet: limit
 * failed attempts). The checks of one source run one at a time, so each
 * failure is counted before that source's next key is looked at: parallel
 * guesses cannot slip past the limit while the slow hash runs, and a client
 * opening many connections at once with a valid key is never throttled by
 * its own burst. A throttled source is refused even with a valid key until
 * its window ends.
 */
export class Authenticator {
  readonly #failures: RateLimiterMemory;
  readonly #maxFailures: number;
  /** Sources with checks in flight; an entry goes when its last check ends. */
  readonly #queues = new Map<string, SourceQueue>();

  constructor(
    private readonly directory: AccountDirectory,
    options: AuthenticatorOptions,
  ) {
    this.#maxFailures = options.maxFailedAttempts;
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
  authenticate(presentedKey: string, source: string): Promise<AuthOutcome> {
    return this.check(source, () => (presentedKey.length <= MAX_API_KEY_CHARS ? this.directory.authenticate(presentedKey) : Promise.resolve(null)));
  }

  /**
   * Any credential check under the same throttle (signed HTTP requests):
   * `lookup` resolves the account the credential proves, or null (a failure).
   */
  check(source: string, lookup: () => Promise<Account | null>): Promise<AuthOutcome> {
    const queue = this.#queues.get(source) ?? { tail: Promise.resolve(), pending: 0 };
    if (queue.pending >= MAX_QUEUED_PER_SOURCE) return Promise.resolve({ kind: 'throttled', retryAfterMs: 1000 });
    queue.pending++;
    this.#queues.set(source, queue);
    const check = queue.tail.then(() => this.#check(lookup, source));
    queue.tail = check.catch(() => undefined);
    return check.finally(() => {
      if (--queue.pending === 0) this.#queues.delete(source);
    });
  }

  async #check(lookup: () => Promise<Account | null>, source: string): Promise<AuthOutcome> {
    const failures = await this.#failures.get(source);
    if (failures && failures.consumedPoints >= this.#maxFailures) {
      return { kind: 'throttled', retryAfterMs: Math.max(1, failures.msBeforeNext) };
    }
    const account = await lookup();
    if (account) return { kind: 'accepted', account };
    await this.#failures.penalty(source, 1);
    return { kind: 'refused' };
  }
}
