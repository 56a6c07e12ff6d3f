/**
 * One dialled party as a CallLeg: drives its ClientDialog through the call
 * (progress, answer, failure, BYE either way, CANCEL) and owns its media (RTP
 * session, player, media watchdog). `ended` is decided once and emitted on a
 * later tick; SIP clean-up (a CANCEL waiting for a provisional, a BYE for a
 * 2xx that raced it) may go on after it, until `settled`.
 */
import { randomInt } from 'node:crypto';
import { nanoid } from 'nanoid';
import type { Message } from 'sip';
import type { Logger } from 'pino';
import type { Clock } from '../../util/Clock.js';
import { TypedEventEmitter } from '../../util/TypedEmitter.js';
import { NO_USABLE_MEDIA, SESSION_EXPIRED, dialUriProblem } from '../sipChecks.js';
import { dtmfKeyOfInfo } from '../dtmfInfo.js';
import { redirectContacts } from '../redirectContacts.js';
import { DtmfGate } from '../../telephony/DtmfGate.js';
import type { CallLeg, CallLegEvents, DialRequest, FarEndChannel, LegEnd, LegRecording, PlayResult } from '../../telephony/TelephonyEngine.js';
import { ClientDialog, toTag, type DialogSnapshot, type PendingInvite } from './ClientDialog.js';
import type { G711Codec } from './G711.js';
import type { MediaWatchdog } from './MediaWatchdog.js';
import type { Pacer } from './Pacer.js';
import type { MediaCache } from './MediaCache.js';
import { Player } from './Player.js';
import { PortReservation } from './PortReservation.js';
import type { RtpPortPool } from './RtpPortPool.js';
import { RtpSession } from './RtpSession.js';
import { StereoRecorder } from './StereoRecorder.js';
import { ANSWER_DIRECTION, OUR_TELEPHONE_EVENT_PT, buildSdp, isUsableMedia, parseSdp, type RemoteMedia, type SdpDirection } from './Sdp.js';
import { MAX_SESSION_EXPIRES_SECONDS, MIN_SE_SECONDS, parseMinSe, parseSessionExpires } from '../sessionExpires.js';
import { SessionTimer } from './SessionTimer.js';
import type { SipStack } from './SipStack.js';

/** What the engine lends every leg. */
export interface LegContext {
  readonly stack: SipStack;
  readonly ports: RtpPortPool;
  readonly pacer: Pacer;
  readonly media: MediaCache;
  readonly watchdog: MediaWatchdog;
  readonly rtpHost: string;
  /** Address written into our SDP. */
  readonly mediaAddress: string;
  /** The RTP latch window after each SDP from the far end (RtpSession). */
  readonly latchMs: number;
  /** Time source of the session timers (RFC 4028); the system clock but in tests. */
  readonly clock: Clock;
  /** Reports the INVITE about to be sent (crash recovery, issue 9); the INVITE goes once it resolves. */
  readonly beforeInvite: (request: DialRequest, legId: string, invite: PendingInvite) => Promise<void>;
  /** After the answered leg's state was reported: resolves once it is durable (undefined: nothing to wait for); the ACK goes then. */
  readonly answerDurable: (request: DialRequest) => Promise<void> | undefined;
}

/** Longest SIP clean-up after `ended` (64·T1): then the dialog is forgotten whatever the far end does. */
const LINGER_MS = 32_000;
/** Reasons for responses `sip` makes up itself (they carry none). */
const LOCAL_REASONS: Record<number, string> = { 408: 'Request Timeout', 503: 'Service Unavailable', 404: 'Not Found' };
const OFFER_CODECS: readonly G711Codec[] = ['PCMU', 'PCMA'];
/** How often a ringing leg with SDP but no RTP yet looks for the far end's first packet (one frame). */
const EARLY_RTP_CHECK_MS = 20;

