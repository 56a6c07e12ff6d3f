import type { Compilable, CompiledQuery, Kysely, QueryResult } from "kysely";

/**
 * What a query's builder gets in place of its values: each name stands for
 * one bound parameter. Typed `never` so it fits any column's type; at run
 * time it is a marker string the compiled parameters are searched for.
 */
export type Placeholders<K extends string> = { readonly [P in K]: never };

const MARK = "\u0000cti-placeholder:";

/**
 * A query Kysely builds and compiles once (for the store's dialect), then
 * runs many times with new values. Kysely has no prepared queries: on the
 * event log's commit path, building and compiling each statement again
 * allocated about 30 % of all the server's memory and cost about 10 % of its
 * CPU at 200 duo_callbacks/s (docs/performance.md). Only the parameters
 * change between runs, so the SQL text is the same and SQLite's prepared
 * statement is reused too ({@link StatementCache}).
 */
export class PreparedQuery<K extends string, R = unknown> {
  private constructor(
    private readonly compiled: CompiledQuery<R>,
    private readonly names: readonly K[],
    /** Per bound parameter: the index in `names` of the value that goes there, or -1 for a constant the builder wrote. */
    private readonly slots: readonly number[],
  ) {}

  /**
   * Builds and compiles `build(placeholders)` (a builder of the store's Kysely, so its dialect).
   * @throws Error when a name is not bound exactly once (a programming error, seen on first use).
   */
  static compile<K extends string, R>(
    names: readonly K[],
    build: (p: Placeholders<K>) => Compilable<R>,
  ): PreparedQuery<K, R> {
    const placeholders = Object.fromEntries(
      names.map((n) => [n, `${MARK}${n}`]),
    ) as unknown as Placeholders<K>;
    const compiled = build(placeholders).compile();
    const index = new Map(names.map((n, i) => [`${MARK}${n}`, i]));
    const slots = compiled.parameters.map((value) =>
      typeof value === "string" ? (index.get(value) ?? -1) : -1,
    );
    const uses = new Array<number>(names.length).fill(0);
    for (const slot of slots) if (slot >= 0) uses[slot]!++;
    uses.forEach((n, i) => {
      if (n !== 1)
        throw new Error(
          `prepared query: placeholder ${names[i]} is bound ${n} times in ${compiled.sql}`,
        );
    });
    return new PreparedQuery(compiled, names, slots);
  }

  /** Runs on `db` (the store's Kysely or an open transaction) with `values` in place of the placeholders. */
  execute(
    db: Pick<Kysely<never>, "executeQuery">,
    values: Readonly<Record<K, unknown>>,
  ): Promise<QueryResult<R>> {
    return this.executeInOrder(
      db,
      this.names.map((n) => values[n]),
    );
  }

  /** The same with the values as a list, in the order the names were given to {@link compile} (multi-row INSERTs: no keyed object per run). */
  executeInOrder(
    db: Pick<Kysely<never>, "executeQuery">,
    values: readonly unknown[],
  ): Promise<QueryResult<R>> {
    const parameters = this.slots.map((slot, i) =>
      slot < 0 ? this.compiled.parameters[i] : values[slot],
    );
    return db.executeQuery<R>({ ...this.compiled, parameters });
  }
}
