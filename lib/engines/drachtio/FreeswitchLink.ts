/**
 * One configured FreeSWITCH server: keeps a drachtio-fsmrf MediaServer
 * connected, reconnecting with capped backoff, counts the endpoints this
 * engine holds there (the load used to pick a server), and creates endpoints
 * at most `createConcurrency` at a time. With a node tag, each connection
 * first hangs up the channels a previous run of this node (or this run,
 * before the connection was lost) left there (StaleCall.ts), and every
 * endpoint's INVITE carries the tag.
 *
 * Why the limit (issue 11, kind 8): an endpoint is an INVITE to FreeSWITCH
 * whose channel then connects back over an outbound event socket, and
 * drachtio-fsmrf waits a fixed 4 s for that connection. When FreeSWITCH
 * falls behind, channels start late and creations fail with "Connection
 * timeout"; a burst beyond the limit waits here instead.
 */
import { connect as tcpConnect } from 'node:net';
import type { Logger } from 'pino';
import type Mrf from 'drachtio-fsmrf';
import type { FreeswitchServerConfig } from '../../config/ServerConfig.js';
import { LatencyGauge } from '../../util/LatencyGauge.js';
import { TypedEventEmitter } from '../../util/TypedEmitter.js';
import { OutboundListeners } from './OutboundListeners.js';
import { NODE_TAG_HEADER } from './StaleCall.js';
import { withTimeout } from './withTimeout.js';

export type FreeswitchLinkEvents = {
  up: () => void;
  /** The connection was lost: every endpoint on this server is gone with it. */
  down: (reason: string) => void;
};

const FIRST_RETRY_MS = 500;
const MAX_RETRY_MS = 10_000;
const CONNECT_TIMEOUT_MS = 5000;
/** Longest wait for one endpoint once its creation started (fsmrf's own 4 s for the event socket, plus the INVITE). */
const ENDPOINT_TIMEOUT_MS = 10_000;
/** FreeSWITCH's own default `sessions-per-second`, assumed when its `status` cannot be read. */
export const FREESWITCH_DEFAULT_SESSIONS_PER_SECOND = 30;
/**
 * Ports FreeSWITCH's channels connect back to, used in turn: each accepts
 * one connection per event-loop turn ({@link OutboundListeners}); 8 accept
 * 8 endpoints per turn, above any rate FreeSWITCH sets them up at.
 */
const OUTBOUND_LISTENERS = 8;

