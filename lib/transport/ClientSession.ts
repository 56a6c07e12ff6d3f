import type { WebSocket, RawData } from 'ws';
import { nanoid } from 'nanoid';
import type { Account } from '../accounts/Account.js';
import type { RpcApi, RpcCaller } from '../api/RpcApi.js';
import { RpcErrorCode } from '../api/RpcErrorCode.js';
import type { ListenConfig } from '../config/ServerConfig.js';
import type { EventSink } from '../events/EventSink.js';
import { frameAnsweredChannel, monotonicMs, type FrameAnsweredMessage } from '../util/diagnostics.js';
import type { Logger } from '../util/logger.js';

export interface ClientSessionOptions {
  /** The client's address. */
  readonly peer: string;
  /** Closed (1008) when not authenticated within this many milliseconds. */
  readonly authTimeoutMs: number;
  /** Called once the connection has an account: from then on it receives that account's events. */
  readonly onAuthenticated: (session: ClientSession) => void;
}

/**
 * One application server's WebSocket connection: JSON-RPC in, replies and
 * events out. It starts unauthenticated unless the upgrade carried a valid
 * key, and is bound to one account for its lifetime once authenticated.
 * Outgoing data is bounded: once more than `limits.maxBufferedBytes` wait in
 * the socket's send queue (a client that stopped reading), the connection is
 * terminated instead of buffering more.
 */
export class ClientSession implements EventSink, RpcCaller {
  readonly id = nanoid(12);
  readonly peer: string;
  readonly #log: Logger;
  readonly #onAuthenticated: (session: ClientSession) => void;
  #account: Account | null = null;
  #authTimer: NodeJS.Timeout | undefined;
  #alive = true;

  constructor(
    private readonly socket: WebSocket,
    private readonly api: RpcApi,
    private readonly limits: Pick<ListenConfig, 'maxFrameBytes' | 'maxBufferedBytes'>,
    log: Logger,
    options: ClientSessionOptions,
  ) {
    this.peer = options.peer;
    this.#onAuthenticated = options.onAuthenticated;
    this.#log = log.child({ session: this.id });
    this.#authTimer = setTimeout(() => {
      this.#log.info('not authenticated in time: closing');
      this.socket.close(1008, 'not authenticated in time');
    }, options.authTimeoutMs);
    socket.on('message', (data, isBinary) => void this.#onMessage(data, isBinary));
    socket.on('pong', () => (this.#alive = true));
    socket.on('error', (err) => this.#log.warn({ err }, 'socket error'));
    socket.on('close', () => clearTimeout(this.#authTimer));
  }

  get sessionId(): string {
    return this.id;
  }

  /** null until authenticated. */
  get accountId(): string | null {
    return this.#account?.accountId ?? null;
  }

  authenticated(account: Account): void {
    if (this.#account) return;
    this.#account = account;
    clearTimeout(this.#authTimer);
    this.#log.info({ account: account.accountId }, 'authenticated');
    this.#onAuthenticated(this);
  }

  deliver(method: string, params: object): void {
    this.#send({ jsonrpc: '2.0', method, params });
  }

  abandon(reason: string): void {
    this.#log.warn({ reason }, 'events cannot be delivered in order: closing (the client reconnects and replays)');
    this.socket.close(1011, 'events fell behind: reconnect and replay');
  }

  /** Pings, and terminates a connection that did not answer the previous ping. */
  heartbeat(): void {
    if (!this.#alive) {
      this.#log.warn('no pong since the last ping: closing');
      this.socket.terminate();
      return;
    }
    this.#alive = false;
    this.socket.ping();
  }

  close(code: number, reason: string): void {
    this.socket.close(code, reason);
  }

  async #onMessage(data: RawData, isBinary: boolean): Promise<void> {
    const receivedAt = frameAnsweredChannel.hasSubscribers ? monotonicMs() : 0;
    const bytes = Array.isArray(data) ? data.reduce((n, b) => n + b.length, 0) : data.byteLength;
    if (isBinary) return this.#refuse('binary frames are not accepted: send JSON-RPC as text');
    if (bytes > this.limits.maxFrameBytes) return this.#refuse(`frame of ${bytes} bytes exceeds the limit of ${this.limits.maxFrameBytes}`);
    const text = Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.from(data as ArrayBuffer).toString('utf8');
    try {
      const reply = await this.api.handleText(text, this);
      if (reply !== null) this.#sendText(reply);
      if (reply !== null && receivedAt) {
        const message: FrameAnsweredMessage = { receivedAt, answeredAt: monotonicMs() };
        frameAnsweredChannel.publish(message);
      }
    } catch (err) {
      this.#log.error({ err }, 'request handling failed');
      this.#send({ jsonrpc: '2.0', id: null, error: { code: RpcErrorCode.InternalError, message: 'Internal error' } });
    }
  }

  #refuse(reason: string): void {
    this.#log.info({ reason }, 'frame refused');
    this.#send({ jsonrpc: '2.0', id: null, error: { code: RpcErrorCode.InvalidRequest, message: 'Invalid Request', data: { reason } } });
  }

  #send(message: object): void {
    this.#sendText(JSON.stringify(message));
  }

  #sendText(text: string): void {
    if (this.socket.readyState !== this.socket.OPEN) return;
    this.socket.send(text);
    if (this.socket.bufferedAmount > this.limits.maxBufferedBytes) {
      this.#log.warn({ buffered: this.socket.bufferedAmount, limit: this.limits.maxBufferedBytes }, 'client does not read: disconnecting');
      // terminate, not close: a close handshake would wait behind the unread queue.
      this.socket.terminate();
    }
  }
}
