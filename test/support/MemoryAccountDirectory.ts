/**
 * An in-memory AccountDirectory for unit tests of the service layer only
 * (no hashing, no persistence). End-to-end tests use the real AccountStore.
 */
import { randomBytes } from 'node:crypto';
import type { Account, AccountDirectory, AccountLimits } from '../../lib/accounts/Account.js';

export const NO_LIMITS: AccountLimits = { maxLiveResources: null, constructsPerSecond: null, gateways: null, callerIds: null };

export class MemoryAccountDirectory implements AccountDirectory {
  readonly #accounts = new Map<string, Account>();
  readonly #keys = new Map<string, string>();

  add(accountId: string, limits: Partial<AccountLimits> = {}): Account {
    const account: Account = { accountId, name: accountId, enabled: true, limits: { ...NO_LIMITS, ...limits } };
    this.#accounts.set(accountId, account);
    return account;
  }

  createKey(accountId: string): string {
    const key = `cti_${accountId}.${randomBytes(16).toString('base64url')}`;
    this.#keys.set(key, accountId);
    return key;
  }

  revokeKey(key: string): void {
    this.#keys.delete(key);
  }

  setEnabled(accountId: string, enabled: boolean): void {
    const account = this.#accounts.get(accountId);
    if (account) this.#accounts.set(accountId, { ...account, enabled });
  }

  setLimits(accountId: string, limits: Partial<AccountLimits>): void {
    const account = this.#accounts.get(accountId);
    if (account) this.#accounts.set(accountId, { ...account, limits: { ...account.limits, ...limits } });
  }

  authenticate(presentedKey: string): Promise<Account | null> {
    const account = this.#accounts.get(this.#keys.get(presentedKey) ?? '');
    return Promise.resolve(account?.enabled ? account : null);
  }

  get(accountId: string): Promise<Account | null> {
    return Promise.resolve(this.#accounts.get(accountId) ?? null);
  }
}
