/**
 * The embedded engine: a SIP user agent client and an RTP media path inside
 * this Node process. Each dialled party is an OutboundCall; bridging relays
 * RTP between two of them. Everything time-driven in the media path (playback,
 * recording) runs off one shared 20 ms Pacer; media timeouts off one watchdog.
 */
import type { Logger } from 'pino';
import { systemClock, type Clock } from '../../util/Clock.js';
import { TypedEventEmitter } from '../../util/TypedEmitter.js';
import type { EmbeddedEngineConfig } from '../../config/ServerConfig.js';
import { EMBEDDED_ADMISSION_DEFAULTS, EMBEDDED_LIMIT_DEFAULTS as DEFAULTS } from '../../config/configSchema.js';
import type {
  CallLeg,
  DialRequest,
  EngineSaturation,
  MediaBridge,
  ReserveResult,
  TelephonyEngine,
  TelephonyEngineEvents,
} from '../../telephony/TelephonyEngine.js';
import { MediaCache } from './MediaCache.js';
import { MediaWatchdog } from './MediaWatchdog.js';
import { ClientDialog, type PendingInvite } from './ClientDialog.js';
import { StaleInvites } from './StaleInvites.js';
import { parseStoredState } from './storedState.js';
import { OutboundCall, type LegContext } from './OutboundCall.js';
import { Pacer } from './Pacer.js';
import { PortReservation } from './PortReservation.js';
import { FRAME_MS } from './Rtp.js';
import { RtpBridge } from './RtpBridge.js';
import { RtpPortPool } from './RtpPortPool.js';
import { SipStack } from './SipStack.js';
import { reportDialog } from '../reportDialog.js';

/**
 * How long stop() waits for every leg's SIP to finish before closing sockets
 * anyway: an INVITE still pending may be answered until its transaction times
 * out (64·T1 = 32 s, RFC 3261 Timer B), and that 2xx must be ACKed and BYEd;
 * a few seconds more for the BYE's own answer.
 */
const STOP_GRACE_MS = 32_000 + 4_000;
/** Parsed prompts kept for reuse (about 35 minutes of 16-bit 8 kHz audio with its G.711 forms); also the largest playable file. */
const MEDIA_CACHE_BYTES = 64 * 1024 * 1024;
/** Late ticks the pacer replays after a stall before skipping (100 ms of audio). */
const MAX_CATCH_UP_TICKS = 5;

export class EmbeddedEngine extends TypedEventEmitter<TelephonyEngineEvents> implements TelephonyEngine {
  readonly name = 'embedded';
  readonly #log: Logger;
  readonly #config: EmbeddedEngineConfig;
  readonly #ctx: LegContext;
  readonly #legs = new Set<OutboundCall>();
  readonly #staleInvites: StaleInvites;
  #available = false;
  dialogsDurable?: () => Promise<void>;

  /** `clock` times the legs' session timers (RFC 4028); tests pass one they drive by hand. */
  constructor(config: EmbeddedEngineConfig, logger: Logger, clock: Clock = systemClock) {
    super();
    this.#config = config;
    this.#log = logger.child({ engine: 'embedded' });
    const stack = new SipStack(
        {
          host: config.sipHost,
          port: config.sipPort,
          publicHost: config.publicHost ?? config.sipHost,
          limits: {
            maxMessageBytes: config.sipMaxMessageBytes ?? DEFAULTS.sipMaxMessageBytes,
            maxTcpConnections: config.sipMaxTcpConnections ?? DEFAULTS.sipMaxTcpConnections,
            maxTcpConnectionsPerSource: config.sipMaxTcpConnectionsPerSource ?? DEFAULTS.sipMaxTcpConnectionsPerSource,
            tcpIdleMs: 1000 * (config.sipTcpIdleSeconds ?? DEFAULTS.sipTcpIdleSeconds),
            maxServerTransactions: config.sipMaxServerTransactions ?? DEFAULTS.sipMaxServerTransactions,
          },
        },
        this.#log,
        (reason) => this.#setAvailable(false, reason),
      );
    this.#staleInvites = new StaleInvites(stack, this.#log);
    stack.onStrayResponse(this.#staleInvites.onStrayResponse);
    this.#ctx = {
      stack,
      ports: new RtpPortPool(config.rtpPortMin, config.rtpPortMax),
      pacer: new Pacer({
        periodMs: FRAME_MS,
        maxCatchUp: MAX_CATCH_UP_TICKS,
        onError: (err) => this.#log.error({ err }, 'media tick failed; that player or recorder stops'),
      }),
      media: new MediaCache(MEDIA_CACHE_BYTES),
      watchdog: new MediaWatchdog(config.mediaTimeoutSeconds),
      rtpHost: config.rtpHost,
      mediaAddress: config.publicHost ?? config.rtpHost,
      latchMs: 1000 * (config.rtpLatchSeconds ?? DEFAULTS.rtpLatchSeconds),
      clock,
      beforeInvite: (request, legId, invite) => this.#beforeInvite(request, legId, invite),
      answerDurable: (request) => (request.group === undefined ? undefined : this.dialogsDurable?.()),
    };
  }

  get available(): boolean {
    return this.#available;
  }

  /** SIP state held now: server transactions (requests inside our dialogs) and TCP connections, both bounded by settings. */
  get sipState(): { readonly serverTransactions: number; readonly tcpConnections: number } {
    const { stack } = this.#ctx;
    return { serverTransactions: stack.serverTransactions, tcpConnections: stack.tcpConnections };
  }

