// Minimal RIFF/WAVE reader and writer for the formats the server must handle:
// 16-bit PCM (WAVE_FORMAT_PCM = 1), A-law (6) and µ-law (7), mono or stereo.
import { readFile, writeFile } from 'node:fs/promises';
import { decodeAlaw, decodeUlaw, encodeAlaw, encodeUlaw } from './g711.js';

export type WavFormat = 'pcm16' | 'ulaw' | 'alaw';

export interface WavWriteOptions {
  format: WavFormat;
  /** Linear 16-bit samples; for stereo interleave them or pass [left, right]. */
  samples: Int16Array | readonly [Int16Array, Int16Array];
  rate?: number;
  channels?: 1 | 2;
}

export interface WavData {
  format: WavFormat;
  rate: number;
  channels: number;
  /** Decoded to linear 16-bit, interleaved when stereo. */
  samples: Int16Array;
  /** One array per channel (index 0 = left). */
  channelData: Int16Array[];
  durationMs: number;
}

const FORMAT_TAGS: Record<WavFormat, number> = { pcm16: 1, alaw: 6, ulaw: 7 };

function interleave(left: Int16Array, right: Int16Array): Int16Array {
  const n = Math.max(left.length, right.length);
  const out = new Int16Array(n * 2);
  for (let i = 0; i < n; i++) {
    out[2 * i] = left[i] ?? 0;
    out[2 * i + 1] = right[i] ?? 0;
  }
  return out;
}

/** Builds a WAV file image in memory. */
export function encodeWav(opts: WavWriteOptions): Buffer {
  const rate = opts.rate ?? 8000;
  const isPair = !(opts.samples instanceof Int16Array);
  const channels = isPair ? 2 : (opts.channels ?? 1);
  const samples = opts.samples instanceof Int16Array ? opts.samples : interleave(opts.samples[0], opts.samples[1]);
  let data: Buffer;
  if (opts.format === 'pcm16') {
    data = Buffer.alloc(samples.length * 2);
    for (let i = 0; i < samples.length; i++) data.writeInt16LE(samples[i] ?? 0, i * 2);
  } else {
    data = opts.format === 'ulaw' ? encodeUlaw(samples) : encodeAlaw(samples);
  }
  const bytesPerSample = opts.format === 'pcm16' ? 2 : 1;
  // Non-PCM formats carry cbSize (18-byte fmt chunk), as players expect.
  const fmtSize = opts.format === 'pcm16' ? 16 : 18;
  const header = Buffer.alloc(12 + 8 + fmtSize + 8);
  header.write('RIFF', 0, 'ascii');
  header.writeUInt32LE(header.length - 8 + data.length + (data.length % 2), 4);
  header.write('WAVE', 8, 'ascii');
  header.write('fmt ', 12, 'ascii');
  header.writeUInt32LE(fmtSize, 16);
  header.writeUInt16LE(FORMAT_TAGS[opts.format], 20);
  header.writeUInt16LE(channels, 22);
  header.writeUInt32LE(rate, 24);
  header.writeUInt32LE(rate * channels * bytesPerSample, 28);
  header.writeUInt16LE(channels * bytesPerSample, 32);
  header.writeUInt16LE(bytesPerSample * 8, 34);
  if (fmtSize === 18) header.writeUInt16LE(0, 36);
  const dataHeader = 12 + 8 + fmtSize;
  header.write('data', dataHeader, 'ascii');
  header.writeUInt32LE(data.length, dataHeader + 4);
  const pad = data.length % 2 ? Buffer.alloc(1) : Buffer.alloc(0);
  return Buffer.concat([header, data, pad]);
}

export async function writeWav(path: string, opts: WavWriteOptions): Promise<void> {
  await writeFile(path, encodeWav(opts));
}

/** Parses a WAV image; throws on anything but PCM16 / A-law / µ-law. */
export function decodeWav(buf: Buffer): WavData {
  if (buf.length < 12 || buf.toString('ascii', 0, 4) !== 'RIFF' || buf.toString('ascii', 8, 12) !== 'WAVE') {
    throw new Error('not a RIFF/WAVE file');
  }
  let fmt: { tag: number; channels: number; rate: number; bits: number } | undefined;
  let data: Buffer | undefined;
  // Walk chunks: recorders may add LIST/fact chunks before data.
  for (let at = 12; at + 8 <= buf.length; ) {
    const id = buf.toString('ascii', at, at + 4);
    const size = buf.readUInt32LE(at + 4);
    const body = buf.subarray(at + 8, Math.min(buf.length, at + 8 + size));
    if (id === 'fmt ') {
      fmt = { tag: body.readUInt16LE(0), channels: body.readUInt16LE(2), rate: body.readUInt32LE(4), bits: body.readUInt16LE(14) };
      // WAVE_FORMAT_EXTENSIBLE: the real tag is the first 2 bytes of the sub-format GUID.
      if (fmt.tag === 0xfffe && body.length >= 26) fmt.tag = body.readUInt16LE(24);
    } else if (id === 'data') {
      data = body;
    }
    at += 8 + size + (size % 2);
  }
  if (!fmt) throw new Error('WAV has no fmt chunk');
  if (!data) throw new Error('WAV has no data chunk');
  let format: WavFormat;
  let samples: Int16Array;
  if (fmt.tag === 1 && fmt.bits === 16) {
    format = 'pcm16';
    samples = new Int16Array(Math.floor(data.length / 2));
    for (let i = 0; i < samples.length; i++) samples[i] = data.readInt16LE(i * 2);
  } else if (fmt.tag === 7 && fmt.bits === 8) {
    format = 'ulaw';
    samples = decodeUlaw(data);
  } else if (fmt.tag === 6 && fmt.bits === 8) {
    format = 'alaw';
    samples = decodeAlaw(data);
  } else {
    throw new Error(`unsupported WAV format tag ${fmt.tag} with ${fmt.bits} bits`);
  }
  const channels = Math.max(1, fmt.channels);
  const frames = Math.floor(samples.length / channels);
  const channelData: Int16Array[] = [];
  for (let c = 0; c < channels; c++) {
    const ch = new Int16Array(frames);
    for (let i = 0; i < frames; i++) ch[i] = samples[i * channels + c] ?? 0;
    channelData.push(ch);
  }
  return { format, rate: fmt.rate, channels, samples, channelData, durationMs: (frames * 1000) / fmt.rate };
}

export async function readWav(path: string): Promise<WavData> {
  return decodeWav(await readFile(path));
}
