/**
 * Prompt files parsed once and shared by every play of every leg, with each
 * codec's G.711 rendering made once: a play list naming one file 4,000 times
 * holds that file once (issue 7, point 5). Entries are keyed by path, size
 * and modification time, so a file replaced on disk is read again; the least
 * recently used entries are dropped beyond `maxBytes` (a playing leg keeps
 * its buffers alive until it is done with them).
 */
import { readFile, stat } from 'node:fs/promises';
import type { G711Codec } from './G711.js';
import { parseWav, toG711, type WavAudio } from './Wav.js';

/** One loaded prompt: its samples and their G.711 forms, made on first use. */
export class MediaFile {
  readonly #audio: WavAudio;
  readonly #g711: Partial<Record<G711Codec, Buffer>> = {};

  constructor(audio: WavAudio) {
    this.#audio = audio;
  }

  /** Bytes held: the file's samples plus each rendering made so far. */
  get bytes(): number {
    return this.#audio.data.length + (this.#g711.PCMU?.length ?? 0) + (this.#g711.PCMA?.length ?? 0);
  }

  /** The audio in `codec`, one byte per sample (shared: never write into it). */
  g711(codec: G711Codec): Buffer {
    return (this.#g711[codec] ??= toG711(this.#audio, codec));
  }
}

export class MediaCache {
  readonly #maxBytes: number;
  /** In use order: the first entry is the least recently used. */
  readonly #entries = new Map<string, Promise<MediaFile>>();
  readonly #sizes = new Map<string, number>();

  /** `maxBytes`: what the cache keeps; a single file larger than this is refused. */
  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  /** Bytes held by the entries loaded so far. */
  get bytes(): number {
    let total = 0;
    for (const size of this.#sizes.values()) total += size;
    return total;
  }

  /** The parsed file at `path`; rejects with a readable message when it is missing, too large or not a supported WAV. */
  async load(path: string): Promise<MediaFile> {
    let key: string;
    try {
      const info = await stat(path);
      if (info.size > this.#maxBytes) throw new Error(`file larger than ${this.#maxBytes} bytes`);
      key = `${info.size}:${info.mtimeMs}:${path}`;
    } catch (err) {
      throw new Error(`cannot play ${path}: ${(err as Error).message}`, { cause: err });
    }
    let entry = this.#entries.get(key);
    if (entry) {
      this.#entries.delete(key); // move to the most recently used end
    } else {
      entry = readFile(path)
        .then((data) => new MediaFile(parseWav(data)))
        .catch((err: unknown) => {
          throw new Error(`cannot play ${path}: ${(err as Error).message}`, { cause: err });
        });
      entry.then(
        (file) => this.#admit(key, file),
        () => this.#forget(key),
      );
    }
    this.#entries.set(key, entry);
    return entry;
  }

  /** Counts a loaded file and its renderings, then drops the least recently used beyond the bound. */
  #admit(key: string, file: MediaFile): void {
    if (!this.#entries.has(key)) return;
    this.#sizes.set(key, file.bytes * 2); // room for its two G.711 renderings
    let total = this.bytes;
    for (const old of this.#entries.keys()) {
      if (total <= this.#maxBytes || old === key) break;
      total -= this.#sizes.get(old) ?? 0;
      this.#forget(old);
    }
  }

  #forget(key: string): void {
    this.#entries.delete(key);
    this.#sizes.delete(key);
  }
}
