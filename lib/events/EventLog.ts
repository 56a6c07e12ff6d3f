import type { ResourceClass, ResourceContext } from '../api/generated/types.js';
import type { ResourceEvent } from '../resources/ResourceRegistry.js';
import type { Selectable, Transaction } from 'kysely';
import { pruneOlderThan } from '../store/pruneOlderThan.js';
import type { Store } from '../store/Store.js';
import { EventLogQueries } from './EventLogQueries.js';
import type { EventsTable, StoreTables } from '../store/StoreTables.js';
import type { Clock } from '../util/Clock.js';
import { eventCommittedChannel, monotonicMs, type EventCommittedMessage } from '../util/diagnostics.js';
import type { Logger } from '../util/logger.js';
import { TypedEventEmitter } from '../util/TypedEmitter.js';

/** An event as committed: its JSON-RPC notification (`params.event_id` included) and where it belongs. */
export interface LoggedEvent {
  readonly accountId: string;
  /** 1, 2, 3 … per account, without gaps, in commit order. */
  readonly eventId: number;
  readonly resId: string;
  readonly resourceClass: ResourceClass;
  readonly name: ResourceEvent['name'];
  /** `${resourceClass}.${name}`. */
  readonly method: string;
  /** The notification params, `event_id` included. */
  readonly params: Readonly<Record<string, unknown>>;
  /** Session id of the resource's owner; null for an event read back from the store. */
  readonly ownerId: string | null;
  /** Commit time, Unix milliseconds. */
  readonly time: number;
}

/** The row a resource gets at construct, before it dials (crash recovery finds it there). */
export interface ResourceRecord {
  readonly resId: string;
  readonly accountId: string;
  readonly nodeId: string;
  readonly resourceClass: ResourceClass;
  readonly processId: number;
  readonly ownerId: string;
  readonly userData: string | null;
  /** Unix milliseconds. */
  readonly createdAt: number;
  /** The call's own webhook URL (checked), stored with the row so a restart resumes its delivery; absent: none. */
  readonly statusUrl?: string;
}

/** What a released resource's row keeps (JSON in `resources.cdr`); lib/cdr adds the row's identity columns. */
export interface StoredFinalRecord {
  readonly event_id: number;
  /** The on_released params as sent. */
  readonly released: Readonly<Record<string, unknown>>;
  readonly context: ResourceContext;
}

export type EventLogEvents = {
  /** Each event once, after its commit, in event_id order per account. */
  committed: (event: LoggedEvent) => void;
  /** A new resource's row (and its status_url target) was committed; before any of its events. */
  stored: (record: ResourceRecord) => void;
};

export interface EventLogOptions {
  readonly clock: Clock;
  readonly log: Logger;
  /** Without a store: how many recent events memory keeps for replay. */
  readonly memoryEvents?: number;
}

interface Batch {
  readonly records: ResourceRecord[];
  readonly events: ResourceEvent[];
  /** When each of `events` was queued ({@link monotonicMs}): the bench's event delivery latency starts there. */
  readonly queuedAt: number[];
  /** Resources whose dialog states changed: their `dialogs` column is rewritten. */
  readonly dialogs: Set<string>;
  readonly done: Array<() => void>;
}

const emptyBatch = (): Batch => ({ records: [], events: [], queuedAt: [], dialogs: new Set(), done: [] });

/** Rows per INSERT: far below SQLite's and PostgreSQL's bound-parameter limits. */
const INSERT_CHUNK = 200;
/** After a failed commit (database down), the batch is retried this often; nothing is sent meanwhile. */
const RETRY_MS = 500;
/** The most events a replay page returns. */
export const MAX_REPLAY_LIMIT = 1000;

