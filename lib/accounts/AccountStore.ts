import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Selectable } from 'kysely';
import type { Store } from '../store/Store.js';
import type { AccountsTable, ApiKeysTable } from '../store/StoreTables.js';
import type { Logger } from '../util/logger.js';
import type { Account, AccountDirectory, AccountLimits } from './Account.js';
import { DEFAULT_LIMITS, isAccountId, validate, type NewAccountInput } from './accountInput.js';
import { generateKey, hashSecret, KEY_ID_PATTERN, parseKey, signingKeyOf, verifySecret, type ParsedKey } from './apiKey.js';
import { AuthCache } from './AuthCache.js';

/** An account with its bookkeeping times (Unix milliseconds). */
export interface AccountRecord extends Account {
  readonly createdAt: number;
  readonly updatedAt: number;
}

/** What may be shown about a key: never its secret or hash. Times in Unix milliseconds. */
export interface ApiKeyInfo {
  readonly keyId: string;
  readonly accountId: string;
  readonly label: string;
  readonly createdAt: number;
  readonly lastUsedAt: number | null;
  readonly revokedAt: number | null;
}

/** A key just created: `key` (`cti_<keyId>_<secret>`) exists only in this answer. */
export interface CreatedApiKey extends ApiKeyInfo {
  readonly key: string;
}

export type AccountStoreErrorKind = 'not_found' | 'conflict';

/** An admin operation that names an unknown account/key or an existing account id. Bad input is InvalidAccountInput (accountInput.ts). */
export class AccountStoreError extends Error {
  override name = 'AccountStoreError';
  constructor(
    readonly kind: AccountStoreErrorKind,
    message: string,
  ) {
    super(message);
  }
}

export interface AccountStoreOptions {
  /** Defaults to Date.now. */
  readonly now?: () => number;
  /** How long an authenticate() answer is reused: the bound on how late a revocation takes effect on other nodes. Default 5000. */
  readonly authCacheMs?: number;
  /** Cached answers kept at most. Default 10000. */
  readonly authCacheEntries?: number;
  /** A key's last_used_at is written at most once per this many ms (per node). Default 60000. */
  readonly lastUsedIntervalMs?: number;
  /** Where failed last-use writes are reported (they never fail an authentication). */
  readonly log?: Logger;
}

/** File in the data folder that receives the first key of a fresh store. */
export const BOOTSTRAP_KEY_FILE = 'initial-api-key';
/** The account a fresh store gets. */
export const BOOTSTRAP_ACCOUNT_ID = 'default';

type KeyLookup = { readonly keyId: string; readonly account: Account } | null;

/**
 * Accounts and API keys in the {@link Store}: the {@link AccountDirectory}
 * transports authenticate against, plus the operations of the admin command.
 * Every input is checked against its grammar before the database sees it
 * (admin operations throw {@link InvalidAccountInput}; lookups answer null).
 */
export class AccountStore implements AccountDirectory {
  readonly #db: Store['db'];
  readonly #now: () => number;
  readonly #cache: AuthCache<KeyLookup>;
  readonly #lastUsedIntervalMs: number;
  /** key id → when this node last wrote its last_used_at. Bounded by the number of valid keys. */
  readonly #lastUseWritten = new Map<string, number>();
  readonly #log: Logger | undefined;

  constructor(store: Store, options: AccountStoreOptions = {}) {
    this.#db = store.db;
    this.#now = options.now ?? Date.now;
    this.#cache = new AuthCache(options.authCacheMs ?? 5000, options.authCacheEntries ?? 10_000, this.#now);
    this.#lastUsedIntervalMs = options.lastUsedIntervalMs ?? 60_000;
    this.#log = options.log;
  }

  /**
   * The enabled account of a presented `cti_<keyId>_<secret>` key, or null
   * (malformed, unknown, revoked, wrong secret, disabled account: the caller
   * cannot tell which). Answers are cached for `authCacheMs` by a SHA-256 of
   * the key; a key id that does not exist costs no scrypt (key ids are not
   * secret), but every existing one does, revoked or not, so the time does
   * not tell why a key was refused. Rejects only when the store cannot be read.
   */
  async authenticate(presentedKey: string): Promise<Account | null> {
    const parsed = parseKey(presentedKey);
    if (!parsed) return null;
    const found = await this.#cache.get(presentedKey, () => this.#lookupKey(parsed));
    if (!found) return null;
    await this.#recordUse(found.keyId);
    return found.account;
  }

  async signingKey(keyId: string): Promise<{ account: Account; signingKey: string } | null> {
    if (!new RegExp(KEY_ID_PATTERN).test(keyId)) return null;
    const row = await this.#usableKey(keyId);
    if (!row || row.signing_key === null) return null;
    await this.#recordUse(keyId);
    return { account: toAccount(row), signingKey: row.signing_key };
  }