export class FreeswitchLink extends TypedEventEmitter<FreeswitchLinkEvents> {
  readonly name: string;
  /** Endpoints of ours on this server (being created or live). */
  endpoints = 0;
  /** Endpoint creations: INVITE to FreeSWITCH until its channel's event socket is connected (admission control). */
  readonly creations = new LatencyGauge(100);
  /**
   * Requests on the calls' endpoints once created: an SDP given to the
   * endpoint (re-INVITE), a bridge. Admission control: these are the steps
   * after a person answered, so FreeSWITCH answering them slowly refuses
   * new calls before answered ones fail on them.
   */
  readonly mediaRequests = new LatencyGauge(50);
  /**
   * The sessions FreeSWITCH starts per second at most (its
   * `sessions-per-second`, read from `status` at each connection; beyond it
   * FreeSWITCH answers 503): admission control's endpoint rate unless
   * configured (docs/configuration.md).
   */
  sessionsPerSecond = FREESWITCH_DEFAULT_SESSIONS_PER_SECOND;
  readonly #mrf: Mrf;
  readonly #createConcurrency: number;
  /** Creations waiting for a slot, first come first served. */
  readonly #waiting: (() => void)[] = [];
  readonly #config: FreeswitchServerConfig;
  readonly #listenAddress: string;
  readonly #log: Logger;
  readonly #nodeTag: string | undefined;
  #server: Mrf.MediaServer | undefined;
  #listeners: OutboundListeners | null = null;
  #retryMs = FIRST_RETRY_MS;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(mrf: Mrf, config: FreeswitchServerConfig, listenAddress: string, createConcurrency: number, log: Logger, nodeTag?: string) {
    super();
    this.#mrf = mrf;
    this.#createConcurrency = createConcurrency;
    this.#config = config;
    this.#listenAddress = listenAddress;
    this.name = `${config.host}:${config.port}`;
    this.#log = log.child({ freeswitch: this.name });
    this.#nodeTag = nodeTag;
  }

  /** The connected media server, if any. */
  get server(): Mrf.MediaServer | undefined {
    return this.#server;
  }

  /** The ports FreeSWITCH connects back to while connected (null: drachtio-fsmrf's one port). */
  get outboundListeners(): OutboundListeners | null {
    return this.#listeners;
  }

  /** Endpoints being created or waiting to be. */
  get pendingEndpoints(): number {
    return this.creations.inFlight + this.#waiting.length;
  }

  /**
   * Creates an endpoint (3pcc: FreeSWITCH offers its SDP) once a creation
   * slot is free. Rejects when the server is gone, FreeSWITCH refused, or
   * it took over 10 s (an endpoint that comes later is hung up).
   */
  async createEndpoint(): Promise<Mrf.Endpoint> {
    if (this.creations.inFlight >= this.#createConcurrency) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    try {
      const server = this.#server;
      if (!server) throw new Error('media server not connected');
      this.#listeners?.useNext();
      const pending = server.createEndpoint({ headers: this.#nodeTag === undefined ? {} : { [NODE_TAG_HEADER]: this.#nodeTag } });
      return await this.creations.time(withTimeout(pending, ENDPOINT_TIMEOUT_MS, 'timed out')).catch((err: unknown) => {
        pending.then((late) => late.destroy(), () => undefined).catch(() => undefined);
        throw err;
      });
    } finally {
      this.#waiting.shift()?.();
    }
  }

  start(): void {
    this.#stopped = false;
    void this.#connect();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    const server = this.#server;
    this.#server = undefined;
    this.#closeListeners();
    server?.disconnect();
  }

  #closeListeners(): void {
    this.#listeners?.close();
    this.#listeners = null;
  }

  async #connect(): Promise<void> {
    try {
      // A refused mrf.connect() leaves drachtio-modesl retrying on its own forever,
      // so only call it once the event socket accepts TCP connections.
      await probe(this.#config.host, this.#config.port);
      const pending = this.#mrf.connect({
        address: this.#config.host,
        port: this.#config.port,
        secret: this.#config.secret,
        listenAddress: this.#listenAddress,
      });
      // A handshake that completes after we gave up must not stay connected.
      const server = await withTimeout(pending, CONNECT_TIMEOUT_MS, 'FreeSWITCH event socket handshake timed out').catch(
        (err: unknown) => {
          pending.then((late) => late.disconnect(), () => undefined);
          throw err;
        },
      );
      if (this.#stopped) return server.disconnect();
      if (this.#nodeTag !== undefined) await this.#hangUpLeftovers(server, this.#nodeTag);
      await this.#readSessionsPerSecond(server);
      const listeners = await OutboundListeners.attach(server, OUTBOUND_LISTENERS, this.#log);
      if (this.#stopped) {
        listeners?.close();
        return server.disconnect();
      }
      this.#server = server;
      this.#listeners = listeners;
      this.#retryMs = FIRST_RETRY_MS;
      // A reset socket emits only 'error', an orderly close only 'end'.
      server.on('end', () => this.#lost(server, 'FreeSWITCH connection closed'));
      server.conn.on('error', (err: Error) => this.#lost(server, `FreeSWITCH connection error: ${err.message}`));
      this.#log.info('connected to FreeSWITCH');
      this.emit('up');
    } catch (err) {
      this.#log.warn({ err: (err as Error).message, retryMs: this.#retryMs }, 'cannot connect to FreeSWITCH');
      this.#retry();
    }
  }

  /**
   * Before the server is used: no endpoint of this node can be live on it
   * (legs on a lost connection were ended), so every channel tagged with the
   * node is a leftover. Cause 41 (NORMAL_TEMPORARY_FAILURE) as on the
   * restart BYEs. A failure is logged, not fatal: the calls' own timers remain.
   */
  async #hangUpLeftovers(server: Mrf.MediaServer, tag: string): Promise<void> {
    const command = `hupall NORMAL_TEMPORARY_FAILURE sip_h_${NODE_TAG_HEADER} ${tag}`;
    try {
      const reply = await withTimeout(server.api(command), CONNECT_TIMEOUT_MS, 'no reply');
      this.#log.info({ command, reply: reply.trim() }, 'hung up the channels this node left on FreeSWITCH');
    } catch (err) {
      this.#log.warn({ command, err: (err as Error).message }, 'cannot hang up the channels this node left on FreeSWITCH');
    }
  }

  async #readSessionsPerSecond(server: Mrf.MediaServer): Promise<void> {
    try {
      const reply = await withTimeout(server.api('status'), CONNECT_TIMEOUT_MS, 'no reply');
      const sps = parseSessionsPerSecond(reply);
      if (sps === undefined) throw new Error(`unexpected reply: ${reply.slice(0, 200)}`);
      this.sessionsPerSecond = sps;
      this.#log.info({ sessionsPerSecond: sps }, 'FreeSWITCH sessions-per-second');
    } catch (err) {
      this.sessionsPerSecond = FREESWITCH_DEFAULT_SESSIONS_PER_SECOND;
      this.#log.warn({ err: (err as Error).message, assumed: this.sessionsPerSecond }, 'cannot read FreeSWITCH sessions-per-second');
    }
  }

  #lost(server: Mrf.MediaServer, reason: string): void {
    if (this.#server !== server) return;
    this.#server = undefined;
    this.#closeListeners();
    // Stops drachtio-modesl's own (unbounded) reconnect; we start afresh instead.
    server.disconnect();
    this.#log.error({ reason }, 'lost FreeSWITCH');
    this.emit('down', reason);
    this.#retry();
  }

  #retry(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => void this.#connect(), this.#retryMs);
    this.#retryMs = Math.min(this.#retryMs * 2, MAX_RETRY_MS);
  }
}

/** The `N` of `... session(s) per Sec out of max N, ...` in FreeSWITCH's `status` reply (1.10). */
export function parseSessionsPerSecond(status: string): number | undefined {
  const match = /per Sec out of max (\d{1,9})\b/.exec(status);
  const sps = match ? Number(match[1]) : NaN;
  return sps > 0 ? sps : undefined;
}

function probe(host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect({ host, port, timeout: CONNECT_TIMEOUT_MS });
    socket.once('connect', () => {
      socket.destroy();
      resolve();
    });
    socket.once('timeout', () => {
      socket.destroy();
      reject(new Error('connect timed out'));
    });
    socket.once('error', reject);
  });
}

