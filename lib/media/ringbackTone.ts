import { existsSync, writeFileSync } from 'node:fs';

const RATE = 8000;

/**
 * Writes the default ringback tone (ITU/North-American 440 + 480 Hz, 2 s on,
 * 4 s off; 8 kHz mono 16-bit PCM WAV) unless a file is already there, so a
 * fresh install has one without shipping audio in the repo.
 */
export function ensureRingbackTone(path: string): void {
  if (existsSync(path)) return;
  const samples = RATE * 6;
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
  for (let i = 0; i < RATE * 2; i++) {
    const t = i / RATE;
    const v = 0.25 * (Math.sin(2 * Math.PI * 440 * t) + Math.sin(2 * Math.PI * 480 * t));
    wav.writeInt16LE(Math.round(v * 16000), 44 + i * 2);
  }
  writeFileSync(path, wav);
}
