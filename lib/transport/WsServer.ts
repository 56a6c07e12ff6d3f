import { WebSocketServer } from 'ws';
import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Account } from '../accounts/Account.js';
import type { Authenticator } from '../accounts/Authenticator.js';
import type { RpcApi } from '../api/RpcApi.js';
import type { ListenConfig } from '../config/ServerConfig.js';
import type { EventHub } from '../events/EventHub.js';
import type { Logger } from '../util/logger.js';
import { bearerToken } from './bearer.js';
import { ClientSession } from './ClientSession.js';

const HEARTBEAT_MS = 30_000;
/** Frames up to this many times the limit are read and answered with -32600; beyond, ws closes with 1009. */
const OVERSIZE_ANSWERED = 16;

/** How the listener admits connections (issue 8, docs/security.md). */
export interface WsAuth {
  readonly authenticator: Authenticator;
  /** The account of every connection that presents no key (`auth.mode: "none"`); null: keys required. */
  readonly openAccount: Account | null;
  /** An unauthenticated connection is closed after this long. */
  readonly timeoutSeconds: number;
}

/** The answer to an upgrade request: go on (authenticated or not yet), or an HTTP refusal. */
type Admission =
  | { readonly ok: true }
  | { readonly ok: false; readonly status: number; readonly headers?: OutgoingHttpHeaders; readonly reason: string };


/**
 * The WebSocket listener: checks each upgrade (Origin, Bearer key, failed
 * attempts), then runs one ClientSession per connection, registered as an
 * event sink of its account once it has one.
 */
export class WsServer {
  #wss: WebSocketServer | undefined;
  readonly #sessions = new Set<ClientSession>();
  /** The account each admitted upgrade request authenticated as, until its connection opens. */
  readonly #admitted = new WeakMap<IncomingMessage, Account>();
  readonly #origins: ReadonlySet<string>;
  #heartbeat: NodeJS.Timeout | undefined;

  constructor(
    private readonly config: ListenConfig,
    private readonly auth: WsAuth,
    private readonly api: RpcApi,
    private readonly hub: EventHub,
    private readonly log: Logger,
  ) {
    this.#origins = new Set(config.allowedOrigins.map((o) => o.toLowerCase()));
  }

  get sessionCount(): number {
    return this.#sessions.size;
  }

  async listen(): Promise<AddressInfo> {
    const wss = new WebSocketServer({
      host: this.config.host,
      port: this.config.port,
      maxPayload: this.config.maxFrameBytes * OVERSIZE_ANSWERED,
      verifyClient: (info, done) => {
        this.#admit(info.req, info.origin).then(
          (admission) => {
            if (admission.ok) return done(true);
            this.log.info({ peer: info.req.socket.remoteAddress, status: admission.status, reason: admission.reason }, 'upgrade refused');
            done(false, admission.status, undefined, admission.headers);
          },
          (err: unknown) => {
            this.log.error({ err }, 'cannot check the upgrade: account store unreachable?');
            done(false, 503);
          },
        );
      },
    });
    this.#wss = wss;
    wss.on('connection', (socket, request) => {
      const session = new ClientSession(socket, this.api, this.config, this.log, {
        peer: request.socket.remoteAddress ?? 'unknown',
        authTimeoutMs: this.auth.timeoutSeconds * 1000,
        onAuthenticated: (s) => this.hub.addSink(s),
      });
      this.#sessions.add(session);
      const account = this.#admitted.get(request) ?? this.auth.openAccount;
      if (account) session.authenticated(account);
      this.log.info({ session: session.id, peer: request.socket.remoteAddress, account: session.accountId }, 'client connected');
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

  /**
   * Browser pages (an Origin header) only from allowed origins — else any web
   * site could drive the API through a visitor's browser; then the Bearer key,
   * if one is presented. Without one the connection opens unauthenticated and
   * must call sys.authenticate.
   */
  async #admit(req: IncomingMessage, origin: string | undefined): Promise<Admission> {
    if (origin !== undefined && !this.#origins.has(origin.toLowerCase())) {
      return { ok: false, status: 403, reason: `origin ${origin.slice(0, 100)} is not in listen.allowedOrigins` };
    }
    const key = bearerToken(req.headers.authorization);
    if (key === undefined) return { ok: true };
    const outcome = key === null ? ({ kind: 'refused' } as const) : await this.auth.authenticator.authenticate(key, req.socket.remoteAddress ?? 'unknown');
    switch (outcome.kind) {
      case 'throttled':
        return {
          ok: false,
          status: 429,
          headers: { 'Retry-After': String(Math.ceil(outcome.retryAfterMs / 1000)) },
          reason: 'too many failed authentication attempts',
        };
      case 'refused':
        return { ok: false, status: 401, headers: { 'WWW-Authenticate': 'Bearer error="invalid_token"' }, reason: 'invalid API key' };
      case 'accepted':
        this.#admitted.set(req, outcome.account);
        return { ok: true };
    }
  }

  /** Closes every connection (1001 going away) and the listener. */
  async close(): Promise<void> {
    clearInterval(this.#heartbeat);
    for (const s of this.#sessions) s.close(1001, 'server shutting down');
    await new Promise<void>((resolve) => (this.#wss ? this.#wss.close(() => resolve()) : resolve()));
  }
}
