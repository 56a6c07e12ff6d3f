import type { WebSocket, RawData } from 'ws';
import { nanoid } from 'nanoid';
import type { RpcApi } from '../api/RpcApi.js';
import { RpcErrorCode } from '../api/RpcErrorCode.js';
import type { ListenConfig } from '../config/ServerConfig.js';
import type { EventSink } from '../events/EventSink.js';
import type { Logger } from '../util/logger.js';

/**
 * One application server's WebSocket connection: JSON-RPC in, replies and
 * events out. Outgoing data is bounded: once more than
 * `limits.maxBufferedBytes` wait in the socket's send queue (a client that
 * stopped reading), the connection is terminated instead of buffering more.
 */
export class ClientSession implements EventSink {
  readonly id = nanoid(12);
  readonly #log: Logger;
  #alive = true;

  constructor(
    private readonly socket: WebSocket,
    private readonly api: RpcApi,
    private readonly limits: Pick<ListenConfig, 'maxFrameBytes' | 'maxBufferedBytes'>,
    log: Logger,
  ) {
    this.#log = log.child({ session: this.id });
    socket.on('message', (data, isBinary) => void this.#onMessage(data, isBinary));
    socket.on('pong', () => (this.#alive = true));
    socket.on('error', (err) => this.#log.warn({ err }, 'socket error'));
  }

  deliver(method: string, params: object): void {
    this.#send({ jsonrpc: '2.0', method, params });
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
    const bytes = Array.isArray(data) ? data.reduce((n, b) => n + b.length, 0) : data.byteLength;
    if (isBinary) return this.#refuse('binary frames are not accepted: send JSON-RPC as text');
    if (bytes > this.limits.maxFrameBytes) return this.#refuse(`frame of ${bytes} bytes exceeds the limit of ${this.limits.maxFrameBytes}`);
    const text = Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.from(data as ArrayBuffer).toString('utf8');
    try {
      const reply = await this.api.handleText(text, { sessionId: this.id });
      if (reply !== null) this.#sendText(reply);
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
