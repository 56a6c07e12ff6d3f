/**
 * Places duo_callbacks over one RPC connection and records, per call, when it
 * was sent, answered, connected and released, and when each event arrived
 * (by event_id). Times are host-wide monotonic milliseconds (the server
 * probe's clock, so the two can be compared).
 */
import { monotonicMs } from '../lib/util/diagnostics.js';
import type { RpcClient } from './RpcClient.js';

export interface CallRecord {
  readonly sentAt: number;
  /** When the construct's reply arrived. */
  repliedAt?: number;
  resId?: string;
  /** When party 1 answered (on_progress `answered`, party 1). */
  party1AnsweredAt?: number;
  connectedAt?: number;
  releasedAt?: number;
  /** on_released's error (null for a normal end), or the construct's RPC error. */
  error?: unknown;
}

export interface ConstructParams {
  readonly to1_uri: string;
  readonly to2_uri: string;
  readonly max_answer_seconds: number;
}

export class DuoCallbackDriver {
  readonly calls: CallRecord[] = [];
  readonly #byResId = new Map<string, CallRecord>();
  /** Events that beat their construct's reply. */
  readonly #early = new Map<string, { party1AnsweredAt?: number; connectedAt?: number; releasedAt?: number; error?: unknown }>();
  readonly #client: RpcClient;
  /** [event_id, arrival] of every event notification, in arrival order. */
  readonly eventArrivals: Array<[number, number]> = [];

  constructor(client: RpcClient) {
    this.#client = client;
    client.onNotification = (method, params) => this.#onEvent(method, params);
  }

  construct(params: ConstructParams): void {
    const record: CallRecord = { sentAt: monotonicMs() };
    this.calls.push(record);
    this.#client.call('ext.duo_callback.construct', { ...params }).then(
      (result) => {
        record.repliedAt = monotonicMs();
        const resId = (result as { res_id: string }).res_id;
        record.resId = resId;
        this.#byResId.set(resId, record);
        const early = this.#early.get(resId);
        if (early) Object.assign(record, early);
        this.#early.delete(resId);
      },
      (err: unknown) => {
        record.releasedAt = monotonicMs();
        const rpc = err as { code?: unknown; data?: unknown };
        record.error = { code: 'rpc', rpcCode: rpc.code, data: rpc.data, message: String(err) };
      },
    );
  }

  get connected(): number {
    return this.calls.filter((c) => c.connectedAt !== undefined).length;
  }

  get released(): number {
    return this.calls.filter((c) => c.releasedAt !== undefined).length;
  }

  /** Released with an error, or refused. */
  get failed(): CallRecord[] {
    return this.calls.filter((c) => c.releasedAt !== undefined && c.error !== null && c.error !== undefined);
  }

  async waitFor(done: () => boolean, timeoutMs: number): Promise<boolean> {
    const until = performance.now() + timeoutMs;
    while (!done()) {
      if (performance.now() > until) return false;
      await new Promise((r) => setTimeout(r, 20));
    }
    return true;
  }

  #onEvent(method: string, params: Record<string, unknown>): void {
    const now = monotonicMs();
    this.eventArrivals.push([params['event_id'] as number, now]);
    const resId = params['res_id'] as string;
    const progress = method === 'ext.duo_callback.on_progress' ? params['progress'] : undefined;
    const update =
      progress === 'connected'
        ? { connectedAt: now }
        : progress === 'answered' && params['party'] === 1
          ? { party1AnsweredAt: now }
          : method === 'ext.duo_callback.on_released'
          ? { releasedAt: now, error: params['error'] ?? null }
          : undefined;
    if (!update) return;
    const record = this.#byResId.get(resId);
    if (record) Object.assign(record, update);
    else this.#early.set(resId, { ...this.#early.get(resId), ...update });
  }
}

/** Calls `fn(i)` for i < count at `rate` per second, on schedule (late calls catch up, they do not drift). */
export async function paced(rate: number, count: number, fn: (i: number) => void): Promise<void> {
  const start = performance.now();
  let i = 0;
  while (i < count) {
    const due = start + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    while (i < count && start + (i * 1000) / rate <= performance.now()) fn(i++);
  }
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}
