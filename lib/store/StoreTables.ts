/**
 * The tables of the store as Kysely sees them: one TypeScript shape per
 * table, the same on SQLite and PostgreSQL. Portable column types only:
 * times are integer Unix milliseconds (`bigint` on PostgreSQL, read back as
 * numbers), flags are integers 0/1 (SQLite has no boolean), lists are JSON
 * text. Each migration that adds a table adds its shape here.
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
  /**
   * HMAC key of signed HTTP requests, derived from the secret (`signingKeyOf`);
   * null for keys created before migration 0003, which can only use Bearer.
   */
  signing_key: string | null;
  created_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
}

/** `event_sequences`: the last event id handed out per account; its row lock orders commits across nodes. */
export interface EventSequencesTable {
  account_id: string;
  last_event_id: number;
}

/** `events`: the durable event log (issue 9), one row per event sent. */
export interface EventsTable {
  account_id: string;
  /** 1, 2, 3 … per account, without gaps, in commit order. */
  event_id: number;
  res_id: string;
  /** The JSON-RPC notification method, `ext.duo_callback.on_progress` … */
  method: string;
  /** JSON of the notification params, `event_id` included. */
  params: string;
  created_at: number;
}

/** `resources`: every resource from its construct on; the final record (CDR) once released (issue 9). */
export interface ResourcesTable {
  res_id: string;
  account_id: string;
  /** The node that runs it: at start-up a node releases its own rows left live. */
  node_id: string;
  class: string;
  process_id: number;
  owner_id: string;
  user_data: string | null;
  /** 1 until its on_released is committed, then 0. */
  live: number;
  created_at: number;
  released_at: number | null;
  /** JSON of the final record (CDR, lib/cdr) once released. */
  cdr: string | null;
  /** JSON of the engine's dialog state while live (what a restart needs to end its calls). */
  dialogs: string | null;
  /**
   * JSON of the resource's context (parties' numbers, gateway, SIP status,
   * times) as of its last committed on_progress, while live: a restart's CDR
   * of a resource left live starts from it (migration 0006). Null once released.
   */
  context: string | null;
}

/** `webhook_targets`: an account's event_url, signing secret and delivery cursor (issue 10). */
export interface WebhookTargetsTable {
  account_id: string;
  /** null: webhooks cleared (the secret is kept for the next URL). */
  url: string | null;
  /** Standard Webhooks secret, `whsec_<base64>`. */
  secret: string;
  /** Events up to this id are done (delivered or failed). */
  delivered_event_id: number;
  /** Failed attempts of the next event so far. */
  pending_attempts: number;
  /** Unix milliseconds before which the next event is not tried. */
  next_attempt_at: number;
  updated_at: number;
}

/**
 * `webhook_call_targets`: a resource's status_url and its delivery cursor,
 * written with the resource's row (issue 10, migration 0005).
 */
export interface WebhookCallTargetsTable {
  res_id: string;
  account_id: string;
  url: string;
  /** The resource's events up to this id (of the account's log) are done. */
  delivered_event_id: number;
  pending_attempts: number;
  next_attempt_at: number;
  /** 1 once its on_released was delivered or failed: nothing more to send. */
  done: number;
  updated_at: number;
}

/** Where an attempt went: the account's event_url or the call's status_url. */
export type WebhookTargetKind = 'event_url' | 'status_url';

/** `webhook_attempts`: one row per POST of an event to one target (issue 10). */
export interface WebhookAttemptsTable {
  account_id: string;
  event_id: number;
  target: WebhookTargetKind;
  /** 1, 2, 3 … per event. */
  attempt: number;
  /** HTTP status, null when no answer (refused, timeout, connection error). */
  status: number | null;
  latency_ms: number;
  error: string | null;
  /** `delivered`, `retrying` or `failed` (the last attempt, retries exhausted). */
  outcome: string;
  created_at: number;
}

export interface StoreTables {
  accounts: AccountsTable;
  api_keys: ApiKeysTable;
  event_sequences: EventSequencesTable;
  events: EventsTable;
  resources: ResourcesTable;
  webhook_targets: WebhookTargetsTable;
  webhook_attempts: WebhookAttemptsTable;
  webhook_call_targets: WebhookCallTargetsTable;
}
