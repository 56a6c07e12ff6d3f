import type { NotifyCallReleased, ResourceContext } from '../api/generated/types.js';
import type { DtmfKey, LegEnd } from '../telephony/TelephonyEngine.js';
import type { Clock } from '../util/Clock.js';
import type { Logger } from '../util/logger.js';
import type { Party } from './Party.js';
import { droppedByFor, engineError, errorForEndedCall, errorForFailedLeg } from './releaseError.js';
import { Resource, type ReleaseBase, type ResourceIdentity, type Unlogged } from './Resource.js';
import { Timers } from './Timers.js';

export interface NotifyCallPlan {
  /** Absolute paths of the prompt, in play order. */
  readonly files: readonly string[];
  /** Extra plays of the whole list. */
  readonly playRepeat: number;
  /** Longest wait once ringing. */
  readonly maxRingSeconds: number;
  /** Longest wait for any ringing or answer. */
  readonly dialTimeoutSeconds: number;
  /** Key collection (`collect_dtmf`), or null to play and hang up. */
  readonly collect: DtmfCollection | null;
}

/** `collect_dtmf` with its defaults applied and reply files resolved. */
export interface DtmfCollection {
  /** 1–32 keys. */
  readonly maxDigits: number;
  /** Seconds after each play of the prompt to wait for the first key. */
  readonly firstDigitSeconds: number;
  /** Seconds after a key to wait for the next. */
  readonly interDigitSeconds: number;
  /** The key that ends collection early (not collected), or null. */
  readonly terminator: DtmfKey | null;
  /** Whether a key during the prompt stops it and counts (else it is ignored). */
  readonly bargeIn: boolean;
  /** Absolute path of the reply prompt, by the digits collected. */
  readonly replies: ReadonlyMap<string, string>;
}

/**
 * Where an answered call with key collection is (Answered's sub-states):
 * `prompt` (playing round `round` of the prompt) → `waiting` (first-digit
 * timeout; no key: the next round, or done after the last) → `collecting`
 * (inter-digit timeout) → `reply` (the reply for the digits) → released.
 */
type CollectPhase = 'prompt' | 'waiting' | 'collecting' | 'reply';

/**
 * `ext.notify_call`: Initiated → Answered → Released.
 * Dials the callee, plays the prompt `playRepeat + 1` times on answer, hangs up.
 * With key collection, Answered runs the CollectPhase sub-states instead.
 * `cancel()` moves Initiated or Answered to Released.
 */
export class NotifyCall extends Resource<Unlogged<NotifyCallReleased>> {
  readonly resourceClass = 'ext.notify_call' as const;
  readonly #timers: Timers<'dial' | 'ring' | 'digit'>;
  #phase: CollectPhase = 'prompt';
  /** Prompt plays started (1-based): a stopped round's settling must not act for a newer one. */
  #round = 0;
  #digits = '';

  constructor(
    identity: ResourceIdentity,
    private readonly party: Party,
    private readonly plan: NotifyCallPlan,
    clock: Clock,
    log: Logger,
  ) {
    super(identity, clock, log);
    this.#timers = new Timers(clock);
  }

