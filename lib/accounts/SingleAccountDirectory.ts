import type { Account, AccountDirectory } from './Account.js';

/** The one account of `auth.mode: "none"`: every connection belongs to it, with no per-account limits. */
export const DEFAULT_ACCOUNT: Account = {
  accountId: 'default',
  name: 'default (authentication off)',
  enabled: true,
  limits: { maxLiveResources: null, constructsPerSecond: null, gateways: null, callerIds: null },
};

/**
 * The directory of `auth.mode: "none"`: any presented key is the default
 * account. Only allowed on a loopback listen address (loadConfig refuses others).
 */
export class SingleAccountDirectory implements AccountDirectory {
  authenticate(): Promise<Account> {
    return Promise.resolve(DEFAULT_ACCOUNT);
  }

  /** No keys here: with authentication off, HTTP requests need no signature. */
  signingKey(): Promise<null> {
    return Promise.resolve(null);
  }

  get(accountId: string): Promise<Account | null> {
    return Promise.resolve(accountId === DEFAULT_ACCOUNT.accountId ? DEFAULT_ACCOUNT : null);
  }
}
