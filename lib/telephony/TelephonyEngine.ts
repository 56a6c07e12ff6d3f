/**
 * The telephony port: the only surface of the telephony layer that resources
 * see. Each engine (embedded, drachtio) implements it; nothing above this
 * folder may import an engine.
 *
 * Contract every engine keeps:
 * - `dial()` returns the leg at once and never throws for call failures; the
 *   outcome arrives as leg events, never synchronously (listeners attached
 *   right after `dial()` see every event).
 * - Every leg emits `ended` exactly once, whatever happened, including when
 *   the engine loses its media server or signaling connection.
 * - `hangup()` is idempotent: CANCEL before a final response, BYE after
 *   answer, nothing once ended.
 * - Never ring a person the call cannot reach (issue 11, kind 8): a resource
 *   that dials a second party after the first answered `reserve()`s that
 *   party's media first, and admission control asks `saturation()` before
 *   any work is accepted.
 */
import type { TypedEmitter } from '../util/TypedEmitter.js';

/** A SIP gateway as routing resolved it for one leg. */
export interface GatewayTarget {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly transport: 'udp' | 'tcp';
  /** Digest credentials for gateways that challenge (401/407). */
  readonly username?: string;
  readonly password?: string;
}

export interface DialRequest {
  /** Request-URI of the INVITE, e.g. `sip:13800000000@gw.example.net`. */
  readonly requestUri: string;
  /** From URI: the caller id shown to the party. */
  readonly fromUri: string;
  /** Where the INVITE goes (next hop) and whose credentials answer a challenge. */
  readonly gateway: GatewayTarget;
  /** For logs only: names the resource and party, e.g. `0.0.0-ext.duo_callback-12#1`. */
  readonly label: string;
  /**
   * Legs of one group (one resource) may be bridged together: an engine with
   * several media servers keeps a group on one of them. Absent: a group of one.
   */
  readonly group?: string;
  /**
   * Media obtained earlier by {@link TelephonyEngine.reserve} for this leg:
   * the leg uses it instead of obtaining its own, and from then on releases
   * it. One of another engine, or one already used, is ignored.
   */
  readonly reservation?: MediaReservation;
}

/**
 * What one leg of a call needs from the engine before its INVITE can go
 * out, obtained ahead of time: the drachtio engine's FreeSWITCH endpoint,
 * the embedded engine's RTP port.
 */
export interface MediaReservation {
  /** Gives the media back unless a dial() took it; idempotent. */
  release(): void;
}

/** The outcome of {@link TelephonyEngine.reserve}: never a rejected promise. */
export type ReserveResult =
  | { readonly ok: true; readonly reservation: MediaReservation }
  /** `reason`: e.g. `cannot create media endpoint: Connection timeout`, `no free RTP port`. */
  | { readonly ok: false; readonly reason: string };

/** Why an engine should take no new call now (admission control, issue 11 kind 8). */
export type SaturationCause =
  /** drachtio: FreeSWITCH endpoints being created (or queued for creation) reached `admission.maxEndpointsPending`, or creating one takes longer than `admission.maxEndpointCreateMs`. */
  | 'endpoints_pending'
  /** drachtio: endpoints started in the last second reached `admission.maxEndpointsPerSecond` (default: FreeSWITCH's sessions-per-second). */
  | 'endpoint_rate'
  /** drachtio: FreeSWITCH applies a call's SDP or bridge slower than `admission.maxMediaRequestMs`. */
  | 'media_requests_slow'
  /** Both: INVITEs without a final response reached `admission.maxPendingInvites`. */
  | 'pending_invites'
  /** embedded: fewer free RTP ports than the new call's legs. */
  | 'rtp_ports';

export interface EngineSaturation {
  readonly cause: SaturationCause;
  /** For the client and logs, e.g. `24 FreeSWITCH endpoints pending (limit 24)`. */
  readonly message: string;
  /** When asking again may succeed, ms (at least 1). */
  readonly retryAfterMs: number;
}

/** How a leg ended. */
export interface LegEnd {
  /** `remote`: the far end (BYE or a final failure response); `local`: our hangup(); `engine`: the engine failed. */
  readonly by: 'remote' | 'local' | 'engine';
  /** The SIP final status that failed the call (>= 300), or a local 408 when the far end never answered the INVITE. */
  readonly sipStatus?: number;
  /** Human-readable cause for logs and error messages, e.g. `486 Busy Here`. */
  readonly reason: string;
  /**
   * With `by: 'engine'`: the engine ended the leg because of what the far end
   * did, so the failure is the far end's doing, never `engine_error` (issue
   * 11, docs/errors.md). The value is the error reported: `'rejected'` for an
   * answer without usable media; `'timeout'` when the far end stopped
   * refreshing the session (RFC 4028 session timer expired, or a refresh got
   * 408/481).
   */
  readonly farEndFault?: 'rejected' | 'timeout';
  /**
   * With a 300, 301 or 302 (RFC 3261 §8.1.3.4): the response's Contact URIs,
   * highest q first, as the far end wrote them (unchecked: at most
   * {@link MAX_REDIRECT_CONTACTS}). Engines never follow a redirect
   * themselves: the routing layer, which knows the gateways, decides.
   */
  readonly redirectContacts?: readonly string[];
}

/** Contacts of one 3xx passed on (a far end may list thousands); the rest are dropped. */
export const MAX_REDIRECT_CONTACTS = 8;

export interface LegProgress {
  /** 180, 181, 182 or 183. */
  readonly sipStatus: number;
  /**
   * True when early media is flowing. Embedded engine: once the far end's RTP
   * arrives after an 18x with SDP (RFC 3960: a 183 with SDP may never send
   * any), reported by a further `progress` with the 18x's status; until then
   * false. drachtio engine: when the 18x carries usable SDP.
   */
  readonly earlyMedia: boolean;
}