/**
 * The durable event log (issue 9). Every resource event is committed before
 * it is sent: {@link append} queues it, the queue is committed as one
 * transaction at the end of the current event-loop turn (group commit:
 * everything the turn's I/O produced shares one commit, and whatever arrives
 * while a commit runs goes in the next one), and only then is `committed`
 * emitted, in order. No timer waits for companions: a construct's reply
 * waits for its row's commit (measured: docs/performance.md).
 *
 * event_id: the account's row in `event_sequences` is advanced by the number
 * of its events inside the committing transaction. That row lock orders
 * commits of one account across nodes sharing PostgreSQL, so ids grow
 * without gaps in commit order (a rolled-back transaction rolls its ids back).
 *
 * The same transaction writes resource rows ({@link constructed}) and, with
 * an on_released event, the resource's final record: a resource is released
 * in the store exactly when its on_released is, which is what makes the
 * restart rule "every resource left live gets one on_released" exact.
 *
 * Without a store (tests, auth.mode none without a database) ids come from
 * memory and only the last `memoryEvents` events can be replayed.
 */
export class EventLog extends TypedEventEmitter<EventLogEvents> {
  readonly #store: Store | null;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #memoryLimit: number;
  readonly #memory: LoggedEvent[] = [];
  readonly #memorySequence = new Map<string, number>();
  #queue: Batch = emptyBatch();
  /** Live resources' confirmed dialogs: res_id → leg id → the engine's state text. */
  readonly #dialogs = new Map<string, Map<string, string>>();
  #running: Promise<void> | null = null;
  /** The commit's statements, compiled on the first commit. */
  #queries: EventLogQueries | null = null;

  constructor(store: Store | null, options: EventLogOptions) {
    super();
    this.#store = store;
    this.#clock = options.clock;
    this.#log = options.log;
    this.#memoryLimit = options.memoryEvents ?? 10_000;
  }

  /** True when events survive a restart. */
  get durable(): boolean {
    return this.#store !== null;
  }

  /**
   * Queues an event; it is emitted as `committed` once stored. An
   * on_released with its `context` also closes the resource's row: the
   * row keeps the final record ({@link StoredFinalRecord}). An on_progress's
   * `context` is kept in the live row (what a restart's CDR starts from).
   */
  append(event: ResourceEvent): void {
    this.#queue.events.push(event);
    this.#queue.queuedAt.push(monotonicMs());
    this.#schedule();
  }

  /** Queues a new resource's row; resolves once committed (the resource may dial then). */
  constructed(record: ResourceRecord): Promise<void> {
    this.#queue.records.push(record);
    return this.flush();
  }

