import { WebSocketServer } from 'ws';
import type { AddressInfo } from 'node:net';
import type { RpcApi } from '../api/RpcApi.js';
import type { ListenConfig } from '../config/ServerConfig.js';
import type { EventHub } from '../events/EventHub.js';
import type { Logger } from '../util/logger.js';
import { ClientSession } from './ClientSession.js';

const HEARTBEAT_MS = 30_000;
/** Frames up to this many times the limit are read and answered with -32600; beyond, ws closes with 1009. */
const OVERSIZE_ANSWERED = 16;

/** The WebSocket listener: one ClientSession per connection, registered as an event sink. */
export class WsServer {
  #wss: WebSocketServer | undefined;
  readonly #sessions = new Set<ClientSession>();
  #heartbeat: NodeJS.Timeout | undefined;

  constructor(
    private readonly config: ListenConfig,
    private readonly api: RpcApi,
    private readonly hub: EventHub,
    private readonly log: Logger,
  ) {}

  get sessionCount(): number {
    return this.#sessions.size;
  }

  async listen(): Promise<AddressInfo> {
    const wss = new WebSocketServer({
      host: this.config.host,
      port: this.config.port,
      maxPayload: this.config.maxFrameBytes * OVERSIZE_ANSWERED,
    });
    this.#wss = wss;
    wss.on('connection', (socket, request) => {
      const session = new ClientSession(socket, this.api, this.config, this.log);
      this.#sessions.add(session);
      this.hub.addSink(session);
      this.log.info({ session: session.id, peer: request.socket.remoteAddress }, 'client connected');
      socket.on('close', (code) => {
        this.#sessions.delete(session);
        this.hub.removeSink(session.id);
        this.log.info({ session: session.id, code }, 'client disconnected');
      });
    });
    await new Promise<void>((resolve, reject) => {
      wss.once('listening', resolve);
      wss.once('error', reject);
    });
    this.#heartbeat = setInterval(() => this.#sessions.forEach((s) => s.heartbeat()), HEARTBEAT_MS);
    this.#heartbeat.unref();
    return wss.address() as AddressInfo;
  }

  /** Closes every connection (1001 going away) and the listener. */
  async close(): Promise<void> {
    clearInterval(this.#heartbeat);
    for (const s of this.#sessions) s.close(1001, 'server shutting down');
    await new Promise<void>((resolve) => (this.#wss ? this.#wss.close(() => resolve()) : resolve()));
  }
}
