/**
 * The drachtio engine: SIP through a drachtio-server (drachtio-srf), media on
 * one or more FreeSWITCH servers (drachtio-fsmrf). Each dialled party is a
 * DrachtioLeg whose media is anchored on a FreeSWITCH endpoint; bridging joins
 * two endpoints inside FreeSWITCH. Available while drachtio-server and at
 * least one FreeSWITCH are connected; losing either ends the legs that
 * depended on it.
 */
import { resolve, relative, isAbsolute, join } from 'node:path';
import type { Logger } from 'pino';
import Srf from 'drachtio-srf';
import Mrf from 'drachtio-fsmrf';
import { TypedEventEmitter } from '../../util/TypedEmitter.js';
import type { DrachtioEngineConfig } from '../../config/ServerConfig.js';
import { DRACHTIO_ADMISSION_DEFAULTS } from '../../config/configSchema.js';
import type {
  CallLeg,
  DialRequest,
  EngineSaturation,
  MediaBridge,
  ReserveResult,
  TelephonyEngine,
  TelephonyEngineEvents,
} from '../../telephony/TelephonyEngine.js';
import { EventWindow } from '../../util/EventWindow.js';
import { DrachtioLeg, type LegContext } from './DrachtioLeg.js';
import { EndpointBridge } from './EndpointBridge.js';
import { EndpointReservation } from './EndpointReservation.js';
import { FreeswitchLink } from './FreeswitchLink.js';
import { byeStaleDialog, cancelStaleInvite, parseDialogState, uacDialogId, type DrachtioInviteState } from './StaleCall.js';
import { withTimeout } from './withTimeout.js';
import { reportDialog } from '../reportDialog.js';

/** What the engine takes from the server's settings. */
export interface DrachtioHostSettings {
  /** Where media and recordings live for the CTI server, to map them to FreeSWITCH's view. */
  readonly mediaDir: string;
  readonly recordingsDir: string;
  /**
   * The server's `nodeId`: tags this node's FreeSWITCH channels, which are
   * hung up whenever a FreeSWITCH connection comes up (StaleCall.ts).
   * Absent: no tag, no such clean-up.
   */
  readonly nodeId?: string;
}

/**
 * How long stop() waits for CANCEL/BYE answers and endpoint teardown. A leg
 * settles only once its INVITE has a final response, so this also waits for
 * a pending INVITE until its transaction times out (64·T1 = 32 s) and BYEs a
 * 2xx that arrives meanwhile (as the embedded engine does); 4 s more for the
 * BYE and the endpoint.
 */
const STOP_GRACE_MS = 32_000 + 4_000;
/** After a restart: how long endStaleDialogs waits for drachtio-server, then for each BYE's answer (and uuid_kill's reply). */
const STALE_CONNECT_WAIT_MS = 30_000;
const STALE_BYE_TIMEOUT_MS = 5000;
/** After a restart CANCEL: when a 2xx that crossed it has surely arrived (and been ACKed by drachtio-server). */
const STALE_CANCEL_CROSS_MS = 4000;
/** drachtio-srf's reconnect backoff grows without bound unless capped. */
const DRACHTIO_RETRY_MAX_MS = 5000;

/** drachtio-srf's connect options beyond its typings. */
interface SrfConnectOptions {
  host: string;
  port: number;
  secret: string;
  reconnect: { retryMaxDelay: number };
}