  async start(): Promise<void> {
    if (this.#ctx.stack.running) return;
    await this.#ctx.stack.start();
    const { sipHost, sipPort } = this.#config;
    this.#setAvailable(true, `SIP bound on ${sipHost}:${sipPort} (UDP, TCP)`);
  }

  async stop(): Promise<void> {
    if (!this.#ctx.stack.running) return;
    const sipAlive = this.#ctx.stack.usable; // with a dead socket no answer can come: do not wait for one
    this.#setAvailable(false, 'engine stopped');
    const legs = [...this.#legs];
    for (const leg of legs) leg.terminate({ by: 'engine', reason: 'engine stopped' });
    let grace: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(legs.map((leg) => leg.settled)),
      new Promise((resolve) => (grace = setTimeout(resolve, sipAlive ? STOP_GRACE_MS : 0))),
    ]);
    clearTimeout(grace);
    this.#staleInvites.clear();
    this.#ctx.stack.stop();
  }

  dial(request: DialRequest): CallLeg {
    const leg = new OutboundCall(request, this.#ctx, this.#log.child({ leg: request.label }));
    this.#legs.add(leg);
    void leg.settled.then(() => this.#legs.delete(leg));
    reportDialog(this, leg, request.group, () => {
      const snapshot = leg.dialogSnapshot;
      return snapshot && JSON.stringify(snapshot);
    });
    return leg;
  }

  /** Takes an RTP port now; the leg dialled with it binds it before its INVITE. */
  async reserve(): Promise<ReserveResult> {
    const { ports } = this.#ctx;
    const port = this.#available ? ports.take() : undefined;
    if (port === undefined) return { ok: false, reason: this.#available ? 'no free RTP port' : 'engine not available' };
    return { ok: true, reservation: new PortReservation(ports, port) };
  }

  /** Refuses when fewer RTP ports are free than the call's legs, or too many INVITEs are pending. */
  saturation(legs: number): EngineSaturation | undefined {
    const free = this.#ctx.ports.free;
    if (free < legs) {
      // Ports come back as calls end; a call lasts long, so ask again in seconds, not milliseconds.
      return { cause: 'rtp_ports', message: `${free} RTP ports free, ${legs} needed`, retryAfterMs: 5000 };
    }
    const limit = this.#config.admission?.maxPendingInvites ?? EMBEDDED_ADMISSION_DEFAULTS.maxPendingInvites;
    let inviting = 0;
    for (const leg of this.#legs) if (leg.inviting) inviting++;
    if (inviting + legs > limit) {
      return { cause: 'pending_invites', message: `${inviting} INVITEs await their final response (limit ${limit})`, retryAfterMs: 1000 };
    }
    return undefined;
  }

  /**
   * BYEs each confirmed dialog; CANCELs each pending INVITE and, for 64·T1,
   * ACKs and BYEs a 2xx that answers one (StaleInvites). Resolves once every
   * BYE and CANCEL has its final response (or timed out).
   */
  async endStaleDialogs(states: readonly string[]): Promise<number> {
    const sent = states.flatMap((text) => {
      const s = parseStoredState(text);
      if (!s) {
        this.#log.warn({ state: text.slice(0, 200) }, 'unreadable stored call state skipped: nothing sent');
        return [];
      }
      if ('kind' in s) {
        return [new Promise<void>((resolve) =>
          this.#staleInvites.cancel(s, (status) => {
            this.#log.info({ callId: s.callId, status }, 'CANCEL for an INVITE a previous run left pending');
            resolve();
          }),
        )];
      }
      return [new Promise<void>((resolve) =>
        ClientDialog.byeStale(this.#ctx.stack, s, (status) => {
          this.#log.info({ callId: s.callId, status }, 'BYE for a dialog a previous run left up');
          resolve();
        }),
      )];
    });
    await Promise.all(sent);
    return sent.length;
  }

  /** Reports the INVITE as a `dialog` state and waits until the server stored it (no store: at once). */
  #beforeInvite(request: DialRequest, legId: string, invite: PendingInvite): Promise<void> {
    const durable = this.dialogsDurable;
    if (request.group === undefined || !durable) return Promise.resolve();
    this.emit('dialog', request.group, legId, JSON.stringify(invite));
    return durable();
  }

  async bridge(a: CallLeg, b: CallLeg): Promise<MediaBridge> {
    if (!(a instanceof OutboundCall) || !(b instanceof OutboundCall) || !this.#legs.has(a) || !this.#legs.has(b) || a === b) {
      throw new Error('bridge needs two distinct legs of this engine');
    }
    const [sa, sb] = await Promise.all([a.media(), b.media()]);
    if (!sa || !sb || sa.closed || sb.closed) throw new Error('cannot bridge a leg that has ended');
    if (sa.sink || sb.sink) throw new Error('leg is already bridged');
    const onEnded = (): void => void bridge.close();
    const bridge = new RtpBridge(sa, sb, () => {
      a.off('ended', onEnded);
      b.off('ended', onEnded);
    });
    a.once('ended', onEnded);
    b.once('ended', onEnded);
    return bridge;
  }

  #setAvailable(available: boolean, reason: string): void {
    if (available === this.#available) return;
    this.#available = available;
    this.#log.info({ available, reason }, 'availability');
    this.emit('availability', available, reason);
  }
}
