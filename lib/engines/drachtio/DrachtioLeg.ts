/**
 * One dialled party as a CallLeg. A FreeSWITCH endpoint anchors the media; a
 * SIP call placed through drachtio-server offers the endpoint's SDP to the
 * party, and the party's early (18x) and final (2xx) SDP go back to the
 * endpoint with a re-INVITE (endpoint.modify). `ended` is decided once and
 * emitted on a later tick; clean-up (CANCEL, the BYE of a 2xx that raced it,
 * the endpoint's teardown) may go on after it, until `settled`.
 */
import { nanoid } from 'nanoid';
import type { Logger } from 'pino';
import type Srf from 'drachtio-srf';
import type Mrf from 'drachtio-fsmrf';
import { TypedEventEmitter } from '../../util/TypedEmitter.js';
import { DtmfGate } from '../../telephony/DtmfGate.js';
import type { CallLeg, CallLegEvents, DialRequest, FarEndChannel, LegEnd, LegRecording, PlayResult } from '../../telephony/TelephonyEngine.js';
import { dtmfKeyOfInfo } from '../dtmfInfo.js';
import { NO_USABLE_MEDIA, SESSION_EXPIRED, answerHasUsableAudio, dialUriProblem } from '../sipChecks.js';
import { parseSessionExpires } from '../sessionExpires.js';
import { redirectContacts } from '../redirectContacts.js';
import { EndpointReservation } from './EndpointReservation.js';
import type { FreeswitchLink } from './FreeswitchLink.js';
import type { DrachtioDialogState, DrachtioInviteState } from './StaleCall.js';
import { withTimeout } from './withTimeout.js';

/** What the engine lends every leg. */
export interface LegContext {
  readonly srf: Srf;
  /**
   * drachtio-server sent the leg's INVITE (again, with credentials, after a
   * challenge): what a restart after a crash needs to CANCEL it, or BYE it
   * if answered meanwhile (issue 9). Reported after the fact: drachtio-server
   * names the transaction only once it has sent the INVITE.
   */
  inviteSent(state: DrachtioInviteState): void;
  /** Starts creating this leg's endpoint on the group's (or the least-loaded) FreeSWITCH; undefined when none is connected. */
  reserve(): EndpointReservation | undefined;
  /** A local media path as FreeSWITCH sees it. */
  mediaPath(path: string): string;
  /** A local recording path as FreeSWITCH sees it. */
  recordingPath(path: string): string;
}

/** A leg's media anchor, for bridging. */
export interface LegMedia {
  readonly endpoint: Mrf.Endpoint;
  readonly link: FreeswitchLink;
  /** Settles once the channel parks after a bridge ends (EndpointReservation.parked); never rejects. */
  readonly parked: Promise<void>;
}

const MODIFY_TIMEOUT_MS = 5000;
/** RFC 3261 §13.3.1.4: how long our 2xx waits for its ACK (64·T1). */
const ACK_TIMEOUT_MS = 32_000;
const TEARDOWN_TIMEOUT_MS = 3000;
/** How often FreeSWITCH is asked whether the party's early RTP came (two API calls of a few ms each). */
const EARLY_RTP_POLL_MS = 100;
/** What a party may send us inside the dialog. */
const ALLOW = 'INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, NOTIFY';
/** The Reason text of the BYE drachtio-server sends itself when the far end did not refresh the session (RFC 4028). */
const DRACHTIO_SESSION_EXPIRED = 'Session timer expired';

/** A final response to a party's request, sent at most once (see DrachtioLeg.#owe). */
type SendFinal = (status: number, opts?: { body?: string; headers?: Record<string, string> }) => void;

/** FreeSWITCH's offer to an offerless re-INVITE, and how to ACK it with the party's answer. */
interface EndpointOffer {
  readonly sdp: string;
  readonly ack: (answer: string | undefined) => void;
}

/**
 * drachtio-srf 5.0.29 calls cbRequest(err, req), not cbRequest(req) as its
 * typings say.
 */
type InviteSentCallback = (err: Error | null, req?: Srf.SrfRequest) => void;

/** The 'authenticate' event drachtio-srf emits on a challenged INVITE with the one it re-sent (its typings leave it out). */
interface AuthenticateEvents {
  on(event: 'authenticate', listener: (resent: Srf.SrfRequest) => void): void;
}

