/** WAV (RIFF) reading for prompts and header writing for recordings. */
import { ENCODE, TRANSCODE, type G711Codec } from './G711.js';

export type WavSampleFormat = 'pcm16' | 'PCMA' | 'PCMU';

export interface WavAudio {
  readonly format: WavSampleFormat;
  /** Raw sample bytes of the data chunk. */
  readonly data: Buffer;
}

const FORMAT_PCM = 1;
const FORMAT_ALAW = 6;
const FORMAT_ULAW = 7;
const FORMAT_EXTENSIBLE = 0xfffe;

/** Parses an 8 kHz mono WAV (16-bit PCM, A-law or µ-law); throws a readable error otherwise. */
export function parseWav(file: Buffer): WavAudio {
  if (file.length < 12 || file.toString('latin1', 0, 4) !== 'RIFF' || file.toString('latin1', 8, 12) !== 'WAVE') {
    throw new Error('not a RIFF/WAVE file');
  }
  let format: WavSampleFormat | undefined;
  let offset = 12;
  while (offset + 8 <= file.length) {
    const id = file.toString('latin1', offset, offset + 4);
    const size = file.readUInt32LE(offset + 4);
    const body = offset + 8;
    if (id === 'fmt ') {
      format = parseFmt(file.subarray(body, body + size));
    } else if (id === 'data') {
      if (!format) throw new Error('data chunk before fmt chunk');
      // Writers that never finalized the header leave size 0 or too large: take what is there.
      const end = size === 0 ? file.length : Math.min(file.length, body + size);
      return { format, data: file.subarray(body, end) };
    }
    offset = body + size + (size & 1); // chunks are word aligned
  }
  throw new Error('no data chunk');
}

function parseFmt(fmt: Buffer): WavSampleFormat {
  if (fmt.length < 16) throw new Error('fmt chunk too short');
  let tag = fmt.readUInt16LE(0);
  const channels = fmt.readUInt16LE(2);
  const rate = fmt.readUInt32LE(4);
  const bits = fmt.readUInt16LE(14);
  if (tag === FORMAT_EXTENSIBLE && fmt.length >= 26) tag = fmt.readUInt16LE(24); // sub-format GUID starts with the tag
  if (channels !== 1 || rate !== 8000) throw new Error(`unsupported WAV: ${channels} channel(s) at ${rate} Hz (need mono 8000 Hz)`);
  if (tag === FORMAT_PCM && bits === 16) return 'pcm16';
  if (tag === FORMAT_ALAW && bits === 8) return 'PCMA';
  if (tag === FORMAT_ULAW && bits === 8) return 'PCMU';
  throw new Error(`unsupported WAV encoding: format ${tag}, ${bits} bits`);
}

/** The audio as G.711 bytes of `codec`, one byte per sample. */
export function toG711(audio: WavAudio, codec: G711Codec): Buffer {
  const { data } = audio;
  if (audio.format === 'pcm16') {
    const samples = data.length >> 1;
    const out = Buffer.allocUnsafe(samples);
    const table = ENCODE[codec];
    for (let i = 0; i < samples; i++) out[i] = table[data.readUInt16LE(i * 2)]!;
    return out;
  }
  if (audio.format === codec) return data;
  const table = TRANSCODE[audio.format][codec];
  const out = Buffer.allocUnsafe(data.length);
  for (let i = 0; i < data.length; i++) out[i] = table[data[i]!]!;
  return out;
}

/** A 44-byte header for 16-bit PCM at 8 kHz with `dataBytes` of samples. */
export function pcmWavHeader(dataBytes: number, channels: number): Buffer {
  const h = Buffer.alloc(44);
  h.write('RIFF', 0, 'latin1');
  h.writeUInt32LE(36 + dataBytes, 4);
  h.write('WAVEfmt ', 8, 'latin1');
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(FORMAT_PCM, 20);
  h.writeUInt16LE(channels, 22);
  h.writeUInt32LE(8000, 24);
  h.writeUInt32LE(8000 * channels * 2, 28);
  h.writeUInt16LE(channels * 2, 32);
  h.writeUInt16LE(16, 34);
  h.write('data', 36, 'latin1');
  h.writeUInt32LE(dataBytes, 40);
  return h;
}
