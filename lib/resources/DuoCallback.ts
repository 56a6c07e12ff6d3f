import type { DuoCallbackReleased, ResourceContext } from '../api/generated/types.js';
import { ServiceError } from '../errors/ServiceError.js';
import type { LegEnd, LegRecording, MediaBridge, TelephonyEngine } from '../telephony/TelephonyEngine.js';
import { unixSeconds, type Clock } from '../util/Clock.js';
import type { Logger } from '../util/logger.js';
import type { Party } from './Party.js';
import { droppedByFor, engineError, errorForEndedCall, errorForFailedLeg, withoutServerPaths } from './releaseError.js';
import { Resource, type ReleaseBase, type ResourceIdentity, type Unlogged } from './Resource.js';
import { Timers } from './Timers.js';

export type RingPlayMode = 0 | 1 | 2 | 3;

/**
 * When recording starts (seed 000 `record_mode`): 0 once both parties are
 * bridged, 1 when party 1 is dialled, 2 when party 2 is dialled. Always
 * party 1 left, party 2 right.
 */
export type RecordMode = 0 | 1 | 2;

export interface DuoCallbackPlan {
  readonly maxAnswerSeconds: number;
  /** Per party, from when it is dialled. */
  readonly maxRingSeconds: number;
  /** Absolute path, or null to pass party 2's ringback through. */
  readonly ringPlayFile: string | null;
  readonly ringPlayMode: RingPlayMode;
  /** Played to party 1 when party 2 rings without early media and the real ringback should be heard. */
  readonly ringbackFile: string;
  /** The warning played to both parties `seconds` before the talk limit (absolute path), or null. */
  readonly countdown: { readonly seconds: number; readonly file: string } | null;
  /** Absolute path of the recording, the name the client gave (echoed in on_released), when it starts. */
  readonly record: { readonly path: string; readonly name: string; readonly mode: RecordMode } | null;
}

/** What party 1 hears while party 2 is dialled. */
type Party1Hears = 'silence' | 'ring_play_file' | 'ringback_tone' | 'party2';

/** Longest wait for the bridge (and its recording) to close before the calls are hung up anyway. */
const BRIDGE_CLOSE_LIMIT_MS = 3000;

/** Loops a ring tone until it is stopped; far more than any ring timeout allows. */
const LOOP = 10_000;

/**
 * `ext.duo_callback`: Initiated → Answer1 → Answer2 → Connected → Released.
 * Calls party 1; once answered calls party 2 while party 1 hears the ring
 * tone `ringPlayMode` asks for; bridges both when party 2 answers.
 */
export class DuoCallback extends Resource<Unlogged<DuoCallbackReleased>> {
  readonly resourceClass = 'ext.duo_callback' as const;
  readonly #timers: Timers<'ring1' | 'ring2' | 'talk' | 'countdown'>;
  #party1Hears: Party1Hears = 'silence';
  #bridge: Promise<MediaBridge> | undefined;
  #recording: Promise<LegRecording> | undefined;
  /** Whose leg #recording is on: a redirect of that party moves it to the new leg. */
  #recordedParty: Party | undefined;
  #connectTime: number | null = null;

  constructor(
    identity: ResourceIdentity,
    private readonly party1: Party,
    private readonly party2: Party,
    private readonly plan: DuoCallbackPlan,
    private readonly engine: TelephonyEngine,
    clock: Clock,
    log: Logger,
  ) {
    super(identity, clock, log);
    this.#timers = new Timers(clock);
  }

