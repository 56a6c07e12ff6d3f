import { TypedEventEmitter } from '../util/TypedEmitter.js';
import type { ChannelState, DroppedBy, PartyContext, Redirect } from '../api/generated/types.js';
import type { Route } from '../routing/GatewayRouter.js';
import { chooseRedirect } from '../routing/Redirect.js';
import type { CallLeg, DtmfKey, LegEnd, LegProgress, MediaReservation, PlayResult, TelephonyEngine } from '../telephony/TelephonyEngine.js';
import { unixSeconds, type Clock } from '../util/Clock.js';
import { droppedByFor } from './releaseError.js';

export type PartyEvents = {
  /** Channel state moved to RINGING or EARLY_MEDIA. */
  progress: (state: 'RINGING' | 'EARLY_MEDIA', progress: LegProgress) => void;
  answered: () => void;
  ended: (end: LegEnd) => void;
  /** The party pressed a key (answered only; the engine validated it). */
  dtmf: (key: DtmfKey) => void;
  /** A 3xx was followed: the party is being dialled at `redirect.to_uri` (state CREATED again). */
  redirected: (redirect: Redirect) => void;
};

/**
 * One party of a resource: its route (gateway slot), its call leg once
 * dialled, and its channel state for the resource's context.
 *
 * Redirects (RFC 3261 §8.1.3.4): a leg ended by a 300/301/302 is replaced
 * by a new leg (a new INVITE, new Call-ID) to the Contact's user part at
 * the same gateway and slot (lib/routing/Redirect.ts), up to `maxRedirects`
 * times; the resource sees `redirected`, not `ended`, and the party is back
 * in CREATED: the new callee's ringing is reported again. A 3xx not followed
 * (limit reached, loop, no usable Contact) ends the party with its status
 * and the reason appended, e.g. `302 Moved Temporarily (redirect not
 * followed: redirect loop (1000 already dialled))`.
 */
export class Party extends TypedEventEmitter<PartyEvents> {
  #state: ChannelState = 'NONE';
  #leg: CallLeg | undefined;
  /** Media obtained before the party is dialled (TelephonyEngine.reserve); the leg takes it. */
  #reservation: MediaReservation | undefined;
  #sipStatus: number | null = null;
  #dialTime: number | null = null;
  #ringTime: number | null = null;
  #answerTime: number | null = null;
  #endTime: number | null = null;
  #releaseInitiator: DroppedBy | null = null;
  /** The Request-URI of the current leg: the route's, then each redirect's. */
  #requestUri: string;
  readonly #redirects: Redirect[] = [];
  /** User parts dialled, for loop detection. */
  readonly #usersDialled: Set<string>;
  /** Set by hangup(): a 3xx that crossed it is not followed. */
  #hungUp = false;
  /** A 3xx is being followed: the old leg has ended and the new one waits for its media. */
  #redialling = false;

  constructor(
    readonly number: 1 | 2,
    private readonly route: Route,
    private readonly engine: TelephonyEngine,
    private readonly clock: Clock,
    /** The resource's id: groups its legs for the engine. */
    private readonly group: string,
    /** 3xx followed at most (config `limits.maxRedirects`). */
    private readonly maxRedirects: number,
  ) {
    super();
    this.#requestUri = route.target.requestUri;
    this.#usersDialled = new Set([route.target.user]);
  }

  get state(): ChannelState {
    return this.#state;
  }

  get leg(): CallLeg | undefined {
    return this.#leg;
  }

  /** True between a followed 3xx and its new leg (media being reserved). */
  get redialling(): boolean {
    return this.#redialling;
  }

