/** A WebSocket JSON-RPC client for tests: calls, raw frames, and a log of server notifications. */
import WebSocket from 'ws';

export interface RpcMessage {
  jsonrpc: '2.0';
  id?: number | string | null;
  method?: string;
  params?: Record<string, unknown>;
  result?: unknown;
  error?: { code: number; message: string; data?: Record<string, unknown> & { errors?: Array<{ param: string; message: string }> } };
}

/** The server answered the upgrade with an HTTP status instead of switching protocols. */
export class UpgradeRefused extends Error {
  constructor(
    readonly status: number,
    readonly headers: Record<string, string | string[] | undefined>,
  ) {
    super(`upgrade refused with HTTP ${status}`);
  }
}

export class RpcTestClient {
  readonly notifications: RpcMessage[] = [];
  readonly #replies: Array<RpcMessage | RpcMessage[]> = [];
  readonly #waiters: Array<() => void> = [];
  #nextId = 1;

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data) => {
      const message = JSON.parse(data.toString()) as RpcMessage | RpcMessage[];
      if (!Array.isArray(message) && message.method && message.id === undefined) this.notifications.push(message);
      else this.#replies.push(message);
      for (const wake of this.#waiters.splice(0)) wake();
    });
  }

  /**
   * Opens a connection, presenting `apiKey` as `Authorization: Bearer` at the
   * upgrade; null: none (the connection must call sys.authenticate).
   */
  static async connect(url: string, apiKey: string | null, headers: Record<string, string> = {}): Promise<RpcTestClient> {
    const socket = new WebSocket(url, { headers: { ...headers, ...(apiKey === null ? {} : { authorization: `Bearer ${apiKey}` }) } });
    await new Promise((resolve, reject) => {
      socket.once('open', resolve);
      socket.once('error', reject);
      socket.once('unexpected-response', (_req, res) => reject(new UpgradeRefused(res.statusCode ?? 0, res.headers)));
    });
    return new RpcTestClient(socket);
  }

  /** A request; resolves with the whole response (result or error). */
  async call(method: string, params?: unknown): Promise<RpcMessage> {
    const id = this.#nextId++;
    this.socket.send(JSON.stringify({ jsonrpc: '2.0', id, method, ...(params === undefined ? {} : { params }) }));
    return (await this.until(() => this.#take((r) => !Array.isArray(r) && r.id === id))) as RpcMessage;
  }

  /** Sends a raw frame; resolves with the next reply that is not a notification. */
  async raw(frame: string | Buffer, binary = false): Promise<RpcMessage | RpcMessage[]> {
    this.socket.send(frame, { binary });
    return this.until(() => this.#take(() => true));
  }

  /** Sends a frame that must get no reply. */
  send(frame: string): void {
    this.socket.send(frame);
  }

  /** Replies not yet taken. */
  get unclaimedReplies(): number {
    return this.#replies.length;
  }

  events(method: string, resId?: string): RpcMessage[] {
    return this.notifications.filter((n) => n.method === method && (resId === undefined || n.params?.res_id === resId));
  }

  async waitForEvent(method: string, resId?: string, count = 1, ms = 5000): Promise<RpcMessage[]> {
    return this.until(() => (this.events(method, resId).length >= count ? this.events(method, resId) : undefined), ms);
  }

  async until<T>(probe: () => T | undefined, ms = 5000): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const value = probe();
      if (value !== undefined) return value;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timed out waiting for the server');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  async close(): Promise<void> {
    if (this.socket.readyState === WebSocket.CLOSED) return;
    await new Promise((resolve) => {
      this.socket.once('close', resolve);
      this.socket.close();
    });
  }

  #take(match: (r: RpcMessage | RpcMessage[]) => boolean): RpcMessage | RpcMessage[] | undefined {
    const i = this.#replies.findIndex(match);
    return i < 0 ? undefined : this.#replies.splice(i, 1)[0];
  }
}
