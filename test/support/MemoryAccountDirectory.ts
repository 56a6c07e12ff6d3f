/**
 * An in-memory AccountDirectory for unit tests of the service layer (which
 * reads accounts, never keys). End-to-end tests use the real AccountStore
 * (test/support/startTestServer.ts).
 */
import type { Account, AccountDirectory, AccountLimits } from '../../lib/accounts/Account.js';

export const NO_LIMITS: AccountLimits = { maxLiveResources: null, constructsPerSecond: null, gateways: null, callerIds: null };

export class MemoryAccountDirectory implements AccountDirectory {
  readonly #accounts = new Map<string, Account>();

  add(accountId: string, limits: Partial<AccountLimits> = {}): Account {
    const account: Account = { accountId, name: accountId, enabled: true, limits: { ...NO_LIMITS, ...limits } };
    this.#accounts.set(accountId, account);
    return account;
  }

  /** No keys here: every key is refused. */
  authenticate(): Promise<Account | null> {
    return Promise.resolve(null);
  }

  signingKey(): Promise<null> {
    return Promise.resolve(null);
  }

  get(accountId: string): Promise<Account | null> {
    return Promise.resolve(this.#accounts.get(accountId) ?? null);
  }
}
