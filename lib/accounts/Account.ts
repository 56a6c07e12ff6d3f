/**
 * Accounts as the layers above the store see them: who a caller is and what
 * it may do. Seeds 000 and 002 place every call under
 * `/account/{account_id}/…`; every resource, event and CDR belongs to one
 * account, and nothing of one account is visible to another.
 */

/** Per-account limits, enforced at construct (issue 8). */
export interface AccountLimits {
  /** Live resources of this account at once on this node; null: only the server-wide limit. */
  readonly maxLiveResources: number | null;
  /** Constructs per one-second window on this node (more → rate limited); null: unlimited. */
  readonly constructsPerSecond: number | null;
  /** Names of the configured gateways this account may dial; null: every gateway. */
  readonly gateways: readonly string[] | null;
  /**
   * Caller ids (the user part of `from*_uri`) this account may present; a
   * `from*_uri` outside the list is invalid params naming the param. Empty:
   * only the gateway's own caller id (from omitted). null: any (operator's explicit choice).
   */
  readonly callerIds: readonly string[] | null;
}

export interface Account {
  /** `[A-Za-z0-9_-]{1,64}`: the `{account_id}` of the seeds' URLs. */
  readonly accountId: string;
  readonly name: string;
  readonly enabled: boolean;
  readonly limits: AccountLimits;
}

/**
 * What transports need from the account store: which account a presented
 * API key belongs to.
 */
export interface AccountDirectory {
  /**
   * The enabled account a presented API key belongs to, or null for a
   * malformed, unknown or revoked key or a disabled account (the caller
   * cannot tell which: no oracle for attackers). Records the key's last use.
   * Never throws for bad input; rejects only when the store is unreachable.
   */
  authenticate(presentedKey: string): Promise<Account | null>;
  /** The account as stored now (limits can change while the server runs), or null. */
  get(accountId: string): Promise<Account | null>;
  /**
   * The signing key (64 hex characters, `signingKeyOf`) of an API key by its
   * public id, with its enabled account; null for an unknown, revoked or
   * pre-signing key or a disabled account. Rejects only when the store is unreachable.
   */
  signingKey(keyId: string): Promise<{ readonly account: Account; readonly signingKey: string } | null>;
}