/** The 'update' event drachtio-srf emits on a pending INVITE request (its typings leave it out). */
interface UpdateEvents {
  removeAllListeners(event: 'update'): void;
  on(event: 'update', listener: (req: Srf.SrfRequest, res: Srf.SrfResponse) => void): void;
}

export class DrachtioLeg extends TypedEventEmitter<CallLegEvents> implements CallLeg {
  readonly id = nanoid();
  /** Resolves when the leg's SIP and FreeSWITCH clean-up is done. */
  readonly settled: Promise<void>;
  readonly #request: DialRequest;
  readonly #ctx: LegContext;
  readonly #log: Logger;
  readonly #media: Promise<LegMedia | undefined>;
  readonly #cleanups: Promise<unknown>[] = [];
  readonly #endSignal: Promise<void>;
  #signalEnd!: () => void;
  #link: FreeswitchLink | undefined;
  #endpoint: Mrf.Endpoint | undefined;
  #endpointReleased = false;
  /** Settles once FreeSWITCH hung up the endpoint's channel (it then closes any recording itself). */
  #endpointGone: Promise<unknown> = Promise.resolve();
  /** The file FreeSWITCH records this leg into, while it does. */
  #recording: string | undefined;
  #invite: Srf.SrfRequest | undefined;
  /** Our INVITE is out and has no final response yet. */
  #inviting = false;
  #dialog: Srf.Dialog | undefined;
  #end: LegEnd | undefined;
  /** Serializes SDP updates of the endpoint and the events that wait for them. */
  #sdpQueue: Promise<void> = Promise.resolve();
  #sdpApplied: string | undefined;
  /** FreeSWITCH's answer to #sdpApplied: what a party's offer is answered with. */
  #sdpAnswer: string | undefined;
  /** The SDP of an 18x with usable media. */
  #earlySdp: string | undefined;
  /** Whether FreeSWITCH is asked for the party's early RTP, and whether it came (RFC 3960). */
  #earlyRtp: 'unwatched' | 'watching' | 'heard' = 'unwatched';
  /** The party's re-INVITEs and UPDATEs still owed a final response: the leg's end answers them (#finish). */
  readonly #owed = new Set<Srf.SrfResponse>();
  /** While the party owes the ACK (with its answer) to our 2xx offering FreeSWITCH's SDP: that re-INVITE's CSeq, and who waits. */
  #awaitingAck: { readonly cseq: number; readonly resolve: (answer: string | undefined) => void } | undefined;
  #playing: { stopped: boolean } | undefined;
  /** The uuid_break of the last stopPlay(): a play right after it waits for it, or the break cuts the new playback. */
  #breaking: Promise<unknown> = Promise.resolve();
  readonly #dtmf: DtmfGate;