export class OutboundCall extends TypedEventEmitter<CallLegEvents> implements CallLeg {
  readonly id = nanoid();
  /** Resolves when no SIP transaction of this leg is left. */
  readonly settled: Promise<void>;
  readonly #ctx: LegContext;
  readonly #request: DialRequest;
  readonly #log: Logger;
  /** The RTP session once open, undefined when the leg ended first. */
  readonly #ready: Promise<RtpSession | undefined>;
  #resolveSettled!: () => void;
  #dialog: ClientDialog | undefined;
  #session: RtpSession | undefined;
  #player: Player | undefined;
  /** The leg's recording (record()), from its start until stop() or the leg's end. */
  #recorder: StereoRecorder | undefined;
  #answered = false;
  /**
   * Usable media named by an 18x, per early dialog (To tag): a 2xx without
   * SDP confirms its own dialog's (RFC 3261 §13.2.1 lets it repeat the
   * answer), never a forked sibling's.
   */
  readonly #earlyMedia = new Map<string, RemoteMedia>();
  /**
   * Early media announced (18x with SDP) but not heard yet (RFC 3960: the SDP
   * is no promise of RTP): the check for its first packet, until it comes.
   */
  #earlyRtpCheck: NodeJS.Timeout | undefined;
  #earlyMediaHeard = false;
  #playGeneration = 0;
  #end: LegEnd | undefined;
  #settled = false;
  #linger: NodeJS.Timeout | undefined;
  readonly #sdpSessionId = randomInt(2 ** 31);
  #sdpVersion = 1;
  /** What our last SDP described, to tell whether the next one changed. */
  #sdpDescribed: string | undefined;
  /** Our last SDP: a re-INVITE refresh offers it again unchanged (RFC 6337 §5.1). */
  #lastSdp: string | undefined;
  readonly #sessionTimer: SessionTimer;
  readonly #dtmf: DtmfGate;

