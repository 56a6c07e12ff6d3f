/** A minimal JSON-RPC 2.0 client over one WebSocket: many calls in flight, notifications to one handler. */
import WebSocket from 'ws';

export type NotificationHandler = (method: string, params: Record<string, unknown>) => void;

interface Pending {
  readonly resolve: (result: unknown) => void;
  readonly reject: (err: Error) => void;
}

export class RpcClient {
  readonly #ws: WebSocket;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  onNotification: NotificationHandler = () => {};

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.on('message', (data) => this.#onMessage(data.toString()));
    ws.on('close', () => {
      for (const p of this.#pending.values()) p.reject(new Error('connection closed'));
      this.#pending.clear();
    });
  }

  static connect(url: string): Promise<RpcClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      ws.once('open', () => resolve(new RpcClient(ws)));
      ws.once('error', reject);
    });
  }

  call(method: string, params: Record<string, unknown>): Promise<unknown> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#ws.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
    });
  }

  close(): void {
    this.#ws.close();
  }

  #onMessage(text: string): void {
    const m = JSON.parse(text) as { id?: number; method?: string; params?: Record<string, unknown>; result?: unknown; error?: { code: number; message: string; data?: unknown } };
    if (m.method !== undefined) return this.onNotification(m.method, m.params ?? {});
    const p = m.id === undefined ? undefined : this.#pending.get(m.id);
    if (!p || m.id === undefined) return;
    this.#pending.delete(m.id);
    // The code and data stay on the error: the bench tells refusals (-32006) from failures.
    if (m.error) p.reject(Object.assign(new Error(m.error.message), { code: m.error.code, data: m.error.data }));
    else p.resolve(m.result);
  }
}
