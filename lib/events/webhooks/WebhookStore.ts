import { randomBytes } from 'node:crypto';
import { pruneOlderThan } from '../../store/pruneOlderThan.js';
import type { Store } from '../../store/Store.js';
import type { WebhookAttemptsTable, WebhookCallTargetsTable, WebhookTargetKind, WebhookTargetsTable } from '../../store/StoreTables.js';
import { checkWebhookUrl } from './targetAddress.js';
import type { WebhookAttemptsPage } from '../../api/generated/types.js';

/** An account's webhook target as the admin command shows it. */
export interface WebhookTargetInfo {
  readonly account_id: string;
  readonly event_url: string | null;
  /** `whsec_<base64>`: verify deliveries with it (Standard Webhooks). */
  readonly secret: string;
}

export type WebhookTarget = WebhookTargetsTable;
export type WebhookCallTarget = WebhookCallTargetsTable;
export type WebhookAttempt = WebhookAttemptsTable;

/** Where a delivery stream stands: events up to `delivered_event_id` are done; the next one's retry state. */
export type DeliveryCursor = Pick<WebhookTarget, 'delivered_event_id' | 'pending_attempts' | 'next_attempt_at'>;

/** The most attempts one page returns (the schema's `limit` maximum too). */
export const MAX_ATTEMPTS_PAGE = 200;

/**
 * Webhook targets (event_url, secret, cursor) and the attempt records in
 * the store (issue 10). The secret is created with the account's first URL
 * and kept when the URL is cleared or changed, so receivers keep verifying.
 */
export class WebhookStore {
  readonly #store: Store;

  constructor(store: Store) {
    this.#store = store;
  }

  /**
   * Sets (`url`: checked by checkWebhookUrl, throws InvalidWebhookUrl) or
   * clears (null) the account's event_url. A new target starts after the
   * account's last committed event: only later events are delivered.
   */
  async setUrl(accountId: string, url: string | null, now: number): Promise<WebhookTargetInfo> {
    const checked = url === null ? null : checkWebhookUrl(url).href;
    const existing = await this.target(accountId);
    if (existing) {
      await this.#store.db.updateTable('webhook_targets').set({ url: checked, updated_at: now }).where('account_id', '=', accountId).execute();
      return { account_id: accountId, event_url: checked, secret: existing.secret };
    }
    return { account_id: accountId, event_url: checked, secret: await this.#create(accountId, checked, now) };
  }

  /**
   * The account's signing secret, created (with no event_url) when the
   * account has none yet: a call's status_url is signed with it too.
   */
  async secret(accountId: string, now: number): Promise<string> {
    return (await this.target(accountId))?.secret ?? this.#create(accountId, null, now);
  }

  async #create(accountId: string, url: string | null, now: number): Promise<string> {
    const last = await this.#store.db
      .selectFrom('event_sequences')
      .select('last_event_id')
      .where('account_id', '=', accountId)
      .executeTakeFirst();
    const secret = `whsec_${randomBytes(24).toString('base64')}`;
    await this.#store.db
      .insertInto('webhook_targets')
      .values({
        account_id: accountId,
        url,
        secret,
        delivered_event_id: Number(last?.last_event_id ?? 0),
        pending_attempts: 0,
        next_attempt_at: 0,
        updated_at: now,
      })
      // Two first uses at once (a status_url and the admin command): the first secret stays.
      .onConflict((oc) => oc.column('account_id').doNothing())
      .execute();
    return (await this.target(accountId))!.secret;
  }

  /** The account's target row, or undefined. */
  async target(accountId: string): Promise<WebhookTarget | undefined> {
    const row = await this.#store.db.selectFrom('webhook_targets').selectAll().where('account_id', '=', accountId).executeTakeFirst();
    return row && numeric(row);
  }

  /** Accounts with an event_url. */
  async activeAccounts(): Promise<string[]> {
    const rows = await this.#store.db.selectFrom('webhook_targets').select('account_id').where('url', 'is not', null).execute();
    return rows.map((r) => r.account_id);
  }

  /** A call's status_url target, or undefined. */
  async callTarget(resId: string): Promise<WebhookCallTarget | undefined> {
    const row = await this.#store.db.selectFrom('webhook_call_targets').selectAll().where('res_id', '=', resId).executeTakeFirst();
    return row && { ...numeric(row), done: Number(row.done) };
  }

  /** Calls whose status_url still has events to deliver: `[account_id, res_id]`. */
  async openCallTargets(): Promise<Array<[string, string]>> {
    const rows = await this.#store.db.selectFrom('webhook_call_targets').select(['account_id', 'res_id']).where('done', '=', 0).execute();
    return rows.map((r) => [r.account_id, r.res_id]);
  }

