// Conformance: notify_call key collection end to end, per engine target. The carrier's
// answer names a test ear as its media address; the ear hears the prompt and presses keys
// with RFC 4733 telephone-events at known times, as a phone does.
import t, { type Test } from 'tap';
import type { CollectDtmf } from '../../lib/api/generated/types.js';
import { RtpEar } from '../support/sipp/RtpEar.js';
import { PROMPT_TONE_MS, TONE, carrierCall, checkEnd, checkResource, describeHearing, forEachTarget, hearing, receivedCount, setup } from './support.js';
import type { EngineTarget } from './targets.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A notify_call of prompt.wav with `collect` to a carrier phone that answers at once into a fresh ear. */
async function notifyWithKeys(t: Test, target: EngineTarget, collect: CollectDtmf, playRepeat: number, userData: string | null) {
  const fx = await setup(t, target);
  if (!fx) return undefined;
  const ear = await fx.ear();
  const user = `answer-${ear.port}`;
  const resId = await fx.construct('ext.notify_call.construct', {
    to_uri: `sip:${user}@carrier`,
    play_content: 'prompt.wav',
    play_repeat: playRepeat,
    collect_dtmf: collect,
    user_data: userData,
  });
  return { fx, ear, user, resId };
}

forEachTarget(t, 'notify_call collect_dtmf, barge-in: a key during the prompt stops it, the reply plays, the key is reported', async (t, target) => {
  const started = await notifyWithKeys(t, target, { max_digits: 1, replies: { '1': 'ring.wav' } }, 5, 'n-dtmf');
  if (!started) return;
  const { fx, ear, user, resId } = started;
  await fx.progress(resId, 'answered');
  await ear.waitForPackets(1, 10_000);
  await sleep(100); // inside the first 300 ms burst of the prompt
  const keyAt = RtpEar.now();
  await ear.pressKey('1');
  const dtmf = await fx.progress(resId, 'dtmf');
  t.equal(dtmf.params.dtmf, '1', 'progress dtmf carries the digit');
  t.ok(dtmf.at - keyAt < 1000, `reported ${(dtmf.at - keyAt).toFixed(0)} ms after the key`);
  const released = await checkResource(t, fx, resId, 'n-dtmf');
  t.match(released, { error: null, dropped_by: 'sys', dtmf: '1' });

  const before = hearing(ear, keyAt - 100, keyAt);
  t.equal(before.main, TONE.prompt, `the prompt before the key: ${describeHearing(before)}`);
  const reply = hearing(ear, keyAt + 300, keyAt + 700);
  t.equal(reply.main, TONE.ringFile, `the reply after the key: ${describeHearing(reply)}`);
  const after = hearing(ear, keyAt + 300, RtpEar.now());
  t.notOk(after.tones[TONE.prompt], `the prompt did not play again: ${describeHearing(after)}`);
  const call = await carrierCall(fx.carrier, user);
  t.equal(await receivedCount(fx.carrier, call.user, 'BYE'), 1, 'the server hung up after the reply');
  await checkEnd(t, fx, 1);
});

forEachTarget(t, 'notify_call collect_dtmf, no barge-in: keys during the prompt are ignored; digits then the terminator', async (t, target) => {
  const started = await notifyWithKeys(t, target, { max_digits: 4, barge_in: false, first_digit_timeout: 5 }, 0, null);
  if (!started) return;
  const { fx, ear, resId } = started;
  await fx.progress(resId, 'answered');
  await ear.waitForPackets(1, 10_000);
  await ear.pressKey('9'); // during the 300 ms tone: ignored
  await sleep(PROMPT_TONE_MS + 600); // the prompt (tone + gap) is over
  for (const key of '42#') await ear.pressKey(key);
  const released = await checkResource(t, fx, resId, null);
  t.match(released, { error: null, dropped_by: 'sys', dtmf: '42' });
  t.same(
    fx.resourceEvents(resId).filter((e) => e.params.progress === 'dtmf').map((e) => e.params.dtmf),
    ['4', '42'],
    'each digit in a progress event as collected',
  );
  await checkEnd(t, fx, 1);
});

forEachTarget(t, 'notify_call collect_dtmf: no key → the prompt repeats play_repeat times, then empty dtmf', async (t, target) => {
  const started = await notifyWithKeys(t, target, { first_digit_timeout: 1 }, 1, null);
  if (!started) return;
  const { fx, ear, resId } = started;
  const released = await checkResource(t, fx, resId, null);
  t.match(released, { error: null, dropped_by: 'sys', dtmf: '' });
  const bursts = ear.segments(300);
  t.equal(bursts.length, 2, `two plays of the prompt: ${bursts.map((s) => s.durationMs.toFixed(0)).join(', ')} ms`);
  if (bursts.length === 2) {
    const gap = bursts[1]!.startMs - bursts[0]!.endMs;
    t.ok(gap >= 1400 && gap <= 1900, `500 ms of the file's silence + 1 s first-digit timeout between plays (${gap.toFixed(0)} ms)`);
  }
  await checkEnd(t, fx, 1);
});
