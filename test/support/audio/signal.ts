// Test signals and simple analysis at telephone rate (8 kHz by default).
import { writeFile } from 'node:fs/promises';
import { encodeUlaw } from './g711.js';

export const DEFAULT_RATE = 8000;

export interface ToneOptions {
  rate?: number;
  /** Peak amplitude, 0..32767; default 8000 (about -12 dBFS, no clipping through G.711). */
  amplitude?: number;
  /** Start phase in samples, so consecutive chunks join without clicks. */
  startSample?: number;
}

/** A sine tone of `ms` milliseconds as 16-bit samples. */
export function toneSamples(freq: number, ms: number, opts: ToneOptions = {}): Int16Array {
  const rate = opts.rate ?? DEFAULT_RATE;
  const amplitude = opts.amplitude ?? 8000;
  const start = opts.startSample ?? 0;
  const n = Math.round((ms * rate) / 1000);
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.round(amplitude * Math.sin((2 * Math.PI * freq * (start + i)) / rate));
  return out;
}

/** Digital silence of `ms` milliseconds. */
export function silence(ms: number, rate: number = DEFAULT_RATE): Int16Array {
  return new Int16Array(Math.round((ms * rate) / 1000));
}

/** Joins sample arrays, e.g. tone + silence + tone. */
export function concatSamples(...parts: Int16Array[]): Int16Array {
  const out = new Int16Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Writes headerless µ-law, the format SIPp's rtp_stream plays (payload type 0). */
export async function writeUlawRaw(path: string, samples: Int16Array): Promise<void> {
  await writeFile(path, encodeUlaw(samples));
}

/** Root mean square level of the samples (0 for an empty array). */
export function rms(samples: Int16Array): number {
  if (samples.length === 0) return 0;
  let sum = 0;
  for (const s of samples) sum += s * s;
  return Math.sqrt(sum / samples.length);
}

/** Goertzel power of one frequency, normalised by length so windows compare. */
export function goertzelPower(samples: Int16Array, freq: number, rate: number = DEFAULT_RATE): number {
  const coeff = 2 * Math.cos((2 * Math.PI * freq) / rate);
  let s1 = 0;
  let s2 = 0;
  for (const x of samples) {
    const s0 = x + coeff * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  const power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
  return samples.length === 0 ? 0 : power / samples.length;
}

export interface DominantOptions {
  rate?: number;
  /** Frequencies to try; default 50..3950 Hz every 10 Hz, then refined to 1 Hz. */
  candidates?: number[];
  /** Analyse at most this many samples (default 1 s) to keep it fast. */
  maxSamples?: number;
}

/**
 * The strongest frequency in the samples (Goertzel scan), or 0 for silence.
 * Accurate to ~1 Hz for a steady tone of 100 ms or more.
 */
export function dominantFrequency(samples: Int16Array, opts: DominantOptions = {}): number {
  const rate = opts.rate ?? DEFAULT_RATE;
  const pcm = samples.subarray(0, opts.maxSamples ?? rate);
  if (rms(pcm) < 1) return 0;
  const best = (freqs: number[]): number => {
    let bestF = 0;
    let bestP = -1;
    for (const f of freqs) {
      const p = goertzelPower(pcm, f, rate);
      if (p > bestP) {
        bestP = p;
        bestF = f;
      }
    }
    return bestF;
  };
  if (opts.candidates) return best(opts.candidates);
  const coarse: number[] = [];
  for (let f = 50; f < rate / 2; f += 10) coarse.push(f);
  const c = best(coarse);
  const fine: number[] = [];
  for (let f = c - 10; f <= c + 10; f++) if (f > 0) fine.push(f);
  return best(fine);
}
