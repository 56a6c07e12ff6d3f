import type { NotifyCallReleased, ResourceContext } from '../api/generated/types.js';
import type { LegEnd } from '../telephony/TelephonyEngine.js';
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
}

/**
 * `ext.notify_call`: Initiated → Answered → Released.
 * Dials the callee, plays the prompt `playRepeat + 1` times on answer, hangs up.
 * `cancel()` moves Initiated or Answered to Released.
 */
export class NotifyCall extends Resource<Unlogged<NotifyCallReleased>> {
  readonly resourceClass = 'ext.notify_call' as const;
  readonly #timers: Timers<'dial' | 'ring'>;

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
    this.party.play(this.plan.files, this.plan.playRepeat).then(
      (result) => {
        if (result.completed) this.release(null, 'sys');
      },
      (err: unknown) => this.release(engineError('playing the prompt failed', err), 'sys'),
    );
  }

  #onEnded(end: LegEnd): void {
    if (this.released) return;
    const answered = this.state === 'Answered';
    this.release(answered ? errorForEndedCall(end) : errorForFailedLeg(end), droppedByFor(end));
  }

  protected async teardown(): Promise<void> {
    this.#timers.cancelAll();
    this.party.hangup();
  }

  protected releaseParams(base: ReleaseBase): Unlogged<NotifyCallReleased> {
    return base;
  }
}
