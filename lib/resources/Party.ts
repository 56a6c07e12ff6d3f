import { TypedEventEmitter } from '../util/TypedEmitter.js';
import type { ChannelState, DroppedBy, PartyContext } from '../api/generated/types.js';
import type { Route } from '../routing/GatewayRouter.js';
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
};

/**
 * One party of a resource: its route (gateway slot), its call leg once
 * dialled, and its channel state for the resource's context.
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

  constructor(
    readonly number: 1 | 2,
    private readonly route: Route,
    private readonly engine: TelephonyEngine,
    private readonly clock: Clock,
    /** The resource's id: groups its legs for the engine. */
    private readonly group: string,
  ) {
    super();
  }

  get state(): ChannelState {
    return this.#state;
  }

  get leg(): CallLeg | undefined {
    return this.#leg;
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
    const leg = this.engine.dial({
      requestUri: this.route.target.requestUri,
      fromUri: this.route.fromUri,
      gateway: this.route.target.gateway,
      label: `${this.group}#${this.number}`,
      group: this.group,
      ...(reservation ? { reservation } : {}),
    });
    this.#leg = leg;
    this.#state = 'CREATED';
    this.#dialTime = this.clock.now();
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
   * CDR keeps.
   */
  hangup(): Promise<void> {
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
    leg.hangup();
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

  #onEnded(end: LegEnd): void {
    this.#state = 'RELEASED';
    if (end.sipStatus !== undefined) this.#sipStatus = end.sipStatus;
    this.#endTime = this.clock.now();
    this.#releaseInitiator = droppedByFor(end);
    this.route.release();
    this.emit('ended', end);
  }
}
