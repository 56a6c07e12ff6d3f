import type { Cdr, ResourceClass, ResourceContext } from '../api/generated/types.js';
import type { StoredFinalRecord } from '../events/EventLog.js';
import { parseStoredClass, parseStoredContext } from './storedContext.js';
import { pruneOlderThan } from '../store/pruneOlderThan.js';
import type { Store } from '../store/Store.js';
import type { ResourcesTable } from '../store/StoreTables.js';

/** One page of {@link CdrStore.list}. */
export interface CdrPage {
  readonly cdrs: Cdr[];
  /** `<released_at ms>:<res_id>` of the last CDR when more may follow; null on the last page. */
  readonly next_cursor: string | null;
}

export interface CdrQuery {
  /** Released at or after, Unix milliseconds. */
  readonly sinceMs?: number;
  /** Released before, Unix milliseconds. */
  readonly untilMs?: number;
  /** `next_cursor` of the previous page (grammar checked by the API schema and again here). */
  readonly cursor?: string;
  readonly limit: number;
}

/** A resource this node left live: what a restart needs to release it. */
export interface LeftLive {
  readonly resId: string;
  readonly accountId: string;
  /** From the row's `class`, else its own stored context's; null when neither is a class of the contract (an edited row). */
  readonly resourceClass: ResourceClass | null;
  readonly ownerId: string;
  readonly userData: string | null;
  /** Unix milliseconds. */
  readonly createdAt: number;
  /** The engine's states of the dialogs it left confirmed (TelephonyEngine `dialog` event). */
  readonly dialogs: string[];
  /** The context as of its last committed on_progress; null when none was committed. */
  readonly context: ResourceContext | null;
}

const CURSOR = /^([0-9]{1,16}):([A-Za-z0-9._-]{1,128})$/;

/**
 * The final records (CDRs) of released resources, read from the `resources`
 * table the {@link import('../events/EventLog.js').EventLog} writes (issue 9).
 * Every read is scoped to one account: another account's res_id is simply
 * not there.
 */
export class CdrStore {
  constructor(private readonly store: Store) {}

  /** The CDR of a released resource of the account, or undefined (unknown, live, other account, pruned). */
  async get(resId: string, accountId: string): Promise<Cdr | undefined> {
    const row = await this.store.db
      .selectFrom('resources')
      .selectAll()
      .where('res_id', '=', resId)
      .where('account_id', '=', accountId)
      .where('live', '=', 0)
      .executeTakeFirst();
    return row ? toCdr(row) : undefined;
  }

  /** The account's CDRs, newest release first (ties by res_id), one page. */
  async list(accountId: string, query: CdrQuery): Promise<CdrPage> {
    let q = this.store.db
      .selectFrom('resources')
      .selectAll()
      .where('account_id', '=', accountId)
      .where('live', '=', 0);
    if (query.sinceMs !== undefined) q = q.where('released_at', '>=', query.sinceMs);
    if (query.untilMs !== undefined) q = q.where('released_at', '<', query.untilMs);
    const cursor = query.cursor === undefined ? null : CURSOR.exec(query.cursor);
    if (cursor) {
      const at = Number(cursor[1]);
      const resId = cursor[2]!;
      q = q.where((eb) => eb.or([eb('released_at', '<', at), eb.and([eb('released_at', '=', at), eb('res_id', '<', resId)])]));
    }
    const rows = await q
      .orderBy('released_at', 'desc')
      .orderBy('res_id', 'desc')
      .limit(query.limit + 1)
      .execute();
    const page = rows.slice(0, query.limit);
    const last = page[page.length - 1];
    return {
      cdrs: page.map(toCdr),
      next_cursor: rows.length > query.limit && last ? `${Number(last.released_at)}:${last.res_id}` : null,
    };
  }

  /** Deletes CDRs of resources released before `beforeMs` (Unix milliseconds), a chunk at a time ({@link pruneOlderThan}); resolves to how many. */
  prune(beforeMs: number): Promise<number> {
    return pruneOlderThan(this.store.db, { table: 'resources', time: 'released_at', flag: { column: 'live', equals: 0 } }, beforeMs);
  }

  /** Resources of this node still marked live: after a crash, the ones it never released. */
  async leftLive(nodeId: string): Promise<LeftLive[]> {
    const rows = await this.store.db
      .selectFrom('resources')
      .selectAll()
      .where('node_id', '=', nodeId)
      .where('live', '=', 1)
      .orderBy('created_at')
      .execute();
    return rows.map((r) => {
      const context = parseStoredContext(r.context);
      return {
        resId: r.res_id,
        accountId: r.account_id,
        resourceClass: parseStoredClass(r.class) ?? (context?.res_id === r.res_id ? context.class : null),
        ownerId: r.owner_id,
        userData: r.user_data,
        createdAt: Number(r.created_at),
        dialogs: parseDialogs(r.dialogs),
        context,
      };
    });
  }

  /** The highest process id ever stored (0 when none): ids continue above it after a restart. */
  async maxProcessId(): Promise<number> {
    const row = await this.store.db
      .selectFrom('resources')
      .select((eb) => eb.fn.max('process_id').as('max'))
      .executeTakeFirst();
    return Number(row?.max ?? 0);
  }
}

/** The `dialogs` column: a JSON array of the engine's state texts, written only by EventLog. */
function parseDialogs(column: string | null): string[] {
  try {
    const states: unknown = JSON.parse(column ?? '[]');
    return Array.isArray(states) ? states.filter((s): s is string => typeof s === 'string') : [];
  } catch {
    return [];
  }
}

function toCdr(row: ResourcesTable): Cdr {
  const record = JSON.parse(row.cdr ?? 'null') as StoredFinalRecord;
  return {
    res_id: row.res_id,
    class: row.class as ResourceClass,
    process_id: Number(row.process_id),
    user_data: row.user_data,
    event_id: record.event_id,
    // Written by EventLog from the on_released params it sent, which the schema describes.
    released: record.released as unknown as Cdr['released'],
    context: record.context,
  };
}
