import { WebSocketServer } from 'ws';
import { createServer, STATUS_CODES, type IncomingMessage, type OutgoingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
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
/** Node's default request timeout; only raised, never lowered below headersTimeout (Node requires headers ≤ request). */
const REQUEST_TIMEOUT_MS = 300_000;

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
 *
 * Connections cost file descriptors before anyone is authenticated, so a
 * stranger could otherwise hold all of them (the process's limit is often
 * 1,024) and lock out every application and the SIP side with it. Bounded:
 * TCP connections per remote address (`listen.maxConnectionsPerSource`,
 * checked at accept), connections without an account over all addresses
 * (`listen.maxUnauthenticatedConnections`, checked at the upgrade; a Bearer
 * upgrade does not need a slot), and a connection that sends no complete
 * upgrade request within `auth.timeoutSeconds` is closed.
 */
export class WsServer {
  #http: Server | undefined;
  #wss: WebSocketServer | undefined;
  readonly #sessions = new Set<ClientSession>();
  /** The account each admitted upgrade request authenticated as, until its connection opens. */
  readonly #admitted = new WeakMap<IncomingMessage, Account>();
  readonly #origins: ReadonlySet<string>;
  /** TCP sockets admitted without an account (upgrading or open), until they authenticate or close. */
  readonly #unauthenticated = new Set<Socket>();
  /** Open TCP connections per remote address. */
  readonly #perSource = new Map<string, number>();
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
    const timeoutMs = this.auth.timeoutSeconds * 1000;
    const http = createServer(
      { headersTimeout: timeoutMs, requestTimeout: Math.max(REQUEST_TIMEOUT_MS, timeoutMs), connectionsCheckingInterval: Math.min(1000, timeoutMs) },
      (_req, res) => {
        // What ws answers a plain HTTP request when it owns the server.
        res.writeHead(426, { 'Content-Type': 'text/plain' });
        res.end(STATUS_CODES[426]);
      },
    );
    http.on('connection', (socket: Socket) => this.#accept(socket));
    this.#http = http;
    const wss = new WebSocketServer({
      server: http,
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
        onAuthenticated: (s) => {
          this.#unauthenticated.delete(request.socket);
          this.hub.addSink(s);
        },
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
      http.once('error', reject);
      http.listen(this.config.port, this.config.host, () => {
        http.off('error', reject);
        resolve();
      });
    });
    this.#heartbeat = setInterval(() => this.#sessions.forEach((s) => s.heartbeat()), HEARTBEAT_MS);
    this.#heartbeat.unref();
    return http.address() as AddressInfo;
  }

  /** Counts a new TCP connection against its address; one over `maxConnectionsPerSource` is closed at once. */
  #accept(socket: Socket): void {
    const source = socket.remoteAddress ?? 'unknown';
    const open = (this.#perSource.get(source) ?? 0) + 1;
    if (open > this.config.maxConnectionsPerSource) {
      this.log.warn({ peer: source, limit: this.config.maxConnectionsPerSource }, 'too many connections from one address: closing the new one');
      socket.destroy();
      return;
    }
    this.#perSource.set(source, open);
    // Node's headersTimeout only starts at the first byte; ws clears this timeout once the upgrade completes.
    socket.setTimeout(this.auth.timeoutSeconds * 1000, () => socket.destroy());
    socket.once('close', () => {
      const left = this.#perSource.get(source)! - 1;
      if (left > 0) this.#perSource.set(source, left);
      else this.#perSource.delete(source);
    });
  }

  /** A slot for a connection that will authenticate later (sys.authenticate), or 503 when all are held. */
  #admitUnauthenticated(socket: Socket): Admission {
    if (this.#unauthenticated.size >= this.config.maxUnauthenticatedConnections) {
      return {
        ok: false,
        status: 503,
        headers: { 'Retry-After': String(this.auth.timeoutSeconds) },
        reason: `${this.config.maxUnauthenticatedConnections} unauthenticated connections already open (listen.maxUnauthenticatedConnections)`,
      };
    }
    this.#unauthenticated.add(socket);
    socket.once('close', () => this.#unauthenticated.delete(socket));
    return { ok: true };
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
    if (key === undefined) return this.auth.openAccount ? { ok: true } : this.#admitUnauthenticated(req.socket as Socket);
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
    const http = this.#http;
    if (http?.listening) {
      const closed = new Promise<void>((resolve) => http.close(() => resolve()));
      // Connections still in HTTP (no upgrade yet) would otherwise keep close() waiting for their timeout.
      http.closeAllConnections();
      await closed;
    }
  }
}