  start(): void {
    for (const party of [this.party1, this.party2]) {
      party.on('progress', (state, p) => {
        if (!this.released) this.progress(state === 'EARLY_MEDIA' ? 'early_media' : 'ringing', party.number, p.sipStatus);
      });
      party.on('ended', (end) => this.#onEnded(party, end));
      this.reportRedirects(party);
    }
    this.party1.on('answered', () => this.#onParty1Answered());
    this.party2.on('progress', (state) => this.#onParty2Ringing(state === 'EARLY_MEDIA'));
    this.party2.on('answered', () => this.#onParty2Answered());
    this.party1.on('redirected', () => this.#onRedirected(this.party1));
    this.party2.on('redirected', () => this.#onRedirected(this.party2));
    void this.#reserveThenDial();
  }

  /**
   * Never ring a person the call cannot reach (issue 11, kind 8): both
   * parties' media (FreeSWITCH endpoint, RTP port) is obtained before party 1
   * is dialled; if either cannot be had, the resource ends before any INVITE
   * (`engine_error`, docs/errors.md).
   */
  async #reserveThenDial(): Promise<void> {
    const results = await Promise.all([this.engine.reserve(this.resId), this.engine.reserve(this.resId)]);
    const failed = results.findIndex((r) => !r.ok);
    if (this.released || failed >= 0) {
      for (const r of results) if (r.ok) r.reservation.release();
      const result = results[failed];
      if (this.released || !result || result.ok) return;
      const party = failed === 0 ? 1 : 2;
      return this.release(
        { code: 'engine_error', message: `nobody was called: media for party ${party} could not be had (${withoutServerPaths(result.reason)})`, party },
        'sys',
      );
    }
    const [r1, r2] = results;
    if (r1?.ok) this.party1.hold(r1.reservation);
    if (r2?.ok) this.party2.hold(r2.reservation);
    this.#dial(this.party1, 'ring1');
    if (this.plan.record?.mode === 1) void this.#record(this.party1);
  }

  /** Allowed until party 2 answers. */
  cancel(): void {
    if (this.state === 'Answer2' || this.state === 'Connected') {
      throw new ServiceError('invalid_state', `cannot cancel in state ${this.state}: party 2 has answered`, {
        res_id: this.resId,
        state: this.state,
      });
    }
    this.releaseCancelled();
  }

  context(): ResourceContext {
    return { ...this.baseContext(this.#connectTime), parties: [this.party1.context(), this.party2.context()] };
  }

  #dial(party: Party, timer: 'ring1' | 'ring2'): void {
    const seconds = this.plan.maxRingSeconds;
    this.#timers.start(timer, seconds, () =>
      this.release(
        { code: 'no_answer', message: `party ${party.number} did not answer within ${seconds} s`, party: party.number },
        'sys',
      ),
    );
    party.dial();
    this.progress('dialing', party.number, null);
  }

  #onParty1Answered(): void {
    if (this.released) return;
    this.#timers.cancel('ring1');
    this.answerTime = this.clock.now();
    this.setState('Answer1');
    this.progress('answered', 1, 200);
    const { ringPlayFile: file, ringPlayMode: mode } = this.plan;
    if (file && mode === 3) {
      // Mode 3: the whole file first, then dial.
      this.#party1Hears = 'ring_play_file';
      this.#play(file, 0).then((completed) => {
        if (!completed || this.released) return;
        this.#party1Hears = 'silence';
        this.#dialParty2();
      });
      return;
    }
    this.#dialParty2();
    if (file && (mode === 1 || mode === 2)) this.#hear('ring_play_file');
  }

  #dialParty2(): void {
    this.#dial(this.party2, 'ring2');
    if (this.plan.record?.mode === 2) void this.#record(this.party2);
  }

  /**
   * Records `party`'s leg from now on, party 1 left whichever leg it is: on
   * party 1's leg its voice is what the far end sends, on party 2's what that
   * leg hears. Resolves false (and releases the call) when it cannot start.
   */
  async #record(party: Party): Promise<boolean> {
    const record = this.plan.record;
    const leg = party.leg;
    if (!record || !leg || this.#recording) return true;
    this.#recordedParty = party;
    const recording = leg.record(record.path, party.number === 1 ? 'left' : 'right');
    this.#recording = recording;
    try {
      await recording;
      return true;
    } catch (err) {
      // A leg that ended meanwhile fails the recording too: its `ended`
      // (emitted on a later tick) names the real cause, so wait for it.
      await new Promise((resolve) => setImmediate(resolve));
      // A leg a 3xx ended: the recording restarts on the new leg (#onRedirected).
      if (party.redialling || this.#recording !== recording) return true;
      this.release(engineError('starting the recording failed', err), 'sys');
      return false;
    }
  }

  /** Party 2's ringback arrived (with or without early media). */
  #onParty2Ringing(earlyMedia: boolean): void {
    if (this.released) return;
    const { ringPlayFile: file, ringPlayMode: mode } = this.plan;
    if (file && mode === 0) return this.#hear('ring_play_file');
    if (file && mode === 2) return;
    // Mode 1 from ringback on, mode 3 and no file: the real ringback.
    this.#hear(earlyMedia ? 'party2' : 'ringback_tone');
  }

  /**
   * A party's new leg (a followed 3xx) rings afresh. The recording follows
   * it (record_mode 1 or 2 record from dialling): it restarts on the new leg
   * into the same file, which then holds the new callee, not the redirected
   * attempt's early media (docs/errors.md, "Redirects").
   */
  #onRedirected(party: Party): void {
    if (this.released) return;
    if (this.#recordedParty === party) {
      this.#recording = undefined;
      void this.#record(party);
    }
    if (party === this.party2) this.#onParty2Redirected();
  }

