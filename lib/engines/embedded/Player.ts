/** Plays WAV files into one leg's RTP session, one 20 ms frame per pacer tick. */
import type { PlayResult } from '../../telephony/TelephonyEngine.js';
import type { Pacer } from './Pacer.js';
import type { RtpSession } from './RtpSession.js';
import { SAMPLES_PER_FRAME } from './Rtp.js';
import type { MediaCache, MediaFile } from './MediaCache.js';

interface Playback {
  readonly items: readonly MediaFile[];
  readonly resolve: (result: PlayResult) => void;
  index: number;
  /** The current item in the session's codec, converted when it starts (the codec may change meanwhile). */
  audio: Buffer | undefined;
  offset: number;
}

export class Player {
  readonly #session: RtpSession;
  readonly #pacer: Pacer;
  readonly #media: MediaCache;
  #playback: Playback | undefined;
  /** Bumped by every play() and stop(): a play() whose files are still loading is cancelled by a later call. */
  #generation = 0;

  constructor(session: RtpSession, pacer: Pacer, media: MediaCache) {
    this.#session = session;
    this.#pacer = pacer;
    this.#media = media;
  }

  /** Plays the list `repeat + 1` times; a new play() stops the previous one first. */
  async play(files: readonly string[], repeat: number): Promise<PlayResult> {
    const generation = ++this.#generation;
    // Each distinct file once, however often the list names it.
    const unique = [...new Set(files)];
    const byPath = new Map(unique.map((path, i) => [path, i]));
    const distinct = await Promise.all(unique.map((path) => this.#media.load(path)));
    const loaded = files.map((path) => distinct[byPath.get(path)!]!);
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
      p.audio = item.g711(this.#session.codec);
      p.offset = 0;
    }
    this.#session.sendFrame(p.audio, p.offset);
    p.offset += SAMPLES_PER_FRAME;
  };
}