  /**
   * Keeps a live resource's dialog state (the engine's text, null: that
   * dialog ended) in its row, so a restart after a crash can end the call
   * (issue 9). Written with the next commit; cleared when it is released.
   */
  saveDialog(resId: string, legId: string, state: string | null): void {
    if (!this.#store) return;
    const legs = this.#dialogs.get(resId) ?? new Map<string, string>();
    if (state === null && !legs.has(legId)) return; // nothing was stored for that leg: no write
    if (state === null) legs.delete(legId);
    else legs.set(legId, state);
    if (legs.size) this.#dialogs.set(resId, legs);
    else this.#dialogs.delete(resId);
    this.#queue.dialogs.add(resId);
    this.#schedule();
  }

  /** Resolves once everything queued so far is committed. */
  flush(): Promise<void> {
    const done = new Promise<void>((resolve) => this.#queue.done.push(resolve));
    this.#schedule();
    return done;
  }

  /**
   * The account's events after `afterEventId`, oldest first, at most `limit`
   * (1 … {@link MAX_REPLAY_LIMIT}). Events already pruned are simply absent.
   */
  async replay(accountId: string, afterEventId: number, limit: number): Promise<LoggedEvent[]> {
    const count = Math.max(1, Math.min(limit, MAX_REPLAY_LIMIT));
    if (!this.#store) {
      return this.#memory.filter((e) => e.accountId === accountId && e.eventId > afterEventId).slice(0, count);
    }
    const rows = await this.#store.db
      .selectFrom('events')
      .selectAll()
      .where('account_id', '=', accountId)
      .where('event_id', '>', afterEventId)
      .orderBy('event_id')
      .limit(count)
      .execute();
    return rows.map(eventOfRow);
  }

  /** The resource's events after `afterEventId`, oldest first, at most `limit` (a status_url's delivery reads them). */
  async replayResource(accountId: string, resId: string, afterEventId: number, limit: number): Promise<LoggedEvent[]> {
    const count = Math.max(1, Math.min(limit, MAX_REPLAY_LIMIT));
    if (!this.#store) {
      return this.#memory.filter((e) => e.accountId === accountId && e.resId === resId && e.eventId > afterEventId).slice(0, count);
    }
    const rows = await this.#store.db
      .selectFrom('events')
      .selectAll()
      .where('account_id', '=', accountId)
      .where('res_id', '=', resId)
      .where('event_id', '>', afterEventId)
      .orderBy('event_id')
      .limit(count)
      .execute();
    return rows.map(eventOfRow);
  }

  /** Deletes events older than `beforeMs` (Unix milliseconds), a chunk at a time ({@link pruneOlderThan}); resolves to how many. */
  async prune(beforeMs: number): Promise<number> {
    return this.#store ? pruneOlderThan(this.#store.db, { table: 'events', time: 'created_at' }, beforeMs) : 0;
  }

  #schedule(): void {
    if (this.#running) return;
    // setImmediate: after the I/O callbacks of this turn, so a burst (one poll of many datagrams) is one commit.
    this.#running = new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.#drain());
  }

  /** Commits batches one after another until the queue is empty. */
  async #drain(): Promise<void> {
    while (this.#queue.records.length || this.#queue.events.length || this.#queue.dialogs.size || this.#queue.done.length) {
      const batch = this.#queue;
      this.#queue = emptyBatch();
      let logged: LoggedEvent[] | null = null;
      /** Set when the last attempt failed at COMMIT: what it wrote, if it landed. */
      let uncertain: LoggedEvent[] | null = null;
      while (logged === null) {
        try {
          if (uncertain && this.#store && (await this.#landed(this.#store, batch, uncertain))) {
            this.#log.warn({ events: uncertain.length }, 'event log commit had landed although its COMMIT failed: not written again');
            logged = uncertain;
            break;
          }
          uncertain = null;
          logged = this.#store ? await this.#commit(this.#store, batch) : this.#remember(batch);
        } catch (err) {
          if (err instanceof CommitOutcomeUnknown) {
            uncertain = err.logged;
            this.#log.error({ err: err.cause, events: batch.events.length }, 'event log COMMIT failed and may have landed: checking before retrying, nothing is sent until it is settled');
          } else {
            this.#log.error({ err, events: batch.events.length }, 'event log commit failed: retrying, nothing is sent until it succeeds');
          }
          await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
        }
      }
      if (eventCommittedChannel.hasSubscribers) {
        const committedAt = monotonicMs();
        logged.forEach((e, i) => {
          const message: EventCommittedMessage = { accountId: e.accountId, eventId: e.eventId, queuedAt: batch.queuedAt[i]!, committedAt };
          eventCommittedChannel.publish(message);
        });
      }
      for (const record of batch.records) this.emit('stored', record);
      for (const event of logged) this.emit('committed', event);
      for (const done of batch.done) done();
    }
    this.#running = null;
  }

  /**
   * Writes the batch in one transaction. Rejects with
   * {@link CommitOutcomeUnknown} when everything was written but COMMIT
   * itself failed: with PostgreSQL the connection can drop after the server
   * committed and before its reply, and writing the batch again would then
   * log its events twice (or, with resource rows, fail on their keys forever).
   */
  async #commit(store: Store, batch: Batch): Promise<LoggedEvent[]> {
    const now = this.#clock.now();
    const queries = (this.#queries ??= new EventLogQueries(store.db));
    let written: LoggedEvent[] | null = null;
    try {
      return await store.db.transaction().execute(async (trx) => (written = await this.#write(queries, trx, batch, now)));
    } catch (err) {
      if (written) throw new CommitOutcomeUnknown(written, err);
      throw err;
    }
  }

  /**
   * Whether a batch whose COMMIT failed is in the store after all: its first
   * event's row holds exactly the params it was written with (event ids are
   * taken in order, so another commit of that id holds other params), or,
   * without events, its first resource row exists (res_ids are unique). A
   * batch of dialog states only is written again: its UPDATEs are idempotent.
   */
  async #landed(store: Store, batch: Batch, written: readonly LoggedEvent[]): Promise<boolean> {
    const [first] = written;
    if (first) {
      const row = await store.db
        .selectFrom('events')
        .select('params')
        .where('account_id', '=', first.accountId)
        .where('event_id', '=', first.eventId)
        .executeTakeFirst();
      return row?.params === JSON.stringify(first.params);
    }
    const [record] = batch.records;
    if (!record) return false;
    return (await store.db.selectFrom('resources').select('res_id').where('res_id', '=', record.resId).executeTakeFirst()) !== undefined;
  }

  /** The batch's statements inside the commit's transaction; resolves to its events with their ids. */
  async #write(queries: EventLogQueries, trx: Transaction<StoreTables>, batch: Batch, now: number): Promise<LoggedEvent[]> {
    for (let i = 0; i < batch.records.length; i += INSERT_CHUNK) {
      await queries.insertResources(
        trx,
        batch.records.slice(i, i + INSERT_CHUNK).map((r) => ({
          res_id: r.resId,
          account_id: r.accountId,
          node_id: r.nodeId,
          class: r.resourceClass,
          process_id: r.processId,
          owner_id: r.ownerId,
          user_data: r.userData,
          created_at: r.createdAt,
        })),
      );
    }
    for (const r of batch.records) if (r.statusUrl) await insertCallTarget(trx, r, r.statusUrl, now);
    await this.#updateLive(queries, trx, batch);
    if (!batch.events.length) return [];
    const counts = new Map<string, number>();
    for (const event of batch.events) counts.set(event.accountId, (counts.get(event.accountId) ?? 0) + 1);
    // Accounts locked in one order everywhere: two nodes committing for the same accounts cannot deadlock.
    const next = new Map<string, number>();
    for (const accountId of [...counts.keys()].sort()) {
      const n = counts.get(accountId)!;
      next.set(accountId, (await queries.advanceSequence(trx, accountId, n)) - n + 1);
    }
    const logged = batch.events.map((event) => {
      const eventId = next.get(event.accountId)!;
      next.set(event.accountId, eventId + 1);
      return loggedEvent(event, eventId, now);
    });
    for (let i = 0; i < logged.length; i += INSERT_CHUNK) {
      await queries.insertEvents(
        trx,
        logged.slice(i, i + INSERT_CHUNK).map((e) => ({
          account_id: e.accountId,
          event_id: e.eventId,
          res_id: e.resId,
          method: e.method,
          params: JSON.stringify(e.params),
          created_at: now,
        })),
      );
    }
    for (const [i, event] of batch.events.entries()) {
      if (!isFinal(event)) continue;
      this.#dialogs.delete(event.resId);
      const record: StoredFinalRecord = { event_id: logged[i]!.eventId, released: logged[i]!.params, context: event.context };
      await queries.release(trx, event.resId, now, JSON.stringify(record));
    }
    return logged;
  }

  /**
   * Rewrites the live rows whose dialog states changed or that had an
   * on_progress in the batch (its context, the last one of the batch): one
   * UPDATE per resource, none for a resource released in the same batch
   * (its final record replaces both). The cost is one UPDATE per progress
   * step per resource, inside commits that happen anyway (docs/operations.md).
   */
  async #updateLive(queries: EventLogQueries, trx: Transaction<StoreTables>, batch: Batch): Promise<void> {
    const released = new Set(batch.events.filter(isFinal).map((e) => e.resId));
    const contexts = new Map<string, ResourceContext>();
    for (const event of batch.events) if (event.name === 'on_progress' && event.context) contexts.set(event.resId, event.context);
    for (const resId of new Set([...batch.dialogs, ...contexts.keys()])) {
      if (released.has(resId)) continue;
      const legs = this.#dialogs.get(resId);
      const dialogs = legs ? JSON.stringify([...legs.values()]) : null;
      const context = contexts.get(resId);
      // The dialogs column always equals #dialogs, so writing it with a new context changes nothing else.
      if (context) await queries.saveLive(trx, resId, dialogs, JSON.stringify(context));
      else await queries.saveDialogs(trx, resId, dialogs);
    }
  }

