import { existsSync, writeFileSync } from 'node:fs';

const RATE = 8000;

/** A tone pattern: the sum of `hz` sine waves, on for `onMs` then off for `offMs`, `beeps` times. */
interface TonePattern {
  readonly hz: readonly number[];
  readonly onMs: number;
  readonly offMs: number;
  readonly beeps: number;
}

/**
 * Writes `pattern` as an 8 kHz mono 16-bit PCM WAV at `path` unless a file
 * is already there, so a fresh install has the server's own tones without
 * shipping audio in the repo.
 */
function ensureToneFile(path: string, pattern: TonePattern): void {
  if (existsSync(path)) return;
  const on = (RATE * pattern.onMs) / 1000;
  const period = on + (RATE * pattern.offMs) / 1000;
  const samples = period * pattern.beeps;
  const wav = Buffer.alloc(44 + samples * 2);
  wav.write('RIFF', 0);
  wav.writeUInt32LE(36 + samples * 2, 4);
  wav.write('WAVEfmt ', 8);
  wav.writeUInt32LE(16, 16);
  wav.writeUInt16LE(1, 20); // PCM
  wav.writeUInt16LE(1, 22); // mono
  wav.writeUInt32LE(RATE, 24);
  wav.writeUInt32LE(RATE * 2, 28);
  wav.writeUInt16LE(2, 32);
  wav.writeUInt16LE(16, 34);
  wav.write('data', 36);
  wav.writeUInt32LE(samples * 2, 40);
  const amplitude = 0.5 / pattern.hz.length;
  for (let i = 0; i < samples; i++) {
    if (i % period >= on) continue;
    const t = i / RATE;
    const v = amplitude * pattern.hz.reduce((sum, hz) => sum + Math.sin(2 * Math.PI * hz * t), 0);
    wav.writeInt16LE(Math.round(v * 16000), 44 + i * 2);
  }
  writeFileSync(path, wav);
}

/** The default ringback tone: ITU/North-American 440 + 480 Hz, 2 s on, 4 s off. */
export function ensureRingbackTone(path: string): void {
  ensureToneFile(path, { hz: [440, 480], onMs: 2000, offMs: 4000, beeps: 1 });
}

/** The default countdown warning (duo_callback `countdown_seconds`): three 200 ms beeps of 1400 Hz, 200 ms apart (1.2 s). */
export function ensureCountdownTone(path: string): void {
  ensureToneFile(path, { hz: [1400], onMs: 200, offMs: 200, beeps: 3 });
}