  constructor(request: DialRequest, ctx: LegContext, log: Logger) {
    super();
    this.#request = request;
    this.#ctx = ctx;
    this.#log = log;
    this.#sessionTimer = new SessionTimer(() => this.#refreshSession(), () => this.#onSessionExpired(), ctx.clock);
    this.#dtmf = new DtmfGate(log, (key, source) => {
      if (!this.#end) this.emit('dtmf', key, source);
    });
    this.settled = new Promise((resolve) => (this.#resolveSettled = resolve));
    // Never rejects: nothing awaits it before bridge/play, and an unhandled rejection ends the process.
    this.#ready = this.#start().catch((err: unknown) => {
      this.#log.error({ err }, 'placing the call failed');
      this.#finish({ by: 'engine', reason: `placing the call failed: ${String(err)}` });
      this.#settle();
      return undefined;
    });
  }

  /** True while the leg's INVITE waits for its final response (admission control counts these). */
  get inviting(): boolean {
    return this.#dialog !== undefined && !this.#answered && this.#end === undefined;
  }

  /** The confirmed dialog, for a BYE after a restart (issue 9); undefined before the answer. */
  get dialogSnapshot(): DialogSnapshot | undefined {
    return this.#dialog?.snapshot();
  }

  /** The leg's RTP session, once open; undefined if the leg ended without one. */
  media(): Promise<RtpSession | undefined> {
    return this.#ready;
  }

  async play(files: readonly string[], repeat: number): Promise<PlayResult> {
    const generation = ++this.#playGeneration;
    await this.#ready;
    // A stopPlay() or newer play() while we waited wins (else a ringback stopped at answer would loop over the bridge).
    if (this.#end || !this.#player || generation !== this.#playGeneration) return { completed: false };
    return this.#player.play(files, repeat);
  }

  stopPlay(): void {
    this.#playGeneration++;
    this.#player?.stop();
  }

  hangup(): void {
    this.terminate({ by: 'local', reason: 'hangup' });
  }

  /**
   * Records off the shared pacer from now on (silence until the RTP session
   * exists and media flows): the session's tap feeds what the far end sends
   * and every frame sent to it, played or relayed.
   */
  async record(path: string, farEnd: FarEndChannel): Promise<LegRecording> {
    if (this.#end) throw new Error('cannot record a leg that has ended');
    if (this.#recorder) throw new Error('leg is already recording');
    const recorder = await StereoRecorder.open(path, this.#ctx.pacer);
    if (this.#end || this.#recorder) {
      await recorder.close();
      throw new Error(this.#end ? 'the leg ended while the recording started' : 'leg is already recording');
    }
    this.#recorder = recorder;
    const [said, heard] = farEnd === 'left' ? ([0, 1] as const) : ([1, 0] as const);
    void this.#ready.then((session) => {
      if (!session || this.#recorder !== recorder) return;
      session.tap = {
        received: (codec, packet, offset) => recorder.push(said, codec, packet, offset),
        sent: (codec, packet, offset) => recorder.push(heard, codec, packet, offset),
      };
    });
    return { stop: () => this.#stopRecording(recorder) };
  }

  #stopRecording(recorder: StereoRecorder): Promise<void> {
    if (this.#recorder === recorder) {
      this.#recorder = undefined;
      if (this.#session) this.#session.tap = undefined;
    }
    return recorder.close();
  }

  /** Ends the leg with `end`: BYE after answer, CANCEL (when allowed) before. */
  terminate(end: LegEnd): void {
    if (this.#end) return;
    this.#finish(end);
    const dialog = this.#dialog;
    if (!dialog) return; // still starting: #start sees #end and stops
    if (this.#answered) dialog.bye(() => this.#settle());
    else dialog.cancel(); // the INVITE's final response settles
  }

  async #start(): Promise<RtpSession | undefined> {
    const { stack, ports, rtpHost } = this.#ctx;
    let session: RtpSession;
    let dialog: ClientDialog;
    // Taken before anything can fail: from here this leg gives the reserved port back.
    let reservedPort = this.#request.reservation instanceof PortReservation ? this.#request.reservation.take(ports) : undefined;
    try {
      if (!stack.usable) throw new Error('engine not available');
      const problem = dialUriProblem(this.#request.requestUri, 'request URI') ?? dialUriProblem(this.#request.fromUri, 'From URI');
      if (problem) throw new Error(problem);
      const target = await stack.resolve(this.#request.gateway);
      const port = reservedPort;
      reservedPort = undefined; // RtpSession owns it now, bound or released
      session = await RtpSession.open(
        ports,
        rtpHost,
        {
          signallingAddress: target.address,
          latchMs: this.#ctx.latchMs,
          onError: (err) => this.#log.error({ err }, 'relaying RTP failed (further failures only counted)'),
        },
        port,
      );
      dialog = new ClientDialog(stack, target, this.#request, this.#log);
      if (!this.#end) await this.#ctx.beforeInvite(this.#request, this.id, dialog.pendingInvite());
    } catch (err) {
      if (reservedPort !== undefined) ports.release(reservedPort);
      this.#log.warn({ err }, 'cannot place the call');
      this.#finish({ by: 'engine', reason: (err as Error).message });
      this.#settle();
      return undefined;
    }
    if (this.#end) {
      session.close();
      this.#settle();
      return undefined;
    }
    this.#session = session;
    this.#player = new Player(session, this.#ctx.pacer, this.#ctx.media);
    this.#dialog = dialog;
    stack.addDialog(dialog, this.#onRequest);
    this.#log.info({ callId: dialog.callId, to: this.#request.requestUri, rtpPort: session.port }, 'dialling');
    dialog.invite(this.#sdp(OFFER_CODECS, OUR_TELEPHONE_EVENT_PT), this.#onInviteResponse, (invite) => this.#ctx.beforeInvite(this.#request, this.id, invite));
    return session;
  }

  readonly #onInviteResponse = (rs: Message): void => {
    const status = rs.status ?? 0;
    if (status < 200) {
      if (status === 100 || this.#dialog?.provisional(rs) === 'discard' || this.#end) return;
      const media = this.#applyRemoteSdp(rs.content);
      const announced = typeof media === 'object' && isUsableMedia(media);
      if (announced) {
        this.#earlyMedia.set(toTag(rs) ?? '', media);
        this.#listenForEarlyMedia(status);
      }
      const earlyMedia = this.#earlyMediaHeard;
      this.#log.info({ status, earlyMedia, announced }, 'progress');
      this.emit('progress', { sipStatus: status, earlyMedia });
    } else if (status < 300) {
      // A retransmitted 2xx is ACKed again, a forked one ACKed and BYEd by the dialog: only the first answers.
      const dialog = this.#dialog;
      if (dialog?.ack(rs) !== 'confirmed') return;
      this.#answered = true;
      this.#stopEarlyRtpCheck();
      if (this.#end) return dialog.bye(() => this.#settle()); // the 2xx raced our CANCEL
      const media = this.#applyRemoteSdp(rs.content) ?? this.#confirmEarlyMedia(rs);
      if (typeof media !== 'object' || !isUsableMedia(media)) {
        this.#log.warn({ sdp: typeof media === 'object' ? { address: media.address, port: media.port } : (media ?? 'none') }, NO_USABLE_MEDIA);
        return this.terminate({ by: 'engine', reason: NO_USABLE_MEDIA, farEndFault: 'rejected' });
      }
      this.#log.info('answered');
      this.#armFromAnswer(rs);
      if (this.#session) {
        this.#ctx.watchdog.watch(this.#session, this.#onMediaTimeout);
        this.#session.onKey = (key) => this.#dtmf.pass(key, 'rfc4733');
      }
      this.emit('answered');
      // The state `answered` reported must be durable before the ACK stops the far end's 2xx retransmissions (issue 9).
      const durable = this.#ctx.answerDurable(this.#request);
      if (durable) void durable.then(() => dialog.releaseAck());
      else dialog.releaseAck();
    } else {
      const reason = `${status} ${rs.reason || LOCAL_REASONS[status] || ''}`.trim();
      const contacts = redirectContacts(status, rs.headers.contact);
      this.#finish({ by: 'remote', sipStatus: status, reason, ...(contacts ? { redirectContacts: contacts } : {}) });
      this.#settle();
    }
  };

  /**
   * Waits for the far end's first RTP packet after an 18x with SDP, then
   * reports early media (`progress` with `earlyMedia: true`, the 18x's status):
   * until then the leg is only ringing, so the caller hears a ringback tone
   * rather than the silence of a 183 whose media never comes (issue 11).
   */
  #listenForEarlyMedia(status: number): void {
    const session = this.#session;
    if (this.#earlyMediaHeard || this.#earlyRtpCheck || !session) return;
    const before = session.packetsReceived;
    this.#earlyRtpCheck = setInterval(() => {
      if (session.packetsReceived === before) return;
      this.#stopEarlyRtpCheck();
      if (this.#end || this.#answered) return;
      this.#earlyMediaHeard = true;
      this.#log.info({ status }, 'early media heard');
      this.emit('progress', { sipStatus: status, earlyMedia: true });
    }, EARLY_RTP_CHECK_MS);
  }

  #stopEarlyRtpCheck(): void {
    clearInterval(this.#earlyRtpCheck);
    this.#earlyRtpCheck = undefined;
  }

  readonly #onMediaTimeout = (): void => {
    try {
      this.terminate({ by: 'engine', reason: 'media timeout' });
    } catch (err) {
      this.#log.error({ err }, 'ending the call on media timeout failed');
    }
  };

  /** Requests from the far end inside our dialog. */
  readonly #onRequest = (rq: Message): void => {
    const dialog = this.#dialog;
    if (!dialog) return;
    this.#log.debug(`< ${rq.method ?? ''} (in dialog)`);
    if (dialog.isOtherDialog(rq)) return this.#onOtherDialog(rq, dialog);
    switch (rq.method) {
      case 'ACK':
        dialog.acked(rq);
        if (rq.content) this.#applyRemoteSdp(rq.content); // answer to our offer in a 200 to an empty re-INVITE
        return;
      case 'BYE':
        dialog.respond(rq, 200, 'OK');
        if (this.#answered) {
          this.#finish({ by: 'remote', reason: 'BYE' });
          return this.#settle();
        }
        // A BYE on an early dialog (RFC 3261 §15): the callee gave up; our INVITE is still pending,
        // so CANCEL it — its final response settles the leg.
        this.#finish({ by: 'remote', reason: 'BYE before answer' });
        return dialog.cancel();
      case 'INVITE':
      case 'UPDATE':
        return this.#answerOffer(rq, dialog);
      case 'INFO': {
        dialog.respond(rq, 200, 'OK'); // any INFO body (RFC 6086 allows 469 for unknown packages; legacy DTMF INFO has none)
        const key = dtmfKeyOfInfo(rq.headers['content-type'] ?? '', rq.content ?? '');
        if (key !== undefined && this.#answered) this.#dtmf.pass(key, 'sip_info');
        return;
      }
      case 'OPTIONS':
      case 'NOTIFY':
        return dialog.respond(rq, 200, 'OK');
      default:
        return dialog.respond(rq, 501, 'Not Implemented');
    }
  };

  /**
   * A request on a forked dialog we BYEd (RFC 3261 §13.2.2.4): its BYE (or
   * an ACK) is acknowledged, anything else refused with 481; the call goes on.
   */
  #onOtherDialog(rq: Message, dialog: ClientDialog): void {
    if (rq.method === 'ACK') return;
    if (rq.method === 'BYE') return dialog.respond(rq, 200, 'OK');
    dialog.respond(rq, 481, 'Call/Transaction Does Not Exist');
  }

  /**
   * A re-INVITE or UPDATE from the far end (RFC 3311, RFC 3264 §8, RFC 4028
   * §9). Its Session-Expires/Min-SE are checked first: garbage gets 400, an
   * interval below our Min-SE 422 with our Min-SE. An offer (SDP): keep our
   * codec if still offered, follow a move or hold, answer in the 2xx. No SDP:
   * a re-INVITE gets our offer in the 2xx (the answer comes in the ACK); an
   * UPDATE gets a 2xx without SDP (only an offer allows an answer, RFC 3311
   * §5.2). An UPDATE on the early dialog is answered the same way; the
   * session timer starts only with the answer.
   */
  #answerOffer(rq: Message, dialog: ClientDialog): void {
    const session = this.#session;
    if (!session || this.#end) return dialog.respond(rq, 481, 'Call/Transaction Does Not Exist');
    const se = parseSessionExpires(rq.headers['session-expires'] ?? rq.headers.x);
    if (se === 'invalid' || parseMinSe(rq.headers['min-se']) === 'invalid') return dialog.respond(rq, 400, 'Bad Session-Expires or Min-SE');
    if (se && se.seconds < MIN_SE_SECONDS) return dialog.respond(rq, 422, 'Session Interval Too Small', undefined, { 'min-se': String(MIN_SE_SECONDS) });
    let sdp: string | undefined;
    if (rq.content) {
      const offer = parseSdp(rq.content);
      if (typeof offer === 'string') return dialog.respond(rq, 488, 'Not Acceptable Here');
      const codec = offer.codecs.includes(session.codec) ? session.codec : offer.codec;
      session.setRemote({ ...offer, codec });
      this.#log.info({ method: rq.method, address: offer.address, port: offer.port, direction: offer.direction, codec }, 'far end changed the session');
      sdp = this.#sdp([codec], offer.telephoneEventPt, ANSWER_DIRECTION[offer.direction]);
    } else if (rq.method === 'INVITE') {
      sdp = this.#sdp([session.codec], session.telephoneEventPt ?? OUR_TELEPHONE_EVENT_PT);
    }
    dialog.respond(rq, 200, 'OK', sdp, this.#armFromRequest(rq, se));
  }

  /**
   * Arms the session timer from the far end's refresh request (RFC 4028 §9)
   * and gives the headers our 2xx needs: its Session-Expires (an interval
   * above our maximum is lowered, as §9 allows) and `Require: timer` when
   * the far end refreshes. A request without Session-Expires turns the timer
   * off. Before the answer nothing is armed.
   */
  #armFromRequest(rq: Message, se: ReturnType<typeof parseSessionExpires>): Record<string, string> {
    if (!this.#answered || se === 'invalid') return {};
    if (!se) {
      this.#sessionTimer.stop();
      return {};
    }
    const seconds = Math.min(se.seconds, MAX_SESSION_EXPIRES_SECONDS);
    const supportsTimer = /(^|[\s,])timer($|[\s,])/i.test(String(rq.headers.supported ?? ''));
    const refresher = se.refresher ?? (supportsTimer ? 'uac' : 'uas');
    this.#sessionTimer.arm(seconds, refresher === 'uac' ? 'they' : 'we');
    this.#log.debug({ seconds, refresher }, 'session timer (far end request)');
    return { 'session-expires': `${seconds};refresher=${refresher}`, ...(refresher === 'uac' ? { require: 'timer' } : {}) };
  }

  /**
   * Arms the session timer from a 2xx to our INVITE or refresh (RFC 4028
   * §7.2): `refresher=uac` (or none) makes us the refresher, `uas` the far
   * end; no Session-Expires means no session timer.
   */
  #armFromAnswer(rs: Message): void {
    const se = parseSessionExpires(rs.headers['session-expires'] ?? rs.headers.x);
    if (se === 'invalid') this.#log.warn({ value: rs.headers['session-expires'] }, 'unreadable Session-Expires in a 2xx: no session timer');
    if (se === undefined || se === 'invalid') return this.#sessionTimer.stop();
    this.#sessionTimer.arm(se.seconds, se.refresher === 'uas' ? 'they' : 'we');
    this.#log.debug({ seconds: se.seconds, refresher: se.refresher ?? 'uac' }, 'session timer (2xx)');
  }

  /**
   * Half the interval passed and we are the refresher (RFC 4028 §10): an
   * UPDATE without SDP when the far end allows UPDATE, else a re-INVITE with
   * our SDP unchanged. A 422 is retried once with the far end's Min-SE, a
   * 491 (glare) a couple of times after a random wait (SessionTimer).
   */
  #refreshSession(seconds?: number): void {
    const dialog = this.#dialog;
    const state = this.#sessionTimer.state;
    if (!dialog || this.#end || state.kind !== 'we_refresh') return;
    const interval = seconds ?? state.seconds;
    const method = dialog.peerAllows('UPDATE') ? 'UPDATE' : 'INVITE';
    this.#log.info({ method, seconds: interval }, 'refreshing the session (RFC 4028)');
    dialog.refresh(method, method === 'INVITE' ? this.#lastSdp : undefined, interval, (rs) => {
      if (this.#end) return;
      const status = rs.status ?? 0;
      if (status < 300) {
        if (rs.content) this.#applyRemoteSdp(rs.content);
        return this.#armFromAnswer(rs);
      }
      const minSe = parseMinSe(rs.headers['min-se']);
      if (status === 422 && seconds === undefined && typeof minSe === 'number' && minSe > interval && minSe <= MAX_SESSION_EXPIRES_SECONDS) {
        return this.#refreshSession(minSe);
      }
      if (status === 491 && this.#sessionTimer.retryAfterGlare()) {
        this.#log.info('our refresh met glare (491): retrying it after 2.1-4 s');
        return;
      }
      // RFC 4028 §10: a refresh that times out or finds no dialog ends the session.
      if (status === 408 || status === 481) return this.terminate({ by: 'engine', reason: `session refresh failed: ${status}`, farEndFault: 'timeout' });
      this.#log.warn({ status }, 'session refresh refused; the session expires unless the far end refreshes it');
    });
  }

  #onSessionExpired(): void {
    this.#log.warn(SESSION_EXPIRED);
    this.terminate({ by: 'engine', reason: SESSION_EXPIRED, farEndFault: 'timeout' });
  }

  /** The early media of the 2xx's own dialog, made current again (a forked 18x may have moved it since). */
  #confirmEarlyMedia(rs: Message): RemoteMedia | undefined {
    const media = this.#earlyMedia.get(toTag(rs) ?? '');
    if (media) this.#session?.setRemote(media);
    return media;
  }

  /** Applies SDP from the far end when there is some: the media it names, or why it is unusable. */
  #applyRemoteSdp(content: string | undefined): RemoteMedia | string | undefined {
    if (!content || !this.#session) return undefined;
    const media = parseSdp(content);
    if (typeof media === 'string') this.#log.warn({ problem: media }, 'unusable SDP from the far end');
    else this.#session.setRemote(media);
    return media;
  }

  /** Our SDP: one o= session id throughout, its version bumped only when what it describes changed (RFC 3264 §8). */
  #sdp(codecs: readonly G711Codec[], telephoneEventPt: number | undefined, direction: SdpDirection = 'sendrecv'): string {
    const port = this.#session?.port ?? 0;
    const described = `${port} ${codecs.join()} ${telephoneEventPt} ${direction}`;
    if (this.#sdpDescribed !== undefined && described !== this.#sdpDescribed) this.#sdpVersion++;
    this.#sdpDescribed = described;
    this.#lastSdp = buildSdp({
      sessionId: this.#sdpSessionId,
      version: this.#sdpVersion,
      address: this.#ctx.mediaAddress,
      port,
      codecs,
      telephoneEventPt,
      direction,
    });
    return this.#lastSdp;
  }

  /** Decides the end once: media stops now, `ended` follows on the next tick. */
  #finish(end: LegEnd): void {
    if (this.#end) return;
    this.#end = end;
    this.#log.info({ by: end.by, sipStatus: end.sipStatus, reason: end.reason }, 'ended');
    this.#player?.stop();
    this.#stopEarlyRtpCheck();
    this.#sessionTimer.stop();
    this.#dialog?.stopResending(); // after our BYE a 2xx to their re-INVITE is moot
    if (this.#session) {
      this.#ctx.watchdog.unwatch(this.#session);
      this.#session.close();
    }
    if (this.#recorder) {
      this.#stopRecording(this.#recorder).catch((err: unknown) => this.#log.error({ err }, 'recording not finalized'));
    }
    process.nextTick(() => {
      try {
        this.emit('ended', end);
      } catch (err) {
        this.#log.error({ err }, "an 'ended' listener threw");
      }
    });
    if (!this.#settled) this.#linger = setTimeout(() => this.#settle(), LINGER_MS).unref();
  }

  #settle(): void {
    if (this.#settled) return;
    this.#settled = true;
    clearTimeout(this.#linger);
    if (this.#dialog) this.#ctx.stack.removeDialog(this.#dialog.callId);
    this.#resolveSettled();
  }
}
