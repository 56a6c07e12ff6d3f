// WAV / G.711 / signal helpers: round trips and known values.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { alawToLinear, decodeUlaw, encodeUlaw, linearToAlaw, linearToUlaw, ulawToLinear } from '../support/audio/g711.js';
import { concatSamples, dominantFrequency, rms, silence, toneSamples, writeUlawRaw } from '../support/audio/signal.js';
import { decodeWav, encodeWav, readWav, writeWav } from '../support/audio/wav.js';

const dir = await mkdtemp(join(tmpdir(), 'audio-test-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));

const maxError = (a: Int16Array, b: Int16Array): number => {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs((a[i] ?? 0) - (b[i] ?? 0)));
  return worst;
};

t.test('G.711 known code points', async (tt) => {
  tt.equal(linearToUlaw(0), 0xff, 'µ-law zero is 0xFF');
  tt.equal(ulawToLinear(0xff), 0);
  tt.equal(ulawToLinear(0x00), -32124, 'µ-law most negative');
  tt.equal(ulawToLinear(0x80), 32124, 'µ-law most positive');
  tt.equal(linearToAlaw(0), 0xd5, 'A-law zero is 0xD5');
  tt.equal(alawToLinear(0xd5), 8);
  tt.equal(alawToLinear(0xaa), 32256, 'A-law most positive');
  tt.equal(alawToLinear(0x2a), -32256, 'A-law most negative');
  // Decode → encode is the identity on every code (except µ-law's duplicate zero).
  for (let b = 0; b < 256; b++) {
    if (b !== 0x7f) tt.equal(linearToUlaw(ulawToLinear(b)), b, `µ-law code ${b}`);
    tt.equal(linearToAlaw(alawToLinear(b)), b, `A-law code ${b}`);
  }
});

t.test('G.711 error stays within its quantisation step', async (tt) => {
  const tone = toneSamples(1000, 100, { amplitude: 20000 });
  const back = decodeUlaw(encodeUlaw(tone));
  // Largest µ-law step is 1024 at the top segment; half a step plus rounding.
  tt.ok(maxError(tone, back) <= 520, `µ-law max error ${maxError(tone, back)}`);
});

t.test('toneSamples / silence / concat / rms', async (tt) => {
  const tone = toneSamples(440, 500);
  tt.equal(tone.length, 4000, '500 ms at 8 kHz');
  tt.ok(Math.abs(rms(tone) - 8000 / Math.SQRT2) < 50, 'sine RMS is peak/√2');
  tt.equal(rms(silence(100)), 0);
  tt.equal(silence(250).length, 2000);
  tt.equal(concatSamples(tone, silence(500)).length, 8000);
  tt.equal(dominantFrequency(tone), 440);
  tt.equal(dominantFrequency(toneSamples(1633, 200)), 1633);
  tt.equal(dominantFrequency(silence(200)), 0, 'silence has no frequency');
  // Phase continuity: two chunks equal one long tone.
  const joined = concatSamples(toneSamples(700, 20), toneSamples(700, 20, { startSample: 160 }));
  tt.same(Array.from(joined), Array.from(toneSamples(700, 40)));
});

for (const format of ['pcm16', 'ulaw', 'alaw'] as const) {
  t.test(`WAV ${format} mono round trip`, async (tt) => {
    const samples = concatSamples(toneSamples(440, 300), silence(200));
    const path = join(dir, `mono-${format}.wav`);
    await writeWav(path, { format, samples });
    const wav = await readWav(path);
    tt.equal(wav.format, format);
    tt.equal(wav.rate, 8000);
    tt.equal(wav.channels, 1);
    tt.equal(wav.durationMs, 500);
    tt.equal(wav.samples.length, samples.length);
    const err = maxError(samples, wav.samples);
    tt.ok(format === 'pcm16' ? err === 0 : err <= 300, `max error ${err}`);
    tt.equal(dominantFrequency(wav.samples), 440);
    const bytes = await readFile(path);
    tt.equal(bytes.readUInt32LE(4), bytes.length - 8, 'RIFF size');
    tt.equal(bytes.readUInt16LE(20), { pcm16: 1, alaw: 6, ulaw: 7 }[format], 'format tag');
  });
}

t.test('WAV stereo: left and right channels stay apart', async (tt) => {
  const left = toneSamples(500, 400);
  const right = toneSamples(1200, 400);
  const path = join(dir, 'stereo.wav');
  await writeWav(path, { format: 'pcm16', samples: [left, right] });
  const wav = await readWav(path);
  tt.equal(wav.channels, 2);
  tt.equal(wav.durationMs, 400);
  tt.equal(wav.channelData.length, 2);
  tt.same(Array.from(wav.channelData[0] ?? []), Array.from(left));
  tt.same(Array.from(wav.channelData[1] ?? []), Array.from(right));
  tt.equal(dominantFrequency(wav.channelData[0] ?? new Int16Array()), 500);
  tt.equal(dominantFrequency(wav.channelData[1] ?? new Int16Array()), 1200);
});

t.test('WAV reader skips unknown chunks and rejects what it cannot read', async (tt) => {
  const plain = encodeWav({ format: 'pcm16', samples: toneSamples(300, 40) });
  // Insert a LIST chunk between fmt and data, as many recorders do.
  const list = Buffer.concat([Buffer.from('LIST'), Buffer.from([4, 0, 0, 0]), Buffer.from('INFO')]);
  const withList = Buffer.concat([plain.subarray(0, 36), list, plain.subarray(36)]);
  withList.writeUInt32LE(withList.length - 8, 4);
  tt.equal(decodeWav(withList).samples.length, 320);
  tt.throws(() => decodeWav(Buffer.from('not a wav at all')), /RIFF/);
  const float = Buffer.from(plain);
  float.writeUInt16LE(3, 20); // IEEE float
  tt.throws(() => decodeWav(float), /unsupported/);
});

t.test('writeUlawRaw writes headerless µ-law for SIPp rtp_stream', async (tt) => {
  const path = join(dir, 'tone.ulaw');
  const tone = toneSamples(440, 1000);
  await writeUlawRaw(path, tone);
  const raw = await readFile(path);
  tt.equal(raw.length, 8000, 'one byte per sample, no header');
  tt.equal(dominantFrequency(decodeUlaw(raw)), 440);
});