  /** The account as stored now, or null (also for a malformed id). */
  async get(accountId: string): Promise<AccountRecord | null> {
    if (!isAccountId(accountId)) return null;
    const row = await this.#db.selectFrom('accounts').selectAll().where('account_id', '=', accountId).executeTakeFirst();
    return row ? toAccount(row) : null;
  }

  /** Every account, by id. */
  async list(): Promise<AccountRecord[]> {
    const rows = await this.#db.selectFrom('accounts').selectAll().orderBy('account_id').execute();
    return rows.map(toAccount);
  }

  /**
   * Creates an enabled account; limits not given take {@link DEFAULT_LIMITS}.
   * Throws InvalidAccountInput, or AccountStoreError `conflict` when the id exists.
   */
  async create(input: NewAccountInput): Promise<AccountRecord> {
    validate.newAccount(input);
    const inserted = await this.#insertAccount(this.#db, input);
    if (!inserted) throw new AccountStoreError('conflict', `account ${input.accountId} already exists`);
    return inserted;
  }

  /** Enables or disables an account; a disabled account's keys stop authenticating (other nodes: within authCacheMs). */
  async setEnabled(accountId: string, enabled: boolean): Promise<AccountRecord> {
    validate.accountId(accountId);
    return this.#updateAccount(accountId, { enabled: enabled ? 1 : 0 });
  }

  /** Changes the given limits and keeps the others. */
  async setLimits(accountId: string, limits: Partial<AccountLimits>): Promise<AccountRecord> {
    validate.accountId(accountId);
    validate.limits(limits);
    return this.#updateAccount(accountId, limitColumns(limits));
  }

  /** A new key for an account; the answer is the only place its secret ever appears. */
  async createKey(accountId: string, label = ''): Promise<CreatedApiKey> {
    validate.accountId(accountId);
    validate.label(label);
    if (!(await this.get(accountId))) throw new AccountStoreError('not_found', `no account ${accountId}`);
    return this.#insertKey(this.#db, accountId, label);
  }

  /** The keys of one account (AccountStoreError `not_found` if it does not exist) or of all, newest first, revoked ones included. */
  async listKeys(accountId?: string): Promise<ApiKeyInfo[]> {
    if (accountId !== undefined) {
      validate.accountId(accountId);
      if (!(await this.get(accountId))) throw new AccountStoreError('not_found', `no account ${accountId}`);
    }
    let query = this.#db.selectFrom('api_keys').selectAll().orderBy('created_at', 'desc').orderBy('key_id');
    if (accountId !== undefined) query = query.where('account_id', '=', accountId);
    return (await query.execute()).map(toKeyInfo);
  }

