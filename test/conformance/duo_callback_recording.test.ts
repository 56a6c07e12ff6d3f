// Conformance: ext.duo_callback recording (seed 000 record_file + record_mode)
// end to end over the public WebSocket API, against SIPp far ends, per engine
// target. Each party's RtpEar talks its own tone, the carrier's early media is
// its own tone, so the stereo WAV tells whose audio went where and when.
// (Split from duo_callback.test.ts to keep each file within tap's timeout.)
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { readWav } from '../support/audio/wav.js';
import { dominantFrequency } from '../support/audio/signal.js';
import { EARLY_SECS, TONE, carrierCall, checkCdr, checkEnd, checkResource, forEachTarget, setup, talkOnceAnswered, type Fixture } from './support.js';
import type { EngineTarget } from './targets.js';

forEachTarget(t, 'duo_callback recording: stereo WAV, party 1 left, party 2 right', async (t, target) => {
  const fx = await setup(t, target);
  if (!fx) return;
  const [ear1, ear2] = [await fx.ear(), await fx.ear()];
  const user1 = `answer-${ear1.port}`;
  const user2 = `answer-${ear2.port}`;
  const resId = await fx.construct('ext.duo_callback.construct', {
    to1_uri: `sip:${user1}@carrier`,
    to2_uri: `sip:${user2}@carrier`,
    max_answer_seconds: 2,
    record_file: 'calls/rec-1.wav',
    user_data: 'rec',
  });
  await Promise.all([talkOnceAnswered(t, fx, resId, 1, ear1, user1), talkOnceAnswered(t, fx, resId, 2, ear2, user2)]);
  const params = await checkResource(t, fx, resId, 'rec');
  t.match(params, { error: null, dropped_by: 'sys', record_file: 'calls/rec-1.wav', connect_time: Number });
  t.equal((await checkCdr(t, fx, resId, [user1, user2])).released.record_file, 'calls/rec-1.wav', 'the CDR names the recording');
  const path = join(fx.ts.config.recordingsDir, fx.ts.accountId, 'calls', 'rec-1.wav');
  t.ok(existsSync(path), `the recording exists once on_released is sent (${path})`);
  if (existsSync(path)) {
    const wav = await readWav(path);
    t.equal(wav.channels, 2, 'stereo');
    t.equal(wav.rate, 8000, '8 kHz');
    const complete = wav.durationMs >= 1200 && wav.durationMs <= 3000;
    t.ok(complete, `when on_released arrives the recording is complete: about max_answer_seconds long (${wav.durationMs.toFixed(0)} ms)`);
    if (!complete) {
      // Diagnosis only: does the engine finish the file after on_released?
      await new Promise((r) => setTimeout(r, 3000));
      const later = await readWav(path).catch((err: Error) => err);
      t.comment(`3 s after on_released the recording is ${later instanceof Error ? later.message : `${later.durationMs.toFixed(0)} ms long`}`);
    }
    const candidates = [TONE.party1Talks, TONE.party2Talks, TONE.early, TONE.ringFile, TONE.prompt];
    const [left, right] = wav.channelData;
    // Skip the first 300 ms (the talkers start a moment after connection).
    const cut = (x: Int16Array | undefined): Int16Array => (x ?? new Int16Array()).subarray(2400);
    t.equal(dominantFrequency(cut(left), { candidates }), TONE.party1Talks, 'left channel carries party 1');
    t.equal(dominantFrequency(cut(right), { candidates }), TONE.party2Talks, 'right channel carries party 2');
  }
  await checkEnd(t, fx, 2);
});

/** Reads a finished recording; each channel cut to the window [fromMs, toMs) of the file. */
async function recordingOf(t: Test, fx: Fixture, name: string) {
  const path = join(fx.ts.config.recordingsDir, fx.ts.accountId, name);
  if (!existsSync(path)) {
    t.fail(`the recording ${path} exists once on_released is sent`);
    return undefined;
  }
  const wav = await readWav(path);
  t.equal(wav.channels, 2, 'stereo');
  const window = (channel: 0 | 1, fromMs: number, toMs: number): Int16Array =>
    (wav.channelData[channel] ?? new Int16Array()).subarray(Math.max(0, Math.round(fromMs * 8)), Math.max(0, Math.round(toMs * 8)));
  return { durationMs: wav.durationMs, window };
}

