/**
 * Records two parties into one stereo WAV (8 kHz, 16-bit PCM; channel 0 left,
 * channel 1 right). Each channel is a small jitter buffer drained by the shared
 * pacer, 160 samples per tick: both channels advance on the same clock, so they
 * stay time-aligned, and a channel with nothing buffered contributes silence.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { DECODE, type G711Codec } from './G711.js';
import type { Pacer } from './Pacer.js';
import { SAMPLES_PER_FRAME } from './Rtp.js';
import { pcmWavHeader } from './Wav.js';

/** Buffered audio beyond this is dropped (oldest first) so a fast sender cannot add delay. */
const MAX_BUFFERED = SAMPLES_PER_FRAME * 10;
/** After running dry a channel waits for this much before playing out again, absorbing jitter. */
const REFILL = SAMPLES_PER_FRAME * 2;
/** Ticks gathered per file write (1 s). */
const TICKS_PER_WRITE = 50;
const BYTES_PER_TICK = SAMPLES_PER_FRAME * 2 * 2;

class ChannelBuffer {
  readonly #ring = new Int16Array(MAX_BUFFERED);
  #read = 0;
  #size = 0;
  #primed = false;

  push(codec: G711Codec, payload: Buffer, offset: number): void {
    const table = DECODE[codec];
    for (let i = offset; i < payload.length; i++) {
      if (this.#size === MAX_BUFFERED) {
        this.#read = (this.#read + 1) % MAX_BUFFERED;
        this.#size--;
      }
      this.#ring[(this.#read + this.#size) % MAX_BUFFERED] = table[payload[i]!]!;
      this.#size++;
    }
  }

  /** The next sample, or 0 while there is nothing to play out. */
  shift(): number {
    if (!this.#primed) {
      if (this.#size < REFILL) return 0;
      this.#primed = true;
    }
    if (this.#size === 0) {
      this.#primed = false;
      return 0;
    }
    const sample = this.#ring[this.#read]!;
    this.#read = (this.#read + 1) % MAX_BUFFERED;
    this.#size--;
    return sample;
  }
}

export class StereoRecorder {
  readonly #file: FileHandle;
  readonly #pacer: Pacer;
  readonly #channels = [new ChannelBuffer(), new ChannelBuffer()] as const;
  #chunk = Buffer.alloc(BYTES_PER_TICK * TICKS_PER_WRITE);
  #chunkBytes = 0;
  #dataBytes = 0;
  #writes: Promise<unknown> = Promise.resolve();
  /** The first failed write: kept for close(), since a rejected chain nobody awaits yet would end the process. */
  #writeError: unknown;
  #closing: Promise<void> | undefined;

  private constructor(file: FileHandle, pacer: Pacer) {
    this.#file = file;
    this.#pacer = pacer;
    pacer.add(this.#tick);
  }

  static async open(path: string, pacer: Pacer): Promise<StereoRecorder> {
    const file = await open(path, 'w');
    await file.write(pcmWavHeader(0, 2), 0, 44, 0);
    return new StereoRecorder(file, pacer);
  }

  /** Adds the G.711 payload of one packet (starting at `offset`) to a channel. */
  push(channel: 0 | 1, codec: G711Codec, payload: Buffer, offset: number): void {
    this.#channels[channel].push(codec, payload, offset);
  }

  /** Writes what is left and the final header sizes; idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#finish();
    return this.#closing;
  }

  async #finish(): Promise<void> {
    this.#pacer.remove(this.#tick);
    this.#flush();
    try {
      await this.#writes;
      if (this.#writeError !== undefined) throw this.#writeError;
      await this.#file.write(pcmWavHeader(this.#dataBytes, 2), 0, 44, 0);
    } finally {
      await this.#file.close();
    }
  }

  readonly #tick = (): void => {
    const [left, right] = this.#channels;
    const chunk = this.#chunk;
    for (let i = 0, at = this.#chunkBytes; i < SAMPLES_PER_FRAME; i++, at += 4) {
      chunk.writeInt16LE(left.shift(), at);
      chunk.writeInt16LE(right.shift(), at + 2);
    }
    this.#chunkBytes += BYTES_PER_TICK;
    if (this.#chunkBytes === chunk.length) this.#flush();
  };

  #flush(): void {
    if (this.#chunkBytes === 0) return;
    const data = this.#chunk.subarray(0, this.#chunkBytes);
    const position = 44 + this.#dataBytes;
    this.#dataBytes += data.length;
    this.#chunk = Buffer.alloc(this.#chunk.length);
    this.#chunkBytes = 0;
    // Positional writes chained in order; an error surfaces on close().
    this.#writes = this.#writes
      .then(() => this.#file.write(data, 0, data.length, position))
      .catch((err: unknown) => (this.#writeError ??= err));
  }
}