  /**
   * Stores an attempt and moves its stream's cursor in one transaction: the
   * account's event_url, or with `call` the status_url of that resource
   * (`done`: nothing more will be sent to it).
   */
  async recordAttempt(attempt: WebhookAttempt, cursor: DeliveryCursor, call?: { readonly resId: string; readonly done: boolean }): Promise<void> {
    await this.#store.db.transaction().execute(async (trx) => {
      await trx.insertInto('webhook_attempts').values(attempt).execute();
      if (call) {
        await trx
          .updateTable('webhook_call_targets')
          .set({ ...cursor, done: call.done ? 1 : 0, updated_at: attempt.created_at })
          .where('res_id', '=', call.resId)
          .execute();
      } else {
        await trx
          .updateTable('webhook_targets')
          .set({ ...cursor, updated_at: attempt.created_at })
          .where('account_id', '=', attempt.account_id)
          .execute();
      }
    });
  }

  /**
   * Retention (`retention.webhookDays`): deletes attempts made before
   * `beforeMs` (Unix milliseconds) and the status_url targets whose delivery
   * ended (`done`) before it; a target still delivering is kept whatever its
   * age. Account targets (event_url, secret) are settings, never pruned.
   */
  async prune(beforeMs: number): Promise<{ readonly attempts: number; readonly callTargets: number }> {
    const attempts = await pruneOlderThan(this.#store.db, { table: 'webhook_attempts', time: 'created_at' }, beforeMs);
    const callTargets = await pruneOlderThan(this.#store.db, { table: 'webhook_call_targets', time: 'updated_at', flag: { column: 'done', equals: 1 } }, beforeMs);
    return { attempts, callTargets };
  }

  /** When the first attempt of an event to that target was made (Unix ms), or undefined. */
  async firstAttemptAt(accountId: string, eventId: number, target: WebhookTargetKind): Promise<number | undefined> {
    const row = await this.#store.db
      .selectFrom('webhook_attempts')
      .select('created_at')
      .where('account_id', '=', accountId)
      .where('event_id', '=', eventId)
      .where('target', '=', target)
      .where('attempt', '=', 1)
      .executeTakeFirst();
    return row ? Number(row.created_at) : undefined;
  }

  /**
   * The account's attempts, newest event first, after the page token
   * `before` (an event_id; attempts of older events), at most `limit`
   * (1 … {@link MAX_ATTEMPTS_PAGE}).
   */
  async attempts(accountId: string, limit: number, beforeEventId?: number): Promise<WebhookAttempt[]> {
    let q = this.#store.db.selectFrom('webhook_attempts').selectAll().where('account_id', '=', accountId);
    if (beforeEventId !== undefined) q = q.where('event_id', '<', beforeEventId);
    const rows = await q
      .orderBy('event_id', 'desc')
      .orderBy('target')
      .orderBy('attempt', 'desc')
      .limit(Math.max(1, Math.min(limit, MAX_ATTEMPTS_PAGE)))
      .execute();
    return rows.map((r) => ({ ...r, event_id: Number(r.event_id), created_at: Number(r.created_at) }));
  }
}

type Outcome = WebhookAttemptsPage['attempts'][number]['outcome'];

/**
 * One page for the account (`sys.webhooks.attempts`, `GET
 * /account/{id}/webhooks/attempts`): whole events only (an event's attempts
 * are not split across pages, except one event with more than `limit`
 * attempts: its newest `limit`), so `next_before` is the oldest event id of
 * the page.
 */
export async function attemptsPage(store: WebhookStore, accountId: string, limit: number, before?: number): Promise<WebhookAttemptsPage> {
  const rows = await store.attempts(accountId, limit + 1, before);
  let page = rows.slice(0, limit);
  const more = rows.length > limit;
  if (more) {
    const cut = rows[limit]!.event_id;
    const whole = page.filter((r) => r.event_id !== cut);
    if (whole.length) page = whole;
  }
  const attempts = page.map((r) => ({
    event_id: r.event_id,
    attempt: r.attempt,
    target: r.target,
    status: r.status,
    latency_ms: r.latency_ms,
    error: r.error,
    outcome: r.outcome as Outcome,
    time: Math.floor(r.created_at / 1000),
  }));
  const last = attempts.at(-1);
  return { attempts, next_before: more && last ? last.event_id : null };
}

/** PostgreSQL returns bigint as text where the pg parser is not set; normalize. */
function numeric<T extends DeliveryCursor & { updated_at: number }>(row: T): T {
  return {
    ...row,
    delivered_event_id: Number(row.delivered_event_id),
    pending_attempts: Number(row.pending_attempts),
    next_attempt_at: Number(row.next_attempt_at),
    updated_at: Number(row.updated_at),
  };
}