  start(): void {
    this.party.on('progress', (state, p) => this.#onProgress(state === 'EARLY_MEDIA', p.sipStatus));
    this.party.on('answered', () => this.#onAnswered());
    this.party.on('ended', (end) => this.#onEnded(end));
    this.party.on('dtmf', (key) => this.#onKey(key));
    this.reportRedirects(this.party);
    this.#timers.start('dial', this.plan.dialTimeoutSeconds, () =>
      this.release({ code: 'timeout', message: `no ringing or answer within ${this.plan.dialTimeoutSeconds} s` }, 'sys'),
    );
    this.party.dial();
    this.progress('dialing', 1, null);
  }

  /** Allowed in every state: CANCEL while dialling, stop the prompt and BYE once answered. */
  cancel(): void {
    switch (this.state) {
      case 'Initiated':
      case 'Answered':
        this.releaseCancelled();
        return;
      default:
        // Released: already ending; the registry forgets it once on_released is out.
        return;
    }
  }

  context(): ResourceContext {
    return { ...this.baseContext(null), parties: [this.party.context()] };
  }

  #onProgress(earlyMedia: boolean, sipStatus: number): void {
    if (this.released) return;
    this.#timers.cancel('dial');
    this.#timers.start('ring', this.plan.maxRingSeconds, () =>
      this.release({ code: 'no_answer', message: `not answered within ${this.plan.maxRingSeconds} s of ringing` }, 'sys'),
    );
    this.progress(earlyMedia ? 'early_media' : 'ringing', 1, sipStatus);
  }

  #onAnswered(): void {
    if (this.released) return;
    this.#timers.cancelAll();
    this.answerTime = this.clock.now();
    this.setState('Answered');
    this.progress('answered', 1, 200);
    if (this.plan.collect) return this.#playRound();
    this.party.play(this.plan.files, this.plan.playRepeat).then(
      (result) => {
        if (result.completed) this.release(null, 'sys');
      },
      (err: unknown) => this.release(engineError('playing the prompt failed', err), 'sys'),
    );
  }

  /** One play of the prompt, then the first-digit wait. */
  #playRound(): void {
    const round = ++this.#round;
    this.#phase = 'prompt';
    this.party.play(this.plan.files, 0).then(
      () => {
        // Stopped by a key (barge-in) or the end: the key's phase or release decides.
        if (this.released || round !== this.#round || this.#phase !== 'prompt') return;
        this.#phase = 'waiting';
        this.#timers.start('digit', this.plan.collect!.firstDigitSeconds, () => this.#onNoKey());
      },
      (err: unknown) => this.release(engineError('playing the prompt failed', err), 'sys'),
    );
  }

  /** No first key within the wait after the prompt: play it again while rounds are left. */
  #onNoKey(): void {
    if (this.#round <= this.plan.playRepeat) this.#playRound();
    else this.#finishCollecting();
  }

  #onKey(key: DtmfKey): void {
    const collect = this.plan.collect;
    if (this.released || this.state !== 'Answered' || !collect) return;
    switch (this.#phase) {
      case 'prompt':
        if (!collect.bargeIn) return; // keys during the prompt are not collected
        this.#phase = 'collecting';
        this.party.stopPlay();
        break;
      case 'waiting':
        this.#phase = 'collecting';
        break;
      case 'collecting':
        break;
      case 'reply':
        return;
    }
    if (key === collect.terminator) return this.#finishCollecting();
    this.#digits += key;
    this.progress('dtmf', 1, null, { dtmf: this.#digits });
    if (this.#digits.length >= collect.maxDigits) return this.#finishCollecting();
    this.#timers.start('digit', collect.interDigitSeconds, () => this.#finishCollecting());
  }

  /** Collection is over: the reply for the digits (if any), then hang up. */
  #finishCollecting(): void {
    this.#timers.cancel('digit');
    this.#phase = 'reply';
    const reply = this.plan.collect?.replies.get(this.#digits);
    if (reply === undefined) return this.release(null, 'sys');
    this.party.play([reply], 0).then(
      (result) => {
        if (result.completed) this.release(null, 'sys');
      },
      (err: unknown) => this.release(engineError('playing the reply failed', err), 'sys'),
    );
  }

  #onEnded(end: LegEnd): void {
    if (this.released) return;
    const answered = this.state === 'Answered';
    this.release(answered ? errorForEndedCall(end) : errorForFailedLeg(end), droppedByFor(end));
  }

  protected async teardown(): Promise<void> {
    this.#timers.cancelAll();
    await this.party.hangup();
  }

  protected releaseParams(base: ReleaseBase): Unlogged<NotifyCallReleased> {
    return this.plan.collect ? { ...base, dtmf: this.#digits } : base;
  }
}