const RECORDED_TONES = [TONE.party1Talks, TONE.party2Talks, TONE.early, TONE.ringFile];
/** Slack at each edge of a window: the engine starts a recording up to this long after the event that names it. */
const EDGE_MS = 300;
/**
 * How much shorter than INVITE → on_released a file may be. FreeSWITCH writes
 * from the channel's first media frame, once the party's SDP is applied
 * (docs/deploy.md): here ~400 ms after the INVITE; its teardown adds ~250 ms.
 */
const missingAtMost = (target: EngineTarget): number => (target.name === 'drachtio' ? 1000 : 500);

// Mode 1: party 1 rings with early media (left), then hears the ring file (ring_play_mode 2) while
// party 2 is dialled (right). Mode 2: party 1 hears the whole ring file first (ring_play_mode 3),
// which must not be in the file; party 2's early media is right.
for (const mode of [1, 2] as const) {
  const side = mode === 1 ? 'left' : 'right';
  forEachTarget(t, `duo_callback record_mode ${mode}: recorded from dialling party ${mode}, its early media ${side}, party 1 left, party 2 right`, async (t, target) => {
    const fx = await setup(t, target);
    if (!fx) return;
    const [ear1, ear2] = [await fx.ear(), await fx.ear()];
    const user1 = mode === 1 ? `early-${EARLY_SECS}-${ear1.port}` : `answer-${ear1.port}`;
    const user2 = `early-${EARLY_SECS}-${ear2.port}`;
    const resId = await fx.construct('ext.duo_callback.construct', {
      to1_uri: `sip:${user1}@carrier`,
      to2_uri: `sip:${user2}@carrier`,
      max_answer_seconds: 2,
      ring_play_file: 'ring.wav',
      ring_play_mode: mode === 1 ? 2 : 3,
      record_file: `mode${mode}.wav`,
      record_mode: mode,
      user_data: `rec-${mode}`,
    });
    const talking = Promise.all([talkOnceAnswered(t, fx, resId, 1, ear1, user1), talkOnceAnswered(t, fx, resId, 2, ear2, user2)]);
    const answered1 = await fx.progress(resId, 'answered', 1);
    const dialed = await fx.progress(resId, 'dialing', mode);
    const early = await fx.progress(resId, 'early_media', mode);
    const answered = await fx.progress(resId, 'answered', mode);
    const dialing2 = await fx.progress(resId, 'dialing', 2);
    const answered2 = await fx.progress(resId, 'answered', 2);
    const connected = await fx.progress(resId, 'connected', 2);
    await talking;
    const released = await fx.released(resId);
    t.match(await checkResource(t, fx, resId, `rec-${mode}`), { error: null, record_file: `mode${mode}.wav` });
    const rec = await recordingOf(t, fx, `mode${mode}.wav`);
    if (rec) {
      // From the INVITE (the engine may prepare media before it), to the release.
      const start = (await carrierCall(fx.carrier, mode === 1 ? user1 : user2)).invite?.at ?? dialed.at;
      const span = released.at - start;
      t.ok(rec.durationMs >= span - missingAtMost(target) && rec.durationMs <= span + 300, `the file covers dialling party ${mode} to the end (${rec.durationMs.toFixed(0)} ms of ${span.toFixed(0)} ms)`);
      const at = (ev: { at: number }): number => ev.at - start;
      const tone = (channel: 0 | 1, from: number, to: number): number => dominantFrequency(rec.window(channel, from + EDGE_MS, to - EDGE_MS), { candidates: RECORDED_TONES });
      t.equal(tone(mode === 1 ? 0 : 1, at(early), at(answered)), TONE.early, `${side}, before party ${mode} answers: its early media`);
      if (mode === 1) t.equal(tone(1, at(dialing2), at(answered2)), TONE.ringFile, 'right, while party 2 is dialled: the ring file party 1 hears');
      else t.ok(rec.durationMs < released.at - answered1.at - 400, 'not the ring file party 1 heard before party 2 was dialled');
      t.equal(tone(0, at(connected), at(released) - 200), TONE.party1Talks, 'left once connected: party 1');
      t.equal(tone(1, at(connected), at(released) - 200), TONE.party2Talks, 'right once connected: party 2');
    }
    await checkEnd(t, fx, 2);
  });
}