  constructor(request: DialRequest, ctx: LegContext, log: Logger) {
    super();
    this.#request = request;
    this.#ctx = ctx;
    this.#log = log;
    this.#dtmf = new DtmfGate(log, (key, source) => {
      if (!this.#end) this.emit('dtmf', key, source);
    });
    this.#endSignal = new Promise((resolve) => (this.#signalEnd = resolve));
    this.#media = this.#createEndpoint();
    const started = this.#media.then((media) => (media ? this.#dial(media.endpoint) : undefined));
    this.settled = this.#endSignal
      .then(() => started)
      .then(() => Promise.allSettled(this.#cleanups))
      .then(() => undefined);
  }

  /** The resource this leg belongs to (DialRequest.group). */
  get group(): string | undefined {
    return this.#request.group;
  }

  /** The FreeSWITCH server this leg's media is on (set once the endpoint is being created). */
  get link(): FreeswitchLink | undefined {
    return this.#link;
  }

  get ended(): boolean {
    return this.#end !== undefined;
  }

  /** What ends this call after a crash (the engine's `dialog` state), once the party's dialog is confirmed. */
  get dialogState(): DrachtioDialogState | undefined {
    const dialog = this.#dialog as (Srf.Dialog & { readonly id: string }) | undefined;
    const endpoint = this.#endpoint;
    if (!dialog || !endpoint || !this.#link || this.#end) return undefined;
    const { callId, localTag, remoteTag } = dialog.sip;
    return { engine: 'drachtio', dialogId: dialog.id, remoteTarget: dialog.remote.uri, callId, localTag, remoteTag, freeswitch: this.#link.name, uuid: endpoint.uuid };
  }

  /** True while the leg's INVITE waits for its final response (admission control counts these). */
  get inviting(): boolean {
    return this.#inviting;
  }

  /** The leg's endpoint once created; undefined if the leg ended first. */
  async media(): Promise<LegMedia | undefined> {
    const media = await this.#media;
    return this.#end ? undefined : media;
  }

  async play(files: readonly string[], repeat: number): Promise<PlayResult> {
    const media = await this.media();
    await this.#breaking;
    if (!media || this.#end) return { completed: false };
    const once = files.map((file) => this.#ctx.mediaPath(file));
    const list = Array.from({ length: repeat + 1 }, () => once).flat();
    if (list.length === 0) return { completed: true };
    const playing = { stopped: false };
    this.#playing = playing;
    this.#log.info({ files, repeat }, 'play');
    try {
      // One playback per file: uuid_break stops only the current file of a `!` list.
      for (const file of list) {
        if (playing.stopped || this.#end) return { completed: false };
        // The endpoint's execute never settles once its channel is gone.
        await Promise.race([media.endpoint.play(file), this.#endSignal]);
      }
    } catch (err) {
      if (this.#end || playing.stopped) return { completed: false };
      this.#log.warn({ err: (err as Error).message, files }, 'playback failed');
      throw err;
    } finally {
      if (this.#playing === playing) this.#playing = undefined;
    }
    return { completed: !playing.stopped && !this.#end };
  }

  stopPlay(): void {
    const playing = this.#playing;
    const endpoint = this.#endpoint;
    if (!playing || !endpoint) return;
    playing.stopped = true;
    this.#log.info('stop play');
    this.#breaking = this.api(`uuid_break ${endpoint.uuid} all`);
  }

  hangup(): void {
    this.terminate({ by: 'local', reason: 'hangup' });
  }

  /**
   * FreeSWITCH `uuid_record` on the leg's endpoint channel with
   * RECORD_STEREO: it writes what it reads from the party (the far end) left
   * and what it writes to it right; RECORD_STEREO_SWAP swaps them. The
   * channel exists from dialling on (the endpoint is made before the
   * INVITE), so the file covers ringing and early media.
   */
  async record(path: string, farEnd: FarEndChannel): Promise<LegRecording> {
    const media = await this.media();
    if (!media) throw new Error('cannot record a leg that has ended');
    if (this.#recording) throw new Error('leg is already recording');
    const uuid = media.endpoint.uuid;
    const file = this.#ctx.recordingPath(path);
    this.#recording = file;
    try {
      await this.#mustApi(`uuid_setvar ${uuid} ${farEnd === 'left' ? 'RECORD_STEREO' : 'RECORD_STEREO_SWAP'} true`);
      await this.#mustApi(`uuid_record ${uuid} start ${file}`);
    } catch (err) {
      this.#recording = undefined;
      throw err;
    }
    this.#log.info({ path, farEnd }, 'recording');
    return { stop: () => this.#stopRecording(uuid, file) };
  }

  /** Stopping closes the file (WAV sizes written); once the channel is gone FreeSWITCH has closed it. */
  async #stopRecording(uuid: string, file: string): Promise<void> {
    if (this.#recording !== file) return;
    this.#recording = undefined;
    if (this.#end) {
      await this.#endpointGone;
      return;
    }
    await this.#mustApi(`uuid_record ${uuid} stop ${file}`);
  }

  async #mustApi(command: string): Promise<void> {
    const reply = await this.api(command);
    if (!reply.startsWith('+OK')) throw new Error(`FreeSWITCH refused ${command.split(' ')[0]}: ${reply.trim() || 'no reply'}`);
  }

  /** Ends the leg with `end`: BYE after answer, CANCEL before, and releases the endpoint. */
  terminate(end: LegEnd): void {
    if (this.#end) return;
    this.#finish(end);
    if (this.#dialog) this.#bye(this.#dialog);
    else if (this.#invite) this.#cancel(this.#invite);
    // Neither yet: #dial sees #end, and an INVITE sent later is cancelled in #onInviteSent.
  }

  /**
   * A FreeSWITCH API command about this leg; resolves with the reply, '' on
   * failure. It goes over the endpoint's own (outbound) event socket while
   * the endpoint lives: FreeSWITCH runs the `api` commands of one event
   * socket one after another, so sending every leg's commands over the one
   * inbound connection queued all calls behind each other (issue 11, kind 8).
   */
  async api(command: string): Promise<string> {
    const server = this.#link?.server;
    const endpoint = this.#endpoint;
    if (!server) return '';
    try {
      const [name, ...args] = command.split(' ');
      const sent = endpoint && !this.#endpointReleased ? endpoint.api(name!, args.join(' ')).then((evt) => evt.getBody()) : server.api(command);
      const reply = await withTimeout(sent, TEARDOWN_TIMEOUT_MS, 'no reply');
      this.#log.debug({ command, reply: reply.trim() }, 'FreeSWITCH API');
      return reply;
    } catch (err) {
      this.#log.warn({ command, err: (err as Error).message }, 'FreeSWITCH API failed');
      return '';
    }
  }

  async #createEndpoint(): Promise<LegMedia | undefined> {
    const given = this.#request.reservation instanceof EndpointReservation && this.#request.reservation.held ? this.#request.reservation : undefined;
    // drachtio-srf writes the URIs into its text protocol and the INVITE: nothing unsafe goes further.
    const problem = dialUriProblem(this.#request.requestUri, 'request URI') ?? dialUriProblem(this.#request.fromUri, 'From URI');
    if (problem) {
      given?.release();
      this.#finish({ by: 'engine', reason: problem });
      return undefined;
    }
    const reservation = given ?? this.#ctx.reserve();
    const taking = reservation?.take();
    if (!reservation || !taking) {
      this.#finish({ by: 'engine', reason: 'no media server available' });
      return undefined;
    }
    this.#link = reservation.link;
    const endpoint = await taking;
    if (endpoint instanceof Error) {
      this.#finish({ by: 'engine', reason: `cannot create media endpoint: ${endpoint.message}` });
      return undefined;
    }
    this.#endpoint = endpoint;
    endpoint.on('destroy', () => this.terminate({ by: 'engine', reason: 'media endpoint hung up by FreeSWITCH' }));
    // A reserved endpoint may have been hung up while it waited (its 'destroy' came before our listener): no INVITE then.
    if (!endpoint.connected) this.terminate({ by: 'engine', reason: 'media endpoint hung up by FreeSWITCH' });
    if (this.#end) {
      this.#releaseEndpoint();
      return undefined;
    }
    return { endpoint, link: reservation.link, parked: reservation.parked };
  }

  async #dial(endpoint: Mrf.Endpoint): Promise<void> {
    if (this.#end) return;
    const { requestUri, fromUri, gateway } = this.#request;
    const proxy = `sip:${gateway.host}:${gateway.port}${gateway.transport === 'tcp' ? ';transport=tcp' : ''}`;
    const options: Srf.CreateUACOptions = {
      localSdp: endpoint.local.sdp,
      proxy,
      // Session timers (RFC 4028) are drachtio-server's: it refreshes when the 2xx makes us the refresher
      // and BYEs a dialog the far end stops refreshing (docs/deploy.md).
      // Allow names UPDATE (RFC 3311 §5.1): drachtio-server sends none of its own.
      // RFC 3262: drachtio-srf PRACKs an 18x that carries an RSeq (createUAC's provisional handler).
      headers: { From: `<${fromUri}>`, Supported: 'timer, 100rel', Allow: ALLOW },
    };
    if (gateway.username !== undefined && gateway.password !== undefined) {
      options.auth = { username: gateway.username, password: gateway.password };
    }
    this.#log.info({ to: requestUri, proxy, freeswitch: this.#link?.name, uuid: endpoint.uuid }, 'dialling');
    const onInviteSent: InviteSentCallback = (err, req) => {
      if (err || !req) return;
      this.#log.debug('> INVITE');
      this.#invite = req;
      if (this.#end) this.#cancel(req);
      else {
        this.#reportInvite(req, endpoint);
        // drachtio-srf answers a 401/407 itself with a new INVITE transaction (then 'authenticate' with that request).
        (req as unknown as AuthenticateEvents).on('authenticate', (resent) => {
          if (!this.#end) this.#reportInvite(resent, endpoint);
        });
      }
      // drachtio-srf answers an UPDATE on the early dialog with our whole INVITE offer (its createUAC attaches that
      // 'update' listener right after this callback returns): replace it, so the UPDATE gets a real answer.
      process.nextTick(() => {
        const events = req as unknown as UpdateEvents;
        events.removeAllListeners('update');
        events.on('update', this.#onOffer);
      });
    };
    let dialog: Srf.Dialog;
    this.#inviting = true;
    try {
      dialog = await this.#ctx.srf.createUAC(requestUri, options, {
        cbRequest: onInviteSent as unknown as (req: Srf.SrfRequest) => void,
        cbProvisional: this.#onProvisional,
      });
    } catch (err) {
      this.#onInviteFailed(err);
      return;
    } finally {
      this.#inviting = false;
    }
    this.#log.debug('< 200 OK');
    if (this.#end) {
      // The 2xx raced our CANCEL (or the engine ended the leg): it must still be hung up.
      this.#log.info('answered after the leg ended: BYE');
      this.#bye(dialog);
      return;
    }
    this.#dialog = dialog;
    // RFC 3261 §13.2.1: a 2xx without SDP confirms the answer an 18x already gave, if any.
    const answer = dialog.remote.sdp || this.#earlySdp;
    if (!answerHasUsableAudio(answer)) {
      this.#log.warn({ sdp: answer ?? 'none' }, NO_USABLE_MEDIA);
      this.terminate({ by: 'engine', reason: NO_USABLE_MEDIA, farEndFault: 'rejected' });
      return;
    }
    // drachtio-srf passes the Reason text as a second argument its typings leave out.
    (dialog as unknown as { on(event: 'destroy', cb: (req: Srf.SrfRequest, reason?: string) => void): void }).on('destroy', (_req, reason) => {
      if (reason === DRACHTIO_SESSION_EXPIRED) {
        this.#log.warn(SESSION_EXPIRED);
        return this.#finish({ by: 'engine', reason: SESSION_EXPIRED, farEndFault: 'timeout' });
      }
      this.#log.debug('< BYE');
      this.#finish({ by: 'remote', reason: 'BYE' });
    });
    dialog.on('modify', this.#onOffer);
    dialog.on('update', this.#onOffer);
    // After a re-INVITE without SDP, the ACK carries the party's answer to FreeSWITCH's offer (#offerFromEndpoint).
    dialog.on('ack', (req: Srf.SrfRequest) => {
      const waiting = this.#awaitingAck;
      if (!waiting || cseqNumber(req) !== waiting.cseq) return;
      this.#awaitingAck = undefined;
      waiting.resolve(typeof req.body === 'string' && req.body ? req.body : undefined);
    });
    // SIP INFO key presses reach drachtio, not FreeSWITCH; RFC 4733 ones are FreeSWITCH's DTMF events.
    dialog.on('info', (req: Srf.SrfRequest, res: Srf.SrfResponse) => {
      res.send(200);
      const key = dtmfKeyOfInfo(req.get('Content-Type') ?? '', typeof req.body === 'string' ? req.body : '');
      if (key !== undefined) this.#dtmf.pass(key, 'sip_info');
    });
    this.#applySdp(dialog.remote.sdp, () => {
      this.#log.info('answered');
      endpoint.on('dtmf', (event) => this.#dtmf.pass(typeof event.dtmf === 'string' ? event.dtmf : '', 'media_server'));
      this.emit('answered');
    });
  }

  /**
   * An 18x: its usable SDP goes to the endpoint, but it is early media only
   * once the party's RTP reaches FreeSWITCH ({@link #watchEarlyRtp}): until
   * then the leg is ringing, so party 1 hears the ringback tone rather than
   * the silence of a 183 whose media never comes (RFC 3960, issue 11).
   */
  readonly #onProvisional = (res: Srf.SrfResponse): void => {
    this.#log.debug(`< ${res.status} ${res.reason}`);
    if (res.status === 100 || this.#end) return;
    const announced = answerHasUsableAudio(res.body);
    if (announced) this.#earlySdp = res.body;
    this.#applySdp(announced ? res.body : undefined, () => {
      const earlyMedia = this.#earlyRtp === 'heard';
      this.#log.info({ status: res.status, earlyMedia, announced }, 'progress');
      this.emit('progress', { sipStatus: res.status, earlyMedia });
      if (announced) void this.#watchEarlyRtp(res.status);
    });
  };

  /**
   * Asks FreeSWITCH every 100 ms how many RTP packets the endpoint received
   * (`uuid_set_media_stats` writes the live counters into the channel's
   * `rtp_audio_in_media_packet_count`; without it they only update at
   * renegotiation or hang-up) until the first one, the answer or the end;
   * then reports early media (`progress`, the 18x's status), once.
   */
  async #watchEarlyRtp(status: number): Promise<void> {
    const uuid = this.#endpoint?.uuid;
    if (this.#earlyRtp !== 'unwatched' || !uuid) return;
    this.#earlyRtp = 'watching';
    const ringing = (): boolean => !this.#end && !this.#dialog && !this.#endpointReleased;
    while (ringing()) {
      await new Promise((resolve) => setTimeout(resolve, EARLY_RTP_POLL_MS));
      if (!ringing() || !(await this.api(`uuid_set_media_stats ${uuid}`)).startsWith('+OK')) continue;
      const packets = Number.parseInt(await this.api(`uuid_getvar ${uuid} rtp_audio_in_media_packet_count`), 10);
      if (packets > 0 && ringing()) {
        this.#earlyRtp = 'heard';
        this.#log.info({ status, packets }, 'early media: the party\'s RTP arrived');
        this.emit('progress', { sipStatus: status, earlyMedia: true });
        return;
      }
    }
  }

  /**
   * A re-INVITE or UPDATE from the party (RFC 3311, RFC 3264 §8): an offer
   * (hold, media moved, a refresh) goes to FreeSWITCH (endpoint.modify,
   * skipped when it is the SDP FreeSWITCH already has) and FreeSWITCH's
   * answer back in our 2xx; 488 when FreeSWITCH refuses it. Without SDP: a
   * re-INVITE gets FreeSWITCH's fresh offer ({@link #offerFromEndpoint}),
   * an UPDATE a 2xx without SDP (RFC 3311 §5.2). A request the leg's end
   * catches still waiting on FreeSWITCH gets 487 ({@link #finish}).
   * Session-Expires and 422 are drachtio-server's (it answers a too small
   * interval itself).
   */
  readonly #onOffer = (req: Srf.SrfRequest, res: Srf.SrfResponse): void => {
    const offer = typeof req.body === 'string' && req.body ? req.body : undefined;
    this.#log.debug({ sdp: offer !== undefined }, `< ${req.method} (in dialog)`);
    const endpoint = this.#endpoint;
    if (this.#end || !endpoint) return res.send(481);
    const timer = refreshAnswerHeaders(req.get('Session-Expires'));
    const send = this.#owe(res);
    if (!offer && req.method === 'UPDATE') return send(200, { headers: timer });
    if (!offer) return this.#offerFromEndpoint(cseqNumber(req), send, timer);
    // endpoint.local.sdp lags one modify behind (fsmrf reads the channel variables too early): FreeSWITCH's answer is the truth.
    const answer = (): void => send(200, { body: this.#sdpAnswer || endpoint.local.sdp, headers: { 'Content-Type': 'application/sdp', ...timer } });
    this.#applySdp(offer, answer, () => send(488));
  };

  /**
   * A party's re-INVITE without SDP (RFC 3261 §14.2: our 2xx offers, its
   * ACK answers), bridged to FreeSWITCH as third-party call control (RFC
   * 3725 §4.2's pattern): FreeSWITCH gets a re-INVITE without SDP too, its
   * offer goes in our 200 to the party, and the party's answer from its ACK
   * is the ACK to FreeSWITCH — each side answers the other's offer. Queued
   * with the other SDP work. FreeSWITCH failing to offer gives the party
   * 500 with Retry-After (the call goes on); an ACK without SDP, or none
   * within 64·T1, answers FreeSWITCH with the party's previous SDP (its
   * media did not change; the call goes on, as on the embedded engine).
   */
  #offerFromEndpoint(cseq: number, send: SendFinal, timer: Record<string, string>): void {
    this.#sdpQueue = this.#sdpQueue.then(async () => {
      const endpoint = this.#endpoint;
      if (this.#end || !endpoint) return; // #finish answered it
      const asked = offerlessModify(endpoint);
      let offer: EndpointOffer;
      try {
        offer = await withTimeout(asked, MODIFY_TIMEOUT_MS, 'timed out');
      } catch (err) {
        // An offer that comes after all is still ACKed: drachtio-srf holds the endpoint's next re-INVITE until then.
        asked.then((late) => late.ack(this.#sdpApplied), () => undefined);
        this.#log.warn({ err: (err as Error).message }, 'media endpoint gave no offer for the party\'s offerless re-INVITE');
        return send(500, { headers: { 'Retry-After': '1' } });
      }
      if (this.#end) return offer.ack(this.#sdpApplied);
      const answered = new Promise<string | undefined>((resolve) => (this.#awaitingAck = { cseq, resolve }));
      send(200, { body: offer.sdp, headers: { 'Content-Type': 'application/sdp', ...timer } });
      const answer = await withTimeout(answered, ACK_TIMEOUT_MS, 'no ACK').catch(() => {
        this.#awaitingAck = undefined;
        this.#log.warn('no ACK for our 2xx to the party\'s offerless re-INVITE');
        return undefined;
      });
      const used = answer ?? this.#sdpApplied;
      offer.ack(used);
      this.#sdpApplied = used;
      this.#sdpAnswer = offer.sdp;
    });
  }

  /** `res` as a once-only sender, owed until it is used or the leg ends ({@link #finish} sends 487). */
  #owe(res: Srf.SrfResponse): SendFinal {
    this.#owed.add(res);
    return (status, opts) => {
      if (!this.#owed.delete(res)) return;
      res.send(status, opts);
    };
  }

  #onInviteFailed(err: unknown): void {
    if (this.#end) return; // e.g. the 487 after our CANCEL
    const { status, reason, res } = err as { status?: unknown; reason?: unknown; res?: Srf.SrfResponse };
    if (typeof status === 'number' && status >= 300) {
      this.#log.debug(`< ${status} ${String(reason ?? '')}`);
      const contacts = redirectContacts(status, parsedContacts(res));
      this.#finish({
        by: 'remote',
        sipStatus: status,
        reason: `${status} ${typeof reason === 'string' ? reason : ''}`.trim(),
        ...(contacts ? { redirectContacts: contacts } : {}),
      });
    } else {
      this.#log.error({ err: (err as Error).message }, 'INVITE failed');
      this.#finish({ by: 'engine', reason: `INVITE failed: ${(err as Error).message}` });
    }
  }

  /**
   * Queues `sdp` (if new) for the endpoint, then `then` — so events follow
   * the media they announce. When FreeSWITCH refuses it: `refused` if given
   * (the call goes on), else the leg ends.
   */
  #applySdp(sdp: string | undefined, then: () => void, refused?: () => void): void {
    this.#sdpQueue = this.#sdpQueue
      .then(async () => {
        const endpoint = this.#endpoint;
        const link = this.#link; // set with the endpoint, before it
        if (this.#end || !endpoint || !link) return;
        if (sdp && sdp !== this.#sdpApplied) {
          this.#sdpApplied = sdp;
          this.#sdpAnswer = await link.mediaRequests.time(withTimeout(endpoint.modify(sdp), MODIFY_TIMEOUT_MS, 'timed out'));
        }
        if (!this.#end) then();
      })
      .catch((err: unknown) => {
        if (refused) {
          this.#sdpApplied = undefined;
          this.#log.warn({ err: (err as Error).message }, 'media endpoint refused the far end offer');
          return refused();
        }
        this.#log.error({ err: (err as Error).message }, 'media endpoint rejected the far end SDP');
        this.terminate({ by: 'engine', reason: `media endpoint rejected the far end SDP: ${(err as Error).message}` });
      });
  }

  #reportInvite(invite: Srf.SrfRequest, endpoint: Mrf.Endpoint): void {
    const txnId = (invite as unknown as { readonly stackTxnId?: string }).stackTxnId;
    const localTag = (invite.getParsedHeader('from') as { params?: Record<string, string> } | undefined)?.params?.tag;
    if (!txnId || !localTag || !this.#link) return;
    this.#ctx.inviteSent({
      engine: 'drachtio',
      kind: 'invite',
      txnId,
      callId: invite.get('Call-ID'),
      localTag,
      requestUri: this.#request.requestUri,
      freeswitch: this.#link.name,
      uuid: endpoint.uuid,
    });
  }

  #cancel(invite: Srf.SrfRequest): void {
    this.#log.debug('> CANCEL');
    try {
      invite.cancel((err: unknown) => {
        if (err) this.#log.warn({ err: String(err) }, 'CANCEL failed');
      });
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, 'CANCEL failed');
    }
  }

  #bye(dialog: Srf.Dialog): void {
    this.#log.debug('> BYE');
    const sent = new Promise<void>((resolve) => {
      try {
        dialog.destroy(undefined, (err: unknown) => {
          if (err) this.#log.warn({ err: String(err) }, 'BYE failed');
          resolve();
        });
      } catch (err) {
        this.#log.warn({ err: (err as Error).message }, 'BYE failed');
        resolve();
      }
    });
    this.#cleanups.push(withTimeout(sent, TEARDOWN_TIMEOUT_MS, 'no answer to BYE'));
  }

  /** Decides the end once: playback stops now, the endpoint goes, `ended` follows on the next tick. */
  #finish(end: LegEnd): void {
    if (this.#end) return;
    this.#end = end;
    const fields = { by: end.by, sipStatus: end.sipStatus, reason: end.reason };
    if (end.by === 'engine') this.#log.warn(fields, 'ended');
    else this.#log.info(fields, 'ended');
    if (this.#playing) this.#playing.stopped = true;
    // RFC 3261 §15.1.2: requests pending when the dialog ends get 487, before our BYE goes out.
    for (const res of this.#owed) {
      try {
        res.send(487);
      } catch (err) {
        this.#log.debug({ err: (err as Error).message }, 'cannot answer a pending request');
      }
    }
    this.#owed.clear();
    this.#awaitingAck?.resolve(undefined);
    this.#awaitingAck = undefined;
    this.#signalEnd();
    this.#releaseEndpoint();
    process.nextTick(() => this.emit('ended', end));
  }

  /** Hangs up the FreeSWITCH channel, by uuid_kill when the endpoint will not go by itself. */
  #releaseEndpoint(): void {
    const endpoint = this.#endpoint;
    const link = this.#link;
    if (!endpoint || !link || this.#endpointReleased) return;
    this.#endpointReleased = true;
    const released = withTimeout(endpoint.destroy(), TEARDOWN_TIMEOUT_MS, 'timed out')
      .catch(async (err: unknown) => {
        this.#log.warn({ err: (err as Error).message, uuid: endpoint.uuid }, 'endpoint teardown failed: uuid_kill');
        await this.api(`uuid_kill ${endpoint.uuid}`);
      })
      .finally(() => link.endpoints--);
    this.#endpointGone = released;
    this.#cleanups.push(released);
  }
}

/**
 * What our 2xx to a party's refresh says of the session timer (RFC 4028 §9):
 * its interval and refresher again, rebuilt from the parsed value (never the
 * party's raw text), with `Require: timer` when the party refreshes. Only
 * when the party named the refresher: without one, drachtio-server (which
 * runs the timer) picks it by its own rule, which we cannot see.
 */
function refreshAnswerHeaders(value: string | undefined): Record<string, string> {
  const se = parseSessionExpires(value);
  if (typeof se !== 'object' || se.refresher === undefined) return {};
  return { 'Session-Expires': `${se.seconds};refresher=${se.refresher}`, ...(se.refresher === 'uac' ? { Require: 'timer' } : {}) };
}

/** The CSeq number of a request (0 when unreadable). */
function cseqNumber(req: Srf.SrfRequest): number {
  return Number.parseInt(req.get('CSeq') ?? '', 10) || 0;
}

/** A re-INVITE without SDP to FreeSWITCH (drachtio-srf `Dialog.modify` with `noAck`: the ACK is ours to send, with an answer). */
function offerlessModify(endpoint: Mrf.Endpoint): Promise<EndpointOffer> {
  return new Promise((resolve, reject) => {
    endpoint.dialog.modify({ noAck: true }, (err: unknown, sdp?: string, ack?: (answer: string) => void) => {
      if (err) return reject(err instanceof Error ? err : new Error(String(err)));
      if (!ack) return reject(new Error('drachtio-srf ACKed the offer itself'));
      if (!sdp) {
        ack('');
        return reject(new Error('FreeSWITCH answered an offerless re-INVITE without SDP'));
      }
      resolve({ sdp, ack: (answer) => ack(answer ?? '') });
    });
  });
}

/** A failure response's Contact header as drachtio-srf parses it; undefined when absent or unparsable (its parser throws on garbage). */
function parsedContacts(res: Srf.SrfResponse | undefined): unknown {
  try {
    return res?.has('Contact') ? res.getParsedHeader('Contact') : undefined;
  } catch {
    return undefined;
  }
}
