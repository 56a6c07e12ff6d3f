import { createHash } from 'node:crypto';

/**
 * Recent authenticate() answers, keyed by a SHA-256 of the presented key (the
 * key itself is never kept), so a reconnect storm costs one scrypt per key
 * instead of one per connection. Concurrent lookups of one key share the
 * pending answer. Entries live `ttlMs` (the bound on how late a revocation or
 * a disabled account takes effect on another node); at most `maxEntries`,
 * oldest dropped first. Failures of the lookup are not kept.
 */
export class AuthCache<T> {
  readonly #entries = new Map<string, { expiresAt: number; value: Promise<T> }>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries: number,
    private readonly now: () => number,
  ) {}

  /** The cached answer for `presented`, or the one `lookup` gives (then kept). */
  get(presented: string, lookup: () => Promise<T>): Promise<T> {
    const id = createHash('sha256').update(presented).digest('base64url');
    const now = this.now();
    const hit = this.#entries.get(id);
    if (hit && hit.expiresAt > now) return hit.value;
    this.#entries.delete(id);
    this.#evict(now);
    const value = lookup();
    const entry = { expiresAt: now + this.ttlMs, value };
    this.#entries.set(id, entry);
    value.catch(() => {
      if (this.#entries.get(id) === entry) this.#entries.delete(id);
    });
    return value;
  }

  /** Forgets everything (after a local revocation, disable or limits change). */
  clear(): void {
    this.#entries.clear();
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Entries are in insertion order, which is expiry order: drop expired ones, then the oldest over the bound. */
  #evict(now: number): void {
    for (const [id, entry] of this.#entries) {
      if (entry.expiresAt > now && this.#entries.size < this.maxEntries) break;
      this.#entries.delete(id);
    }
  }
}