  /**
   * Revokes a key: it stops authenticating at once on this node, within
   * authCacheMs on the others. Revoking a revoked key keeps its first time.
   */
  async revokeKey(keyId: string): Promise<ApiKeyInfo> {
    validate.keyId(keyId);
    await this.#db
      .updateTable('api_keys')
      .set({ revoked_at: this.#now() })
      .where('key_id', '=', keyId)
      .where('revoked_at', 'is', null)
      .execute();
    this.#cache.clear();
    const row = await this.#db.selectFrom('api_keys').selectAll().where('key_id', '=', keyId).executeTakeFirst();
    if (!row) throw new AccountStoreError('not_found', `no key ${keyId}`);
    return toKeyInfo(row);
  }

  /**
   * First start: when the store has no account at all, creates account
   * `default` (any caller id: it is the operator's own) with one key, writes
   * the key to `<dataDir>/initial-api-key` (mode 0600, created 0700 folder)
   * and returns that path; the caller logs the path, never the key. Otherwise
   * (any account exists, or another node bootstrapped first) does nothing
   * and returns null.
   */
  async bootstrap(dataDir: string): Promise<string | null> {
    const any = await this.#db.selectFrom('accounts').select('account_id').limit(1).executeTakeFirst();
    if (any) return null;
    const path = join(dataDir, BOOTSTRAP_KEY_FILE);
    return this.#db.transaction().execute(async (trx) => {
      const account = await this.#insertAccount(trx, {
        accountId: BOOTSTRAP_ACCOUNT_ID,
        name: 'Default account',
        limits: { callerIds: null },
      });
      if (!account) return null;
      const { key } = await this.#insertKey(trx, account.accountId, 'bootstrap');
      // Written inside the transaction: if the file cannot be written, no account exists whose key nobody has.
      await writePrivateFile(path, `${key}\n`);
      return path;
    });
  }

  async #lookupKey({ keyId, secret }: ParsedKey): Promise<KeyLookup> {
    const row = await this.#keyRow(keyId);
    if (!row) return null;
    // The secret is checked before revocation and the account's state, so a refusal takes as long whatever its
    // reason: the time does not tell whether a key id's key was revoked or its account disabled.
    const matches = await verifySecret(secret, row.secret_hash);
    if (!matches || !usable(row)) return null;
    return { keyId, account: toAccount(row) };
  }

  /** A key that is not revoked, with its account's row when that account is enabled; else undefined. */
  async #usableKey(keyId: string) {
    const row = await this.#keyRow(keyId);
    return row && usable(row) ? row : undefined;
  }

  /** A key's row joined with its account's, whatever their state. */
  async #keyRow(keyId: string) {
    return this.#db
      .selectFrom('api_keys')
      .innerJoin('accounts', 'accounts.account_id', 'api_keys.account_id')
      .selectAll('accounts')
      .select(['api_keys.secret_hash', 'api_keys.signing_key', 'api_keys.revoked_at'])
      .where('api_keys.key_id', '=', keyId)
      .executeTakeFirst();
  }

  /** last_used_at at most once per interval per key on this node; a failed write is logged, not fatal. */
  async #recordUse(keyId: string): Promise<void> {
    const now = this.#now();
    const last = this.#lastUseWritten.get(keyId);
    if (last !== undefined && now - last < this.#lastUsedIntervalMs) return;
    this.#lastUseWritten.set(keyId, now);
    try {
      await this.#db.updateTable('api_keys').set({ last_used_at: now }).where('key_id', '=', keyId).execute();
    } catch (err) {
      this.#log?.warn({ err, keyId }, 'could not record the last use of an API key');
    }
  }

  async #insertAccount(db: Store['db'], input: NewAccountInput): Promise<AccountRecord | null> {
    const now = this.#now();
    const limits: AccountLimits = { ...DEFAULT_LIMITS, ...input.limits };
    const row: Selectable<AccountsTable> = {
      account_id: input.accountId,
      name: input.name ?? input.accountId,
      enabled: 1,
      max_live_resources: limits.maxLiveResources,
      constructs_per_second: limits.constructsPerSecond,
      gateways: jsonList(limits.gateways),
      caller_ids: jsonList(limits.callerIds),
      created_at: now,
      updated_at: now,
    };
    const result = await db
      .insertInto('accounts')
      .values(row)
      .onConflict((oc) => oc.column('account_id').doNothing())
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0) === 1 ? toAccount(row) : null;
  }

  async #insertKey(db: Store['db'], accountId: string, label: string): Promise<CreatedApiKey> {
    const { keyId, secret, presented } = generateKey();
    const row: Selectable<ApiKeysTable> = {
      key_id: keyId,
      account_id: accountId,
      label,
      secret_hash: await hashSecret(secret),
      signing_key: signingKeyOf(secret),
      created_at: this.#now(),
      last_used_at: null,
      revoked_at: null,
    };
    await db.insertInto('api_keys').values(row).execute();
    return { ...toKeyInfo(row), key: presented };
  }

  async #updateAccount(accountId: string, changes: Partial<AccountsTable>): Promise<AccountRecord> {
    await this.#db
      .updateTable('accounts')
      .set({ ...changes, updated_at: this.#now() })
      .where('account_id', '=', accountId)
      .execute();
    this.#cache.clear();
    const account = await this.get(accountId);
    if (!account) throw new AccountStoreError('not_found', `no account ${accountId}`);
    return account;
  }
}

function limitColumns(limits: Partial<AccountLimits>): Partial<AccountsTable> {
  const columns: Partial<AccountsTable> = {};
  if (limits.maxLiveResources !== undefined) columns.max_live_resources = limits.maxLiveResources;
  if (limits.constructsPerSecond !== undefined) columns.constructs_per_second = limits.constructsPerSecond;
  if (limits.gateways !== undefined) columns.gateways = jsonList(limits.gateways);
  if (limits.callerIds !== undefined) columns.caller_ids = jsonList(limits.callerIds);
  return columns;
}

/** Lists are stored as JSON text; null (no restriction) stays null. */
const jsonList = (list: readonly string[] | null): string | null => (list === null ? null : JSON.stringify(list));

function toAccount(row: Selectable<AccountsTable>): AccountRecord {
  return {
    accountId: row.account_id,
    name: row.name,
    enabled: row.enabled === 1,
    limits: {
      maxLiveResources: row.max_live_resources,
      constructsPerSecond: row.constructs_per_second,
      gateways: row.gateways === null ? null : (JSON.parse(row.gateways) as string[]),
      callerIds: row.caller_ids === null ? null : (JSON.parse(row.caller_ids) as string[]),
    },
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function toKeyInfo(row: Selectable<ApiKeysTable>): ApiKeyInfo {
  return {
    keyId: row.key_id,
    accountId: row.account_id,
    label: row.label,
    createdAt: row.created_at,
    lastUsedAt: row.last_used_at,
    revokedAt: row.revoked_at,
  };
}

/** Write-then-rename, so the file appears complete and is never readable by anyone but its owner. */
async function writePrivateFile(path: string, content: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    await writeFile(tmp, content, { mode: 0o600, flag: 'wx' });
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/** Whether a key's row may authenticate: not revoked, and its account enabled. */
function usable(row: { readonly revoked_at: number | null; readonly enabled: number }): boolean {
  return row.revoked_at === null && row.enabled === 1;
}
