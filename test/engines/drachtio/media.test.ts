// The drachtio engine's media on FreeSWITCH: playback heard by an RTP ear,
// stopPlay, bridging (also with b in early media) and the stereo recording.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { CallLeg } from '../../../lib/telephony/TelephonyEngine.js';
import type { RtpEar } from '../../support/sipp/RtpEar.js';
import { concatSamples, dominantFrequency, silence, toneSamples } from '../../support/audio/signal.js';
import { readWav, writeWav } from '../../support/audio/wav.js';
import { ended, next, openEar, request, sleep, startCarrier, startEngine, type Teardown } from './harness.js';
import { findServices } from './services.js';

const services = await findServices();
if ('skip' in services) {
  t.comment(`SKIP drachtio engine media: ${services.skip}`);
  t.test('drachtio engine media', { skip: services.skip }, () => {});
} else {
  t.teardown(() => services.local?.stop());
  const engine = await startEngine(t, services.config);
  const carrier = await startCarrier(t);
  // Generated here (8 kHz mono 16-bit PCM), never committed.
  const dir = await mkdtemp(join(tmpdir(), 'drachtio-media-'));
  const beep = join(dir, 'beep.wav');
  await writeWav(beep, { format: 'pcm16', samples: concatSamples(toneSamples(1000, 600), silence(400)) });
  const long = join(dir, 'long.wav');
  await writeWav(long, { format: 'pcm16', samples: toneSamples(800, 3000) });
  const blip = join(dir, 'blip.wav');
  await writeWav(blip, { format: 'pcm16', samples: concatSamples(toneSamples(500, 200), silence(300)) });
  t.comment(`media files and recordings in ${dir}`);

  async function answered(tt: Teardown, ear: RtpEar): Promise<CallLeg> {
    const leg = engine.dial(request(carrier, `answer-${ear.port}`));
    tt.teardown(() => leg.hangup());
    await next(leg, 'answered');
    return leg;
  }

  /** Dominant frequency of what `ear` heard in the last `ms`. */
  function heardLately(ear: RtpEar, ms: number): number {
    const now = Date.now();
    return dominantFrequency(ear.pcm(ear.packetsBetween(now - ms, now + 1)));
  }

  t.test('play a file repeat+1 times: the far end hears each, for its length', async (tt) => {
    const ear = await openEar(tt);
    const leg = await answered(tt, ear);
    const started = Date.now();
    tt.same(await leg.play([beep], 2), { completed: true });
    const took = Date.now() - started;
    tt.ok(took >= 2800 && took < 4500, `playback took ${took} ms for 3 × 1 s`);
    const segments = ear.segments(200);
    tt.equal(segments.length, 3, 'three beeps heard');
    for (const s of segments) {
      tt.ok(Math.abs(s.durationMs - 600) < 120, `beep lasted ${Math.round(s.durationMs)} ms (600 expected)`);
      tt.equal(Math.round(dominantFrequency(s.pcm) / 10) * 10, 1000, 'beep is the 1000 Hz tone');
    }
    leg.hangup();
    await ended(leg);
  });

  t.test('a list plays in order', async (tt) => {
    const ear = await openEar(tt);
    const leg = await answered(tt, ear);
    tt.same(await leg.play([blip, beep], 0), { completed: true });
    const segments = ear.segments(150);
    tt.equal(segments.length, 2, 'blip then beep');
    tt.equal(Math.round(dominantFrequency(segments[0]!.pcm) / 10) * 10, 500);
    tt.equal(Math.round(dominantFrequency(segments[1]!.pcm) / 10) * 10, 1000);
  });

  t.test('stopPlay and hangup cut playback short with completed:false', async (tt) => {
    const ear = await openEar(tt);
    const leg = await answered(tt, ear);
    const stopped = leg.play([long], 3);
    await sleep(500);
    const t0 = Date.now();
    leg.stopPlay();
    tt.same(await stopped, { completed: false });
    tt.ok(Date.now() - t0 < 1000, 'settled right after stopPlay');
    await sleep(300);
    const lateSound = ear.segments(200).filter((s) => s.endMs > t0 + 200);
    tt.equal(lateSound.length, 0, 'the ear hears nothing after the stop');
    const cut = leg.play([long], 0);
    await sleep(300);
    leg.hangup();
    tt.same(await cut, { completed: false });
  });

  t.test('a missing file rejects play', async (tt) => {
    const ear = await openEar(tt);
    const leg = await answered(tt, ear);
    await tt.rejects(leg.play([join(dir, 'missing.wav')], 0));
  });

  t.test('bridge: each far end hears the other; a recording of leg a has a left, b right', async (tt) => {
    const earA = await openEar(tt);
    const earB = await openEar(tt);
    const a = await answered(tt, earA);
    const b = await answered(tt, earB);
    // A blip on each leg tells each ear where FreeSWITCH sends from.
    await Promise.all([a.play([blip], 0), b.play([blip], 0)]);
    const bridge = await engine.bridge(a, b);
    const recording = join(dir, 'bridge.wav');
    const recorder = await a.record(recording, 'left');
    await earA.talk({ freq: 1300 });
    await earB.talk({ freq: 700 });
    await sleep(1500);
    tt.equal(Math.round(heardLately(earB, 1000) / 10) * 10, 1300, 'b hears a');
    tt.equal(Math.round(heardLately(earA, 1000) / 10) * 10, 700, 'a hears b');
    earA.stopTalking();
    earB.stopTalking();
    await recorder.stop();
    await recorder.stop(); // idempotent
    await bridge.close();
    await bridge.close(); // idempotent
    const wav = await readWav(recording);
    tt.equal(wav.channels, 2, 'stereo');
    tt.ok(wav.durationMs > 1000, `recorded ${Math.round(wav.durationMs)} ms`);
    const tail = (ch: Int16Array): Int16Array => ch.subarray(Math.max(0, ch.length - 8000 - 1600), ch.length - 1600);
    tt.equal(Math.round(dominantFrequency(tail(wav.channelData[0]!)) / 10) * 10, 1300, 'left is party a');
    tt.equal(Math.round(dominantFrequency(tail(wav.channelData[1]!)) / 10) * 10, 700, 'right is party b');
    // After close() the legs are apart again and each can still play.
    earA.clear();
    tt.same(await a.play([blip], 0), { completed: true }, 'a plays after the bridge closed');
    tt.ok(earA.segments(150).length >= 1, 'and a hears it');
  });

  t.test('bridge with b in early media: a hears b\'s ringback', async (tt) => {
    const earA = await openEar(tt);
    const earB = await openEar(tt);
    const a = await answered(tt, earA);
    await a.play([blip], 0);
    const b = engine.dial(request(carrier, `early-3-${earB.port}`));
    tt.teardown(() => b.hangup());
    tt.same(await next(b, 'progress'), [{ sipStatus: 183, earlyMedia: false }], 'ringing until its RTP comes');
    tt.same(await next(b, 'progress'), [{ sipStatus: 183, earlyMedia: true }], 'then early media');
    const bridge = await engine.bridge(a, b);
    await sleep(1200);
    tt.equal(Math.round(heardLately(earA, 800) / 10) * 10, 440, 'a hears the 440 Hz early media of b');
    await bridge.close();
  });

  t.test('a bridge ends by itself when a leg ends; the other leg stays up', async (tt) => {
    const earA = await openEar(tt);
    const earB = await openEar(tt);
    const a = await answered(tt, earA);
    const b = await answered(tt, earB);
    const bridge = await engine.bridge(a, b);
    const endedB = ended(b);
    b.hangup();
    await endedB;
    await sleep(500);
    let aEnded = false;
    a.once('ended', () => (aEnded = true));
    earA.clear();
    tt.same(await a.play([blip], 0), { completed: true }, 'a still plays');
    tt.notOk(aEnded, 'a is still up');
    await bridge.close();
    a.hangup();
    tt.same(await ended(a), { by: 'local', reason: 'hangup' });
  });
}