/** The DTMF keys of RFC 4733 §3.2, by event code 0–15. */
export const DTMF_KEYS = '0123456789*#ABCD';

/** One key press: exactly one character of DTMF_KEYS (`0-9 * # A-D`). */
export type DtmfKey = string;

/** Where a key press came from (for logs and tests). */
export type DtmfSource = 'rfc4733' | 'sip_info' | 'media_server';

export type CallLegEvents = {
  progress: (progress: LegProgress) => void;
  answered: () => void;
  ended: (end: LegEnd) => void;
  /**
   * The far end pressed a key (after answer only). Engines emit one event
   * per key press however many packets or requests carried it, and only
   * valid keys; a leg emits at most `MAX_DTMF_PER_SECOND` per second
   * (more is a flood: dropped and logged).
   */
  dtmf: (key: DtmfKey, source: DtmfSource) => void;
};

/** Key presses per second a leg passes on: a person presses at most ~10 (ITU-T Q.24 minimum 40 ms tone + 40 ms pause ≈ 12). */
export const MAX_DTMF_PER_SECOND = 20;

/** Which channel of a leg recording carries what the far end sends; the other carries what it hears. */
export type FarEndChannel = 'left' | 'right';

/** A running recording of one leg ({@link CallLeg.record}). */
export interface LegRecording {
  /**
   * Stops recording and finishes the file (WAV sizes written); resolves once
   * the file is complete. Idempotent; after the leg ended it resolves at once
   * (the engine finished the file with the leg).
   */
  stop(): Promise<void>;
}

export interface PlayResult {
  /** False when stopPlay(), hangup or the leg's end cut the playback short. */
  readonly completed: boolean;
}

/** One party's call: a SIP dialog (or attempt) with its media anchored in the engine. */
export interface CallLeg extends TypedEmitter<CallLegEvents> {
  readonly id: string;
  /**
   * Plays `files` (absolute paths) in order, the whole list `repeat + 1` times.
   * Only after `answered`, or during early media on the engine's side of a
   * dialled leg. Settles when done, stopped or the leg ends; rejects only on
   * an engine failure (e.g. unreadable file).
   */
  play(files: readonly string[], repeat: number): Promise<PlayResult>;
  /** Stops the current playback, if any. */
  stopPlay(): void;
  /**
   * Starts a stereo WAV recording (8 kHz, 16-bit PCM) of this leg at `path`
   * (absolute): what the far end sends (early media, then its voice) in
   * `farEnd`'s channel, what it hears (files played to it, the bridged
   * party) in the other. Allowed from `dial()` on: it runs on wall-clock
   * time, silence while no media flows, until `stop()` or the leg's end,
   * through any bridge. Seed 000 `record_mode` 1/2 start it at dialling.
   * Rejects when the leg has ended or the file cannot be written.
   */
  record(path: string, farEnd: FarEndChannel): Promise<LegRecording>;
  /** CANCEL before answer, BYE after; idempotent. */
  hangup(): void;
}

/** Media connection between two legs (record it with {@link CallLeg.record} on either leg). */
export interface MediaBridge {
  /** Stops relaying; idempotent. */
  close(): Promise<void>;
}

export type TelephonyEngineEvents = {
  /** Emitted whenever `available` changes. */
  availability: (available: boolean, reason: string) => void;
  /**
   * A leg's INVITE is about to be sent or its dialog was confirmed (`state`:
   * what {@link TelephonyEngine.endStaleDialogs} of the same engine needs to
   * end it after a restart, opaque text; a later state replaces the earlier)
   * or the leg is over (`state` null). `group` is the leg's
   * {@link DialRequest.group} (issue 9).
   */
  dialog: (group: string, legId: string, state: string | null) => void;
};

export interface TelephonyEngine extends TypedEmitter<TelephonyEngineEvents> {
  readonly name: string;
  /** False while the engine cannot place calls (not connected, stopped). */
  readonly available: boolean;
  start(): Promise<void>;
  /** Ends every leg and releases the engine's sockets and connections. */
  stop(): Promise<void>;
  dial(request: DialRequest): CallLeg;
  /**
   * Obtains now the media a leg of `group` dialled later will need, so that
   * a second party is only called once the first's call can be completed.
   * Never rejects; the reservation is held until a dial() takes it or
   * release() gives it back.
   */
  reserve(group: string): Promise<ReserveResult>;
  /**
   * Admission control: undefined when a new call of `legs` legs may start
   * now, else why not and when to ask again. Cheap (counters only): asked
   * at every construct.
   */
  saturation(legs: number): EngineSaturation | undefined;
  /**
   * Set by the server when it stores `dialog` states: resolves once every
   * state emitted so far is durable. An engine that reports INVITEs before
   * sending them (embedded) waits for it in between, so that a crash can
   * never leave an INVITE the store does not know of (issue 9).
   */
  dialogsDurable?: () => Promise<void>;
  /**
   * Connects the media of two legs both ways. `b` may still be in early
   * media: `a` then hears `b`'s ringback. The bridge ends by itself when
   * either leg ends.
   */
  bridge(a: CallLeg, b: CallLeg): Promise<MediaBridge>;
  /**
   * After a crash and restart: ends the calls a previous run left up, from
   * the `dialog` states it stored (embedded: a BYE per confirmed dialog, a
   * CANCEL per pending INVITE and an ACK+BYE for its late 2xx). Resolves
   * with how many were sent; a state it cannot read is skipped. Engines
   * without it leave such calls to the far ends' timers (issue 9).
   */
  endStaleDialogs?(states: readonly string[]): Promise<number>;
}
