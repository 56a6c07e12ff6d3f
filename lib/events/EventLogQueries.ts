import type { Compilable, Kysely } from "kysely";
import { PreparedQuery } from "../store/PreparedQuery.js";
import type { StoreTables } from "../store/StoreTables.js";

/** A resource row as {@link EventLogQueries.insertResources} writes it: live, no final record yet. */
export interface NewResourceRow {
  readonly res_id: string;
  readonly account_id: string;
  readonly node_id: string;
  readonly class: string;
  readonly process_id: number;
  readonly owner_id: string;
  readonly user_data: string | null;
  readonly created_at: number;
}

/** An event row as {@link EventLogQueries.insertEvents} writes it. */
export interface NewEventRow {
  readonly account_id: string;
  readonly event_id: number;
  readonly res_id: string;
  readonly method: string;
  readonly params: string;
  readonly created_at: number;
}

const RESOURCE_COLUMNS = [
  "res_id",
  "account_id",
  "node_id",
  "class",
  "process_id",
  "owner_id",
  "user_data",
  "created_at",
] as const;
const EVENT_COLUMNS = [
  "account_id",
  "event_id",
  "res_id",
  "method",
  "params",
  "created_at",
] as const;

type Executor = Pick<Kysely<StoreTables>, "executeQuery">;

/**
 * The statements of the event log's commit (lib/events/EventLog.ts),
 * compiled once per store ({@link PreparedQuery}): they run for every
 * event-loop turn that produced an event. A multi-row INSERT is compiled
 * once per row count.
 */
export class EventLogQueries {
  readonly #insertResources = new Map<number, PreparedQuery<string>>();
  readonly #insertEvents = new Map<number, PreparedQuery<string>>();
  readonly #saveDialogs: PreparedQuery<"dialogs" | "resId">;
  readonly #saveLive: PreparedQuery<"dialogs" | "context" | "resId">;
  readonly #ensureSequence: PreparedQuery<"accountId">;
  readonly #advanceSequence: PreparedQuery<
    "accountId" | "count",
    { last_event_id: number }
  >;
  readonly #release: PreparedQuery<"releasedAt" | "cdr" | "resId">;

  constructor(private readonly db: Kysely<StoreTables>) {
    this.#saveDialogs = PreparedQuery.compile(["dialogs", "resId"], (p) =>
      db
        .updateTable("resources")
        .set({ dialogs: p.dialogs })
        .where("res_id", "=", p.resId)
        .where("live", "=", 1),
    );
    this.#saveLive = PreparedQuery.compile(
      ["dialogs", "context", "resId"],
      (p) =>
        db
          .updateTable("resources")
          .set({ dialogs: p.dialogs, context: p.context })
          .where("res_id", "=", p.resId)
          .where("live", "=", 1),
    );
    this.#ensureSequence = PreparedQuery.compile(["accountId"], (p) =>
      db
        .insertInto("event_sequences")
        .values({ account_id: p.accountId, last_event_id: 0 })
        .onConflict((oc) => oc.column("account_id").doNothing()),
    );
    this.#advanceSequence = PreparedQuery.compile(["accountId", "count"], (p) =>
      db
        .updateTable("event_sequences")
        .set((eb) => ({ last_event_id: eb("last_event_id", "+", p.count) }))
        .where("account_id", "=", p.accountId)
        .returning("last_event_id"),
    );
    this.#release = PreparedQuery.compile(["releasedAt", "cdr", "resId"], (p) =>
      db
        .updateTable("resources")
        .set({
          live: 0,
          released_at: p.releasedAt,
          cdr: p.cdr,
          dialogs: null,
          context: null,
        })
        .where("res_id", "=", p.resId),
    );
  }

  /** Inserts live resource rows (at most the caller's chunk size per call). */
  async insertResources(
    trx: Executor,
    rows: readonly NewResourceRow[],
  ): Promise<void> {
    const query = cached(
      this.#insertResources,
      rows.length,
      (names) =>
        this.db
          .insertInto("resources")
          .values(
            names.map((row) => ({
              ...row,
              live: 1,
              released_at: null,
              cdr: null,
              dialogs: null,
              context: null,
            })),
          ),
      RESOURCE_COLUMNS,
    );
    await query.executeInOrder(trx, inColumnOrder(rows, RESOURCE_COLUMNS));
  }

  async insertEvents(
    trx: Executor,
    rows: readonly NewEventRow[],
  ): Promise<void> {
    const query = cached(
      this.#insertEvents,
      rows.length,
      (names) => this.db.insertInto("events").values(names),
      EVENT_COLUMNS,
    );
    await query.executeInOrder(trx, inColumnOrder(rows, EVENT_COLUMNS));
  }

  /** Rewrites a live resource's `dialogs` (null: none confirmed). */
  async saveDialogs(
    trx: Executor,
    resId: string,
    dialogs: string | null,
  ): Promise<void> {
    await this.#saveDialogs.execute(trx, { dialogs, resId });
  }

  /** Rewrites a live resource's `dialogs` and `context` (its context as of its last on_progress, issue 9). */
  async saveLive(
    trx: Executor,
    resId: string,
    dialogs: string | null,
    context: string,
  ): Promise<void> {
    await this.#saveLive.execute(trx, { dialogs, context, resId });
  }

  /** Advances the account's sequence by `count` and returns its new last event_id (the row is created at 0 first). */
  async advanceSequence(
    trx: Executor,
    accountId: string,
    count: number,
  ): Promise<number> {
    await this.#ensureSequence.execute(trx, { accountId });
    const { rows } = await this.#advanceSequence.execute(trx, {
      accountId,
      count,
    });
    const row = rows[0];
    if (!row)
      throw new Error(
        `event_sequences row of ${accountId} missing after insert`,
      );
    return Number(row.last_event_id);
  }

  /** Closes a resource's row with its final record. */
  async release(
    trx: Executor,
    resId: string,
    releasedAt: number,
    cdr: string,
  ): Promise<void> {
    await this.#release.execute(trx, { releasedAt, cdr, resId });
  }
}

/**
 * The prepared multi-row INSERT for `n` rows: placeholder `<column><row>`
 * for each value. `build` gets, per row, an object of placeholders by column.
 */
function cached<C extends string>(
  cache: Map<number, PreparedQuery<string>>,
  n: number,
  build: (rows: Array<Record<C, never>>) => Compilable<unknown>,
  columns: readonly C[],
): PreparedQuery<string> {
  let query = cache.get(n);
  if (!query) {
    const names = Array.from({ length: n }, (_, i) =>
      columns.map((c) => `${c}${i}`),
    ).flat();
    query = PreparedQuery.compile(names, (p) =>
      build(
        Array.from(
          { length: n },
          (_, i) =>
            Object.fromEntries(
              columns.map((c) => [c, p[`${c}${i}`]!]),
            ) as Record<C, never>,
        ),
      ),
    );
    cache.set(n, query);
  }
  return query;
}

/** The rows' values row by row, each in `columns` order: the order of the placeholder names {@link cached} compiled. */
function inColumnOrder<C extends string>(
  rows: ReadonlyArray<Readonly<Record<C, unknown>>>,
  columns: readonly C[],
): unknown[] {
  const values: unknown[] = [];
  for (const row of rows) for (const c of columns) values.push(row[c]);
  return values;
}