export class DrachtioEngine extends TypedEventEmitter<TelephonyEngineEvents> implements TelephonyEngine {
  readonly name = 'drachtio';
  readonly #config: DrachtioEngineConfig;
  readonly #log: Logger;
  readonly #host: DrachtioHostSettings | undefined;
  readonly #legs = new Set<DrachtioLeg>();
  /** Endpoints reserved for legs not dialled yet (they pin their group to a server). */
  readonly #reservations = new Set<EndpointReservation>();
  /** Endpoint creations started in the last second (admission: FreeSWITCH sessions per second). */
  readonly #endpointStarts = new EventWindow(1000);
  /** The limits; `maxEndpointsPerSecond` undefined: the connected FreeSWITCH servers' own sessions-per-second. */
  readonly #admission: { maxEndpointsPerSecond: number | undefined; maxEndpointsPending: number; maxEndpointCreateMs: number; maxMediaRequestMs: number; maxPendingInvites: number };
  /** Replaced on stop(): a disconnected Srf does not reconnect. */
  #srf = new Srf();
  #links: FreeswitchLink[] = [];
  #drachtioUp = false;
  #available = false;
  #running = false;
  /** endStaleDialogs calls waiting for drachtio-server. */
  #onDrachtioUp: (() => void)[] = [];