  #remember(batch: Batch): LoggedEvent[] {
    const now = this.#clock.now();
    const logged = batch.events.map((event) => {
      const eventId = (this.#memorySequence.get(event.accountId) ?? 0) + 1;
      this.#memorySequence.set(event.accountId, eventId);
      return loggedEvent(event, eventId, now);
    });
    this.#memory.push(...logged);
    if (this.#memory.length > this.#memoryLimit) this.#memory.splice(0, this.#memory.length - this.#memoryLimit);
    return logged;
  }
}

/** A commit that wrote everything and then failed at COMMIT: {@link logged} is what it wrote, ids included. */
class CommitOutcomeUnknown extends Error {
  override name = 'CommitOutcomeUnknown';
  constructor(
    readonly logged: LoggedEvent[],
    cause: unknown,
  ) {
    super('COMMIT failed after the batch was written', { cause });
  }
}

/** An on_released that closes its resource's row (one made by the registry carries the final context). */
function isFinal(event: ResourceEvent): event is ResourceEvent & { readonly context: ResourceContext } {
  return event.name === 'on_released' && event.context !== undefined;
}

function eventOfRow(row: Selectable<EventsTable>): LoggedEvent {
  const [resourceClass, name] = splitMethod(row.method);
  return {
    accountId: row.account_id,
    eventId: Number(row.event_id),
    resId: row.res_id,
    resourceClass,
    name,
    method: row.method,
    params: JSON.parse(row.params) as Record<string, unknown>,
    ownerId: null,
    time: Number(row.created_at),
  };
}

/**
 * A status_url's delivery target, in the transaction that stores its
 * resource: it starts after the account's last committed event, since the
 * resource's own events are committed later with larger ids.
 */
async function insertCallTarget(trx: Transaction<StoreTables>, record: ResourceRecord, url: string, now: number): Promise<void> {
  const last = await trx.selectFrom('event_sequences').select('last_event_id').where('account_id', '=', record.accountId).executeTakeFirst();
  await trx
    .insertInto('webhook_call_targets')
    .values({
      res_id: record.resId,
      account_id: record.accountId,
      url,
      delivered_event_id: Number(last?.last_event_id ?? 0),
      pending_attempts: 0,
      next_attempt_at: 0,
      done: 0,
      updated_at: now,
    })
    .execute();
}

function loggedEvent(event: ResourceEvent, eventId: number, time: number): LoggedEvent {
  return {
    accountId: event.accountId,
    eventId,
    resId: event.resId,
    resourceClass: event.resourceClass,
    name: event.name,
    method: `${event.resourceClass}.${event.name}`,
    params: { ...event.params, event_id: eventId },
    ownerId: event.ownerId,
    time,
  };
}

/** `ext.duo_callback.on_progress` → [`ext.duo_callback`, `on_progress`]; rows are written only by this class. */
function splitMethod(method: string): [ResourceClass, ResourceEvent['name']] {
  const dot = method.lastIndexOf('.');
  return [method.slice(0, dot) as ResourceClass, method.slice(dot + 1) as ResourceEvent['name']];
}
