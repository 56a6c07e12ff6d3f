/** Plays WAV files into one leg's RTP session, one 20 ms frame per pacer tick. */
import { readFile } from 'node:fs/promises';
import type { PlayResult } from '../../telephony/TelephonyEngine.js';
import type { Pacer } from './Pacer.js';
import type { RtpSession } from './RtpSession.js';
import { SAMPLES_PER_FRAME } from './Rtp.js';
import { parseWav, toG711, type WavAudio } from './Wav.js';

interface Playback {
  readonly items: readonly WavAudio[];
  readonly resolve: (result: PlayResult) => void;
  index: number;
  /** The current item in the session's codec, converted when it starts (the codec may change meanwhile). */
  audio: Buffer | undefined;
  offset: number;
}

export class Player {
  readonly #session: RtpSession;
  readonly #pacer: Pacer;
  #playback: Playback | undefined;
  /** Bumped by every play() and stop(): a play() whose files are still loading is cancelled by a later call. */
  #generation = 0;

  constructor(session: RtpSession, pacer: Pacer) {
    this.#session = session;
    this.#pacer = pacer;
  }

  /** Plays the list `repeat + 1` times; a new play() stops the previous one first. */
  async play(files: readonly string[], repeat: number): Promise<PlayResult> {
    const generation = ++this.#generation;
    const loaded = await Promise.all(files.map(load));
    // stop() or another play() while the files loaded (e.g. party 2 answered during a ringback's load)
    if (generation !== this.#generation) return { completed: false };
    this.#finish(false);
    if (this.#session.closed) return { completed: false }; // the leg ended while files loaded
    const items = Array.from({ length: (repeat + 1) * loaded.length }, (_, i) => loaded[i % loaded.length]!);
    if (items.length === 0) return { completed: true };
    return new Promise<PlayResult>((resolve) => {
      this.#playback = { items, resolve, index: 0, audio: undefined, offset: 0 };
      this.#session.playing = true;
      this.#pacer.add(this.#tick);
    });
  }

  stop(): void {
    this.#generation++;
    this.#finish(false);
  }

  #finish(completed: boolean): void {
    const playback = this.#playback;
    if (!playback) return;
    this.#playback = undefined;
    this.#session.playing = false;
    this.#pacer.remove(this.#tick);
    playback.resolve({ completed });
  }

  readonly #tick = (): void => {
    const p = this.#playback;
    if (!p) return;
    while (p.audio === undefined || p.offset >= p.audio.length) {
      if (p.audio !== undefined) p.index++;
      const item = p.items[p.index];
      if (!item) return this.#finish(true);
      p.audio = toG711(item, this.#session.codec);
      p.offset = 0;
    }
    this.#session.sendFrame(p.audio, p.offset);
    p.offset += SAMPLES_PER_FRAME;
  };
}

async function load(path: string): Promise<WavAudio> {
  try {
    return parseWav(await readFile(path));
  } catch (err) {
    throw new Error(`cannot play ${path}: ${(err as Error).message}`, { cause: err });
  }
}
