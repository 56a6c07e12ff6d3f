/**
 * The tables of the store as Kysely sees them: one TypeScript shape per
 * table, the same on SQLite and PostgreSQL. Portable column types only:
 * times are integer Unix milliseconds (`bigint` on PostgreSQL, read back as
 * numbers), flags are integers 0/1 (SQLite has no boolean), lists are JSON
 * text. A later migration adds tables here (event log, CDRs, webhooks).
 */

/** `accounts`: one row per account (issue 8). */
export interface AccountsTable {
  /** `[A-Za-z0-9_-]{1,64}`, the primary key. */
  account_id: string;
  name: string;
  /** 1 enabled, 0 disabled. */
  enabled: number;
  /** null: no per-account limit. */
  max_live_resources: number | null;
  constructs_per_second: number | null;
  /** JSON array of gateway names, or null for every gateway. */
  gateways: string | null;
  /** JSON array of caller ids, or null for any. */
  caller_ids: string | null;
  created_at: number;
  updated_at: number;
}

/** `api_keys`: several per account so keys rotate without downtime. */
export interface ApiKeysTable {
  /** The public part of a presented key, the primary key. */
  key_id: string;
  account_id: string;
  /** Free text for people (`ci`, `crm-prod`), may be empty. */
  label: string;
  /** `scrypt$<N>$<r>$<p>$<salt b64url>$<hash b64url>`; never the secret. */
  secret_hash: string;
  created_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
}

export interface StoreTables {
  accounts: AccountsTable;
  api_keys: ApiKeysTable;
}
