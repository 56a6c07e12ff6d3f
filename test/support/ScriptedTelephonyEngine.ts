/**
 * A scripted stand-in for the telephony port, for unit tests only: tests
 * decide what each far end does (ring, answer, fail, hang up) and inspect
 * what the resource asked of the engine. The product never runs it.
 */
import type {
  CallLeg,
  CallLegEvents,
  DialRequest,
  EngineSaturation,
  FarEndChannel,
  LegEnd,
  LegRecording,
  MediaBridge,
  MediaReservation,
  PlayResult,
  ReserveResult,
  TelephonyEngine,
  TelephonyEngineEvents,
} from '../../lib/telephony/TelephonyEngine.js';
import { TypedEventEmitter } from '../../lib/util/TypedEmitter.js';

export class ScriptedPlay {
  settled = false;
  completed: boolean | undefined;

  constructor(
    readonly files: readonly string[],
    readonly repeat: number,
    private readonly resolve: (result: PlayResult) => void,
  ) {}

  /** Settles the play as if it ran to its end. */
  finish(): void {
    this.settle(true);
  }

  settle(completed: boolean): void {
    if (this.settled) return;
    this.settled = true;
    this.completed = completed;
    this.resolve({ completed });
  }
}

/** A recording a resource started on a scripted leg. */
export interface ScriptedRecording {
  readonly path: string;
  readonly farEnd: FarEndChannel;
  stopped: boolean;
}

export class ScriptedLeg extends TypedEventEmitter<CallLegEvents> implements CallLeg {
  readonly plays: ScriptedPlay[] = [];
  readonly recordings: ScriptedRecording[] = [];

  hangups = 0;
  ended: LegEnd | undefined;
  answered = false;

  constructor(
    readonly id: string,
    readonly request: DialRequest,
  ) {
    super();
  }

  /** The play in progress, if any. */
  get playing(): ScriptedPlay | undefined {
    return this.plays.find((p) => !p.settled);
  }

  ring(earlyMedia = false): void {
    this.emit('progress', { sipStatus: earlyMedia ? 183 : 180, earlyMedia });
  }

  answer(): void {
    this.answered = true;
    this.emit('answered');
  }

  /** The far end presses keys (as the engine reports them: already validated). */
  press(keys: string): void {
    for (const key of keys) this.emit('dtmf', key, 'rfc4733');
  }

  /** A final failure response from the far end. */
  reject(sipStatus: number, reason = `${sipStatus} from far end`): void {
    this.end({ by: 'remote', sipStatus, reason });
  }

  /** The far end sends BYE. */
  hangUpRemotely(): void {
    this.end({ by: 'remote', reason: 'BYE from far end' });
  }

  /** Ends the leg; a second call emits again, as a faulty engine might. */
  end(end: LegEnd): void {
    this.ended ??= end;
    this.#settlePlays(false);
    this.emit('ended', end);
  }

  play(files: readonly string[], repeat: number): Promise<PlayResult> {
    return new Promise((resolve) => this.plays.push(new ScriptedPlay(files, repeat, resolve)));
  }

  stopPlay(): void {
    this.#settlePlays(false);
  }

  async record(path: string, farEnd: FarEndChannel): Promise<LegRecording> {
    if (this.ended) throw new Error('cannot record a leg that has ended');
    const recording: ScriptedRecording = { path, farEnd, stopped: false };
    this.recordings.push(recording);
    return { stop: async () => void (recording.stopped = true) };
  }

  hangup(): void {
    this.hangups++;
    if (!this.ended) this.end({ by: 'local', reason: 'hung up by us' });
  }

  #settlePlays(completed: boolean): void {
    for (const p of this.plays) p.settle(completed);
  }
}

export class ScriptedReservation implements MediaReservation {
  released = false;

  constructor(readonly group: string) {}

  release(): void {
    this.released = true;
  }
}

export class ScriptedBridge implements MediaBridge {
  closed = false;

  constructor(
    readonly a: CallLeg,
    readonly b: CallLeg,
  ) {}

  async close(): Promise<void> {
    this.closed = true;
  }
}

export class ScriptedTelephonyEngine extends TypedEventEmitter<TelephonyEngineEvents> implements TelephonyEngine {
  readonly name = 'scripted';
  available = true;
  readonly legs: ScriptedLeg[] = [];
  readonly bridges: ScriptedBridge[] = [];
  /** When set, bridge() rejects with it. */
  bridgeFailure: Error | undefined;
  readonly reservations: ScriptedReservation[] = [];
  /** When set, reserve() fails with it as the reason. */
  reserveFailure: string | undefined;
  /** When set, reserve() answers only once it resolves (media still being created). */
  reserveGate: Promise<void> | undefined;
  /** What saturation() answers (and the `legs` it was asked about). */
  saturated: EngineSaturation | undefined;
  saturationAsked: number[] = [];

  async start(): Promise<void> {}

  async stop(): Promise<void> {
    for (const leg of this.legs) leg.hangup();
  }

  dial(request: DialRequest): ScriptedLeg {
    const leg = new ScriptedLeg(`leg-${this.legs.length + 1}`, request);
    this.legs.push(leg);
    return leg;
  }

  async reserve(group: string): Promise<ReserveResult> {
    await this.reserveGate;
    if (this.reserveFailure !== undefined) return { ok: false, reason: this.reserveFailure };
    const reservation = new ScriptedReservation(group);
    this.reservations.push(reservation);
    return { ok: true, reservation };
  }

  saturation(legs: number): EngineSaturation | undefined {
    this.saturationAsked.push(legs);
    return this.saturated;
  }

  async bridge(a: CallLeg, b: CallLeg): Promise<MediaBridge> {
    if (this.bridgeFailure) throw this.bridgeFailure;
    const bridge = new ScriptedBridge(a, b);
    this.bridges.push(bridge);
    return bridge;
  }
}