  /** `host.mediaDir`/`host.recordingsDir` map local media/recording paths to `freeswitchMediaDir`/`freeswitchRecordingsDir`. */
  constructor(config: DrachtioEngineConfig, logger: Logger, host?: DrachtioHostSettings) {
    super();
    this.#config = config;
    this.#log = logger.child({ engine: 'drachtio' });
    this.#host = host;
    this.#admission = {
      maxEndpointsPerSecond: config.admission?.maxEndpointsPerSecond,
      maxEndpointsPending: config.admission?.maxEndpointsPending ?? DRACHTIO_ADMISSION_DEFAULTS.maxEndpointsPending,
      maxEndpointCreateMs: config.admission?.maxEndpointCreateMs ?? DRACHTIO_ADMISSION_DEFAULTS.maxEndpointCreateMs,
      maxMediaRequestMs: config.admission?.maxMediaRequestMs ?? DRACHTIO_ADMISSION_DEFAULTS.maxMediaRequestMs,
      maxPendingInvites: config.admission?.maxPendingInvites ?? DRACHTIO_ADMISSION_DEFAULTS.maxPendingInvites,
    };
  }

  get available(): boolean {
    return this.#available;
  }

  /** Starts connecting; availability follows as the connections come up. */
  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    const srf = this.#srf;
    srf.on('connect', (err: Error | null, hostport: string) => {
      if (!this.#running) return srf.disconnect(); // a reconnect that outlived stop()
      if (err) return this.#log.error({ err: err.message }, 'drachtio-server refused us');
      this.#drachtioUp = true;
      this.#log.info({ sip: hostport }, 'connected to drachtio-server');
      for (const waiter of this.#onDrachtioUp.splice(0)) waiter();
      this.#update();
    });
    srf.on('error', (err: Error) => this.#log.debug({ err: err.message }, 'drachtio-server connection error'));
    // 'close' is what drachtio-srf emits on a lost connection (its typings say 'disconnect').
    srf.on('close' as 'disconnect', () => {
      if (!this.#drachtioUp) return;
      this.#drachtioUp = false;
      this.#log.error('lost drachtio-server; reconnecting');
      this.#endLegs(() => true, 'drachtio-server connection lost');
      this.#update();
    });
    const { host, port, secret } = this.#config.drachtio;
    const options: SrfConnectOptions = { host, port, secret, reconnect: { retryMaxDelay: DRACHTIO_RETRY_MAX_MS } };
    void srf.connect(options);

    const mrf = new Mrf(srf);
    this.#links = this.#config.freeswitch.map((fs) => {
      const concurrency = this.#config.endpointCreateConcurrency ?? DRACHTIO_ADMISSION_DEFAULTS.endpointCreateConcurrency;
      const link = new FreeswitchLink(mrf, fs, this.#config.eslListenHost, concurrency, this.#log, this.#nodeTag);
      link.on('up', () => this.#update());
      link.on('down', (reason) => {
        this.#endLegs((leg) => leg.link === link, `media server ${link.name} lost: ${reason}`);
        this.#update();
      });
      link.start();
      return link;
    });
    this.#update();
  }

  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    this.#update();
    const legs = [...this.#legs];
    for (const reservation of this.#reservations) reservation.release();
    this.#endLegs(() => true, 'engine stopped');
    let grace: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(legs.map((leg) => leg.settled)),
      new Promise((done) => (grace = setTimeout(done, STOP_GRACE_MS))),
    ]);
    clearTimeout(grace);
    for (const link of this.#links) link.stop();
    this.#links = [];
    this.#drachtioUp = false;
    try {
      this.#srf.disconnect();
    } catch {
      // never connected: disconnect() still stops its reconnect attempts, then throws
    }
    this.#srf = new Srf();
  }

  dial(request: DialRequest): CallLeg {
    const ctx: LegContext = {
      srf: this.#srf,
      inviteSent: (state) => {
        if (request.group !== undefined) this.emit('dialog', request.group, leg.id, JSON.stringify(state));
      },
      reserve: () => this.#reserve(request.group),
      mediaPath: (path) => this.#mapPath(path, 'media'),
      recordingPath: (path) => this.#mapPath(path, 'recordings'),
    };
    const leg = new DrachtioLeg(request, ctx, this.#log.child({ leg: request.label }));
    this.#legs.add(leg);
    void leg.settled.then(() => this.#legs.delete(leg));
    reportDialog(this, leg, request.group, () => {
      const state = leg.dialogState;
      return state && JSON.stringify(state);
    });
    return leg;
  }

  /**
   * After a crash and restart: BYEs, through drachtio-server, the party
   * dialogs of `states` (waiting up to 30 s for drachtio-server), ends the
   * INVITEs left pending ({@link #endStaleInvite}), and `uuid_kill`s their
   * endpoints on FreeSWITCH servers connected by then (the node-tag clean-up
   * at connection has usually ended them already). Resolves with how many
   * BYEs and CANCELs drachtio-server sent; unreadable states are skipped,
   * dialogs and transactions drachtio-server no longer knows are counted out.
   */
  async endStaleDialogs(states: readonly string[]): Promise<number> {
    const stale = states.flatMap((text) => parseDialogState(text) ?? []);
    if (stale.length === 0) return 0;
    if (!(await this.#drachtioConnected(STALE_CONNECT_WAIT_MS))) {
      this.#log.error({ dialogs: stale.length }, 'drachtio-server not connected: cannot BYE the calls a previous run left up');
      return 0;
    }
    const outcomes = await Promise.all(
      stale.map(async (s) => {
        const outcome = 'kind' in s ? await this.#endStaleInvite(s) : await byeStaleDialog(this.#srf, s, STALE_BYE_TIMEOUT_MS);
        if (!('kind' in s)) this.#log.info({ callId: s.callId, ...outcome }, 'BYE for a dialog a previous run left up');
        const server = this.#links.find((link) => link.name === s.freeswitch)?.server;
        if (server) await withTimeout(server.api(`uuid_kill ${s.uuid}`), STALE_BYE_TIMEOUT_MS, 'no reply').catch(() => undefined);
        return outcome;
      }),
    );
    return outcomes.filter((outcome) => 'status' in outcome || 'sent' in outcome).length;
  }

  /**
   * An INVITE a crashed run left pending in drachtio-server: answered during
   * the outage, drachtio-server ACKed the 2xx and holds the dialog, so it is
   * BYEd; else it is CANCELed by its transaction id, and BYEd once more
   * {@link STALE_CANCEL_CROSS_MS} later in case a 2xx crossed the CANCEL
   * (drachtio-server ACKs that one too). Every step is one drachtio request
   * that fails harmlessly when there is nothing to end.
   */
  async #endStaleInvite(s: DrachtioInviteState): Promise<{ readonly status: number } | { readonly sent: true } | { readonly notSent: string }> {
    const dialog = { dialogId: uacDialogId(s.callId, s.localTag), remoteTarget: s.requestUri };
    const answered = await byeStaleDialog(this.#srf, dialog, STALE_BYE_TIMEOUT_MS);
    if ('status' in answered) {
      this.#log.info({ callId: s.callId, ...answered }, 'BYE for an INVITE a previous run left pending, answered since');
      return answered;
    }
    const cancel = await cancelStaleInvite(this.#srf, s, STALE_BYE_TIMEOUT_MS);
    this.#log.info({ callId: s.callId, ...cancel }, 'CANCEL for an INVITE a previous run left pending');
    if (!('sent' in cancel)) return cancel;
    await new Promise((resolve) => setTimeout(resolve, STALE_CANCEL_CROSS_MS));
    const crossed = await byeStaleDialog(this.#srf, dialog, STALE_BYE_TIMEOUT_MS);
    if ('status' in crossed) this.#log.info({ callId: s.callId, ...crossed }, 'BYE for a 2xx that crossed the restart CANCEL');
    return cancel;
  }

  async reserve(group: string): Promise<ReserveResult> {
    const reservation = this.#reserve(group);
    if (!reservation) return { ok: false, reason: 'no media server available' };
    const endpoint = await reservation.endpoint;
    if (endpoint instanceof Error) return { ok: false, reason: `cannot create media endpoint: ${endpoint.message}` };
    return { ok: true, reservation };
  }

  /**
   * Refuses while FreeSWITCH is saturated: endpoints pending (being created
   * or queued: a bound on bursts), endpoint creation slower than
   * `maxEndpointCreateMs` (FreeSWITCH falling behind, before creations fail
   * on drachtio-fsmrf's 4 s), SDPs and bridges slower than
   * `maxMediaRequestMs` (the steps after a person answered), the endpoint
   * creation rate (FreeSWITCH's sessions-per-second), and INVITEs without a
   * final response. One leg is one endpoint.
   */
  saturation(legs: number): EngineSaturation | undefined {
    const limits = this.#admission;
    const now = performance.now();
    const pending = this.#links.reduce((n, link) => n + link.pendingEndpoints, 0);
    if (pending + legs > limits.maxEndpointsPending) {
      const createMs = Math.max(...this.#links.map((link) => link.creations.averageMs));
      return {
        cause: 'endpoints_pending',
        message: `${pending} FreeSWITCH endpoints are being created (limit ${limits.maxEndpointsPending})`,
        retryAfterMs: Math.max(100, Math.ceil(createMs)),
      };
    }
    const slowMs = Math.max(0, ...this.#links.map((link) => link.creations.busyMs(now)));
    if (slowMs > limits.maxEndpointCreateMs) {
      return {
        cause: 'endpoints_pending',
        message: `FreeSWITCH takes ${Math.round(slowMs)} ms to create an endpoint (limit ${limits.maxEndpointCreateMs} ms)`,
        retryAfterMs: Math.ceil(slowMs),
      };
    }
    const requestMs = Math.max(0, ...this.#links.map((link) => link.mediaRequests.busyMs(now)));
    if (requestMs > limits.maxMediaRequestMs) {
      return {
        cause: 'media_requests_slow',
        message: `FreeSWITCH takes ${Math.round(requestMs)} ms to apply an SDP or a bridge (limit ${limits.maxMediaRequestMs} ms)`,
        retryAfterMs: Math.ceil(requestMs),
      };
    }
    const rate = this.#endpointRateLimit();
    const retryAfterMs = this.#endpointStarts.msUntilRoom(now, legs, rate);
    if (retryAfterMs > 0) {
      return {
        cause: 'endpoint_rate',
        message: `FreeSWITCH endpoints are started at ${rate} per second at most`,
        retryAfterMs,
      };
    }
    let inviting = 0;
    for (const leg of this.#legs) if (leg.inviting) inviting++;
    if (inviting + legs > limits.maxPendingInvites) {
      return { cause: 'pending_invites', message: `${inviting} INVITEs await their final response (limit ${limits.maxPendingInvites})`, retryAfterMs: 1000 };
    }
    return undefined;
  }

  /**
   * Endpoints per second, all servers: the setting, else what the connected
   * FreeSWITCH servers start at most (their `sessions-per-second`: one
   * endpoint is one session; beyond it FreeSWITCH answers 503). At least 2,
   * or a duo_callback would be refused forever.
   */
  #endpointRateLimit(): number {
    const configured = this.#admission.maxEndpointsPerSecond;
    if (configured !== undefined) return configured;
    return Math.max(2, this.#links.reduce((n, link) => n + (link.server ? link.sessionsPerSecond : 0), 0));
  }

  async bridge(a: CallLeg, b: CallLeg): Promise<MediaBridge> {
    if (!(a instanceof DrachtioLeg) || !(b instanceof DrachtioLeg) || !this.#legs.has(a) || !this.#legs.has(b) || a === b) {
      throw new Error('bridge needs two distinct legs of this engine');
    }
    return EndpointBridge.open(a, b, this.#log);
  }

  /** Starts creating an endpoint for a leg of `group`; undefined while the engine is unavailable. */
  #reserve(group: string | undefined): EndpointReservation | undefined {
    const link = this.#available ? this.#pickServer(group) : undefined;
    if (!link) return undefined;
    const reservation = new EndpointReservation(link, group, this.#log);
    this.#endpointStarts.record(performance.now());
    this.#reservations.add(reservation);
    void reservation.done.then(() => this.#reservations.delete(reservation));
    return reservation;
  }

  /** The server another leg or reservation of the group is on (uuid_bridge needs both on one), else the least loaded. */
  #pickServer(group: string | undefined): FreeswitchLink | undefined {
    if (group !== undefined) {
      for (const leg of this.#legs) if (leg.group === group && leg.link?.server) return leg.link;
      for (const r of this.#reservations) if (r.group === group && r.link.server) return r.link;
    }
    let best: FreeswitchLink | undefined;
    for (const link of this.#links) {
      if (link.server && (!best || link.endpoints < best.endpoints)) best = link;
    }
    return best;
  }

  /** The tag value of this node's channels: the node id (safe in a SIP header and an ESL command, configSchema). */
  get #nodeTag(): string | undefined {
    return this.#host?.nodeId;
  }

  /** Resolves true once drachtio-server is connected, false after `ms`. */
  #drachtioConnected(ms: number): Promise<boolean> {
    if (this.#drachtioUp) return Promise.resolve(true);
    return new Promise((resolve) => {
      const waiter = (): void => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.#onDrachtioUp = this.#onDrachtioUp.filter((w) => w !== waiter);
        resolve(false);
      }, ms);
      this.#onDrachtioUp.push(waiter);
    });
  }

  #endLegs(which: (leg: DrachtioLeg) => boolean, reason: string): void {
    for (const leg of this.#legs) if (which(leg)) leg.terminate({ by: 'engine', reason });
  }

  #update(): void {
    const servers = this.#links.filter((link) => link.server).length;
    const available = this.#running && this.#drachtioUp && servers > 0;
    if (available === this.#available) return;
    this.#available = available;
    const reason = !this.#running
      ? 'engine stopped'
      : !this.#drachtioUp
        ? 'drachtio-server not connected'
        : servers === 0
          ? 'no FreeSWITCH connected'
          : `drachtio-server and ${servers} of ${this.#links.length} FreeSWITCH connected`;
    this.#log.info({ available, reason }, 'availability');
    this.emit('availability', available, reason);
  }

  /** A local path under mediaDir/recordingsDir as FreeSWITCH sees it (same path by default). */
  #mapPath(path: string, kind: 'media' | 'recordings'): string {
    const remoteDir = kind === 'media' ? this.#config.freeswitchMediaDir : this.#config.freeswitchRecordingsDir;
    const localDir = kind === 'media' ? this.#host?.mediaDir : this.#host?.recordingsDir;
    if (!remoteDir || !localDir) return path;
    const inside = relative(resolve(localDir), resolve(path));
    if (inside.startsWith('..') || isAbsolute(inside)) return path;
    return join(remoteDir, inside);
  }
}