  /** Holds media reserved for this party until dial() hands it to the leg, or hangup() gives it back. */
  hold(reservation: MediaReservation): void {
    if (this.#state !== 'NONE' || this.#reservation) return reservation.release();
    this.#reservation = reservation;
  }

  dial(): void {
    if (this.#state !== 'NONE') return;
    const reservation = this.#reservation;
    this.#reservation = undefined;
    this.#state = 'CREATED';
    this.#dialTime = this.clock.now();
    this.#dialLeg(reservation);
  }

  #dialLeg(reservation: MediaReservation | undefined): void {
    const leg = this.engine.dial({
      requestUri: this.#requestUri,
      fromUri: this.route.fromUri,
      gateway: this.route.target.gateway,
      label: `${this.group}#${this.number}`,
      group: this.group,
      ...(reservation ? { reservation } : {}),
    });
    this.#leg = leg;
    leg.on('progress', (p) => this.#onProgress(p));
    leg.on('answered', () => this.#onAnswered());
    leg.once('ended', (end) => this.#onEnded(end));
    leg.on('dtmf', (key) => {
      if (this.#state === 'ANSWERED') this.emit('dtmf', key);
    });
  }

  play(files: readonly string[], repeat: number): Promise<PlayResult> {
    if (!this.#leg) return Promise.resolve({ completed: false });
    return this.#leg.play(files, repeat);
  }

  stopPlay(): void {
    this.#leg?.stopPlay();
  }

  /**
   * Ends the call (CANCEL or BYE), or gives back the slot and reserved media
   * of a party never dialled. Resolves once the leg's `ended` has been
   * handled (engines emit it a tick after hangup(), not after the BYE's
   * answer), so that the party's end time and initiator are in the context a
   * CDR keeps. Between a followed 3xx and its new INVITE (media being
   * reserved) it resolves when the party ends instead of dialling.
   */
  hangup(): Promise<void> {
    this.#hungUp = true;
    const leg = this.#leg;
    if (!leg) {
      if (this.#state === 'NONE') {
        this.#state = 'RELEASED';
        this.route.release();
        this.#reservation?.release();
        this.#reservation = undefined;
      }
      return Promise.resolve();
    }
    if (this.#state === 'RELEASED') return Promise.resolve();
    const ended = new Promise<void>((resolve) => this.once('ended', () => resolve()));
    if (!this.#redialling) leg.hangup();
    return ended;
  }

  context(): PartyContext {
    const time = (ms: number | null): number | null => (ms === null ? null : unixSeconds(ms));
    return {
      party: this.number,
      from_uri: this.#leg ? this.route.fromUri : null,
      to_uri: this.#leg ? this.route.target.requestUri : null,
      gateway: this.#leg ? this.route.target.gateway.name : null,
      state: this.#state,
      sip_status: this.#sipStatus,
      dial_time: time(this.#dialTime),
      ring_time: time(this.#ringTime),
      answer_time: time(this.#answerTime),
      end_time: time(this.#endTime),
      release_initiator: this.#releaseInitiator,
      ...(this.#redirects.length > 0 ? { redirects: [...this.#redirects] } : {}),
    };
  }

  #onProgress(progress: LegProgress): void {
    this.#sipStatus = progress.sipStatus;
    const state = progress.earlyMedia ? 'EARLY_MEDIA' : 'RINGING';
    // Only CREATED → RINGING → EARLY_MEDIA moves: repeated 180s, or a 180 after early media, change nothing.
    const moves = this.#state === 'CREATED' || (this.#state === 'RINGING' && state === 'EARLY_MEDIA');
    if (!moves) return;
    this.#ringTime ??= this.clock.now();
    this.#state = state;
    this.emit('progress', state, progress);
  }

  #onAnswered(): void {
    if (this.#state === 'ANSWERED' || this.#state === 'RELEASED') return;
    this.#state = 'ANSWERED';
    this.#sipStatus = 200;
    this.#answerTime = this.clock.now();
    this.emit('answered');
  }

  /** The redirects followed so far, in order. */
  get redirects(): readonly Redirect[] {
    return this.#redirects;
  }

  #onEnded(end: LegEnd): void {
    if (end.redirectContacts && end.sipStatus !== undefined && this.#state !== 'RELEASED' && !this.#hungUp) {
      const refused = this.#followRedirect(end.sipStatus, end.redirectContacts);
      if (refused === undefined) return;
      end = { by: end.by, sipStatus: end.sipStatus, reason: `${end.reason} (redirect not followed: ${refused})` };
    }
    this.#end(end);
  }

  #end(end: LegEnd): void {
    this.#state = 'RELEASED';
    if (end.sipStatus !== undefined) this.#sipStatus = end.sipStatus;
    this.#endTime = this.clock.now();
    this.#releaseInitiator = droppedByFor(end);
    this.route.release();
    this.emit('ended', end);
  }

  /** Dials the 3xx's target in place of the ended leg; the reason it is not followed otherwise. */
  #followRedirect(sipStatus: number, contacts: readonly string[]): string | undefined {
    if (this.#redirects.length >= this.maxRedirects) return `more than ${this.maxRedirects} redirects`;
    const choice = chooseRedirect(contacts, this.route.target.gateway, this.#usersDialled);
    if ('problem' in choice) return choice.problem;
    const redirect: Redirect = { party: this.number, from_uri: this.#requestUri, to_uri: choice.requestUri, sip_status: sipStatus };
    this.#redirects.push(redirect);
    this.#usersDialled.add(choice.user);
    this.#requestUri = choice.requestUri;
    this.#state = 'CREATED';
    void this.#redial(redirect);
    return undefined;
  }

  /**
   * The redirect's new leg gets fresh media the way the first dial did
   * (TelephonyEngine.reserve for the group; the old leg gave its own back
   * when it ended). No media: the party ends as an engine failure
   * (`engine_error`, like a resource that could not reserve before
   * dialling, docs/errors.md). A hang-up while reserving ends the party
   * without the new INVITE.
   */
  async #redial(redirect: Redirect): Promise<void> {
    this.#redialling = true;
    const result = await this.engine.reserve(this.group);
    this.#redialling = false;
    if (this.#hungUp) {
      if (result.ok) result.reservation.release();
      return this.#end({ by: 'local', reason: `hung up before the redirect to ${redirect.to_uri} was dialled` });
    }
    if (!result.ok) {
      return this.#end({ by: 'engine', reason: `media for the redirect to ${redirect.to_uri} could not be had (${result.reason})` });
    }
    this.#dialLeg(result.reservation);
    this.emit('redirected', redirect);
  }
}