  /** Party 2's new leg rings afresh: a bridge to the old leg's early media went with that leg. */
  #onParty2Redirected(): void {
    const bridge = this.#bridge;
    this.#bridge = undefined;
    bridge?.then((b) => b.close()).catch(() => undefined);
    if (this.#party1Hears === 'party2') this.#party1Hears = 'silence';
  }

  #onParty2Answered(): void {
    if (this.released) return;
    this.#timers.cancel('ring2');
    this.setState('Answer2');
    this.progress('answered', 2, 200);
    this.#hear('party2');
    void this.#connect();
  }

  async #connect(): Promise<void> {
    try {
      await this.#bridge;
    } catch (err) {
      return this.release(engineError('connecting the parties failed', err), 'sys');
    }
    if (this.plan.record?.mode === 0 && !(await this.#record(this.party1))) return;
    if (this.released) return;
    this.#connectTime = this.clock.now();
    this.setState('Connected');
    this.progress('connected', 2, 200);
    this.#timers.start('talk', this.plan.maxAnswerSeconds, () => this.release(null, 'sys'));
    const countdown = this.plan.countdown;
    if (countdown) this.#timers.start('countdown', this.plan.maxAnswerSeconds - countdown.seconds, () => this.#warn(countdown.file));
  }

  /**
   * Connected's countdown warning: the file to both parties at once (each
   * engine's play over a bridge replaces what that party hears for the
   * file's length); the talk timer and the recording go on. A failed play
   * is logged, not fatal: the call still ends on time.
   */
  #warn(file: string): void {
    if (this.released) return;
    this.progress('countdown', 2, null);
    for (const party of [this.party1, this.party2]) {
      party.play([file], 0).catch((err: unknown) => this.log.warn({ err, party: party.number }, 'playing the countdown warning failed'));
    }
  }

  #hear(what: Party1Hears): void {
    if (this.#party1Hears === what) return;
    const before = this.#party1Hears;
    this.#party1Hears = what;
    if (before === 'ring_play_file' || before === 'ringback_tone') this.party1.stopPlay();
    if (what === 'ring_play_file' && this.plan.ringPlayFile) void this.#play(this.plan.ringPlayFile, LOOP);
    if (what === 'ringback_tone') void this.#play(this.plan.ringbackFile, LOOP);
    if (what === 'party2') this.#ensureBridge();
  }

  /** Resolves true when the file played to its end. */
  async #play(file: string, repeat: number): Promise<boolean> {
    try {
      return (await this.party1.play([file], repeat)).completed;
    } catch (err) {
      this.release(engineError(`playing ${file === this.plan.ringbackFile ? 'the ringback tone' : 'ring_play_file'} failed`, err), 'sys');
      return false;
    }
  }

  #ensureBridge(): void {
    const [a, b] = [this.party1.leg, this.party2.leg];
    if (this.#bridge || !a || !b) return;
    this.#bridge = this.engine.bridge(a, b);
    this.#bridge.catch((err: unknown) =>
      this.release(engineError('bridging the parties failed', err), 'sys'),
    );
  }

  #onEnded(party: Party, end: LegEnd): void {
    if (this.released) return;
    const answered = party.number === 1 ? this.state !== 'Initiated' : this.state === 'Answer2' || this.state === 'Connected';
    const error = answered ? errorForEndedCall(end, party.number) : errorForFailedLeg(end, party.number);
    this.release(error, droppedByFor(end));
  }

  protected async teardown(): Promise<void> {
    this.#timers.cancelAll();
    // The recording is finished while the channels are still up (a media
    // server may only finalize the file on an explicit stop), then the bridge
    // closes; neither may keep the calls up beyond the limit.
    let limit: NodeJS.Timeout | undefined;
    const recorded = this.#recording?.then((recording) => recording.stop()).catch((err: unknown) => this.log.error({ err }, 'finishing the recording failed'));
    const closing = Promise.resolve(recorded).then(() => this.#bridge?.then((bridge) => bridge.close())).catch(() => undefined);
    await Promise.race([closing, new Promise((resolve) => (limit = setTimeout(resolve, BRIDGE_CLOSE_LIMIT_MS)))]);
    clearTimeout(limit);
    await Promise.all([this.party1.hangup(), this.party2.hangup()]);
  }

  protected releaseParams(base: ReleaseBase): Unlogged<DuoCallbackReleased> {
    return {
      ...base,
      connect_time: this.#connectTime === null ? null : unixSeconds(this.#connectTime),
      ...(this.plan.record ? { record_file: this.plan.record.name } : {}),
    };
  }
}
