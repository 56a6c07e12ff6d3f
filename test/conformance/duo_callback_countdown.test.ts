// Conformance: the duo_callback countdown warning end to end, per engine target: both
// parties hear it at the right second and the stereo recording holds it.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { readWav } from '../support/audio/wav.js';
import { dominantFrequency } from '../support/audio/signal.js';
import type { RtpEar } from '../support/sipp/RtpEar.js';
import { TONE, carrierCall, checkEnd, checkResource, describeHearing, forEachTarget, hearing, setup, type Fixture } from './support.js';

/** Once the party answered, its ear talks its tone to the media address the server offered. */
async function talkOnceAnswered(t: Test, fx: Fixture, resId: string, party: 1 | 2, ear: RtpEar, user: string): Promise<void> {
  await fx.progress(resId, 'answered', party);
  const to = (await carrierCall(fx.carrier, user)).offer();
  if (!to) return void t.fail(`no SDP offer in the INVITE to ${user}`);
  await ear.talk({ to, freq: party === 1 ? TONE.party1Talks : TONE.party2Talks });
}

forEachTarget(t, 'duo_callback countdown: both parties hear the warning countdown_seconds before the limit; it is in the recording', async (t, target) => {
  const fx = await setup(t, target);
  if (!fx) return;
  const [ear1, ear2] = [await fx.ear(), await fx.ear()];
  const [user1, user2] = [`answer-${ear1.port}`, `answer-${ear2.port}`];
  const resId = await fx.construct('ext.duo_callback.construct', {
    to1_uri: `sip:${user1}@carrier`,
    to2_uri: `sip:${user2}@carrier`,
    max_answer_seconds: 4,
    record_file: 'cd.wav',
    user_data: 'cd',
    countdown_seconds: 2,
    countdown_play_file: 'ring.wav', // 800 ms of 600 Hz
  });
  await Promise.all([talkOnceAnswered(t, fx, resId, 1, ear1, user1), talkOnceAnswered(t, fx, resId, 2, ear2, user2)]);
  const connected = await fx.progress(resId, 'connected', 2);
  const countdown = await fx.progress(resId, 'countdown', 2);
  const late = countdown.at - connected.at - 2000;
  t.ok(late >= -50 && late <= 300, `countdown event 2 s after connected (${late.toFixed(0)} ms late)`);
  const released = await checkResource(t, fx, resId, 'cd');
  t.match(released, { error: null, dropped_by: 'sys', record_file: 'cd.wav' });

  const c = connected.at;
  for (const [name, ear, other] of [['party 1', ear1, TONE.party2Talks], ['party 2', ear2, TONE.party1Talks]] as const) {
    const before = hearing(ear, c + 1000, c + 1800);
    t.equal(before.main, other, `${name} hears the other party before the warning (${describeHearing(before)})`);
    const during = hearing(ear, countdown.at + 150, countdown.at + 650);
    t.equal(during.main, TONE.ringFile, `${name} hears the warning file (${describeHearing(during)})`);
    t.ok(during.soundMs >= 400, `${name} hears it steadily`);
    const after = hearing(ear, countdown.at + 1000, c + 3900);
    t.equal(after.main, other, `${name} hears the other party again after it (${describeHearing(after)})`);
  }

  const path = join(fx.ts.config.recordingsDir, 'cd.wav');
  t.ok(existsSync(path), 'the recording exists');
  if (existsSync(path)) {
    const wav = await readWav(path);
    const candidates = [TONE.party1Talks, TONE.party2Talks, TONE.ringFile];
    const at = (x: Int16Array | undefined, fromMs: number, toMs: number): Int16Array => (x ?? new Int16Array()).subarray(fromMs * 8, toMs * 8);
    const [left, right] = wav.channelData;
    t.equal(dominantFrequency(at(right, 1000, 1800), { candidates }), TONE.party2Talks, 'right channel: party 2 before the warning');
    t.equal(dominantFrequency(at(right, 2200, 2700), { candidates }), TONE.ringFile, 'right channel (what party 1 hears): the warning at 2 s');
    t.equal(dominantFrequency(at(left, 1000, 1800), { candidates }), TONE.party1Talks, 'left channel: party 1 before the warning');
    t.equal(dominantFrequency(at(right, 3100, 3700), { candidates }), TONE.party2Talks, 'right channel: party 2 again after it');
  }
  await checkEnd(t, fx, 2);
});
