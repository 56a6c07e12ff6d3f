// Conformance: every ext.duo_callback flow of shared/spec/API.md, end to end
// over the public WebSocket API, against SIPp far ends, per engine target.
// Each party's RtpEar talks its own tone, so what each ear hears (and what a
// recording holds) tells whose audio went where. The countdown warning is checked by ear and in the recording.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { readWav } from '../support/audio/wav.js';
import { dominantFrequency } from '../support/audio/signal.js';
import type { RtpEar } from '../support/sipp/RtpEar.js';
import {
  EARLY_SECS,
  RING_FILE_MS,
  TONE,
  carrierCall,
  receivedCount,
  carrierCallWhen,
  checkEnd,
  checkCdr,
  checkResource,
  describeHearing,
  forEachTarget,
  hearing,
  setup,
  talkOnceAnswered,
  toneOf,
} from './support.js';

/** Checks both directions of the bridge in a window after `from` (epoch ms). */
function checkBothWays(t: Test, ear1: RtpEar, ear2: RtpEar, from: number, to: number): void {
  const h1 = hearing(ear1, from, to);
  const h2 = hearing(ear2, from, to);
  const span = to - from;
  t.equal(h1.main, TONE.party2Talks, `party 1 hears party 2 (${describeHearing(h1)})`);
  t.ok(h1.soundMs >= span * 0.7 && h1.purity >= 0.9, 'party 1 hears party 2 steadily');
  t.equal(h2.main, TONE.party1Talks, `party 2 hears party 1 (${describeHearing(h2)})`);
  t.ok(h2.soundMs >= span * 0.7 && h2.purity >= 0.9, 'party 2 hears party 1 steadily');
}

forEachTarget(t, 'duo_callback full flow: early media passed through, then audio both ways', async (t, target) => {
  const fx = await setup(t, target);
  if (!fx) return;
  const [ear1, ear2] = [await fx.ear(), await fx.ear()];
  const user1 = `answer-${ear1.port}`;
  const user2 = `early-${EARLY_SECS}-${ear2.port}`;
  const resId = await fx.construct('ext.duo_callback.construct', {
    from1_uri: 'sip:4001@cti.test',
    to1_uri: `sip:${user1}@carrier`,
    from2_uri: null,
    to2_uri: `sip:${user2}@carrier`,
    max_answer_seconds: 3,
    max_ring_seconds: 10,
    ring_play_file: null,
    ring_play_mode: 3,
    record_file: null,
    user_data: 'duo-full',
  });
  const talking1 = talkOnceAnswered(t, fx, resId, 1, ear1, user1);
  const talking2 = talkOnceAnswered(t, fx, resId, 2, ear2, user2);
  const early = await fx.progress(resId, 'early_media', 2);
  t.equal(early.params.sip_status, 183);
  const answered2 = await fx.progress(resId, 'answered', 2);
  const connected = await fx.progress(resId, 'connected', 2);
  await Promise.all([talking1, talking2]);

  const ringing = hearing(ear1, early.at + 200, answered2.at - 100);
  t.equal(ringing.main, TONE.early, `while party 2 rings, party 1 hears its early media (${describeHearing(ringing)})`);
  t.ok(ringing.soundMs >= (EARLY_SECS * 1000 - 300) * 0.7, 'early media heard for most of the ringing');
  t.ok(ringing.purity >= 0.9, 'and nothing else');

  const released = await fx.released(resId);
  checkBothWays(t, ear1, ear2, connected.at + 300, released.at - 200);
  const params = await checkResource(t, fx, resId, 'duo-full');
  t.match(params, { error: null, dropped_by: 'sys', answer_time: Number, connect_time: Number });
  t.notOk('record_file' in params, 'no record_file without recording');
  const cdr = await checkCdr(t, fx, resId, [user1, user2]);
  t.type(cdr.parties[1]!.ring_time, 'number', "party 2's CDR has the time its 183 came");
  t.notOk('record_file' in cdr.released, 'no record_file in the CDR');

  const [c1, c2] = [await carrierCall(fx.carrier, user1), await carrierCall(fx.carrier, user2)];
  t.match(c1.invite?.firstLine, /^INVITE sip:answer-/, 'party 1 dialled');
  t.ok(c2.invite && c1.invite && c2.invite.at >= c1.messages.find((m) => m.status === 200)!.at, 'party 2 dialled after party 1 answered');
  t.equal(await receivedCount(fx.carrier, c1.user, 'BYE'), 1, 'party 1 hung up by the server');
  t.equal(await receivedCount(fx.carrier, c2.user, 'BYE'), 1, 'party 2 hung up by the server');
  await checkEnd(t, fx, 2);
});

for (const mode of [0, 1, 2, 3] as const) {
  forEachTarget(t, `duo_callback ring_play_mode ${mode} with a ring file`, async (t, target) => {
    const fx = await setup(t, target);
    if (!fx) return;
    const [ear1, ear2] = [await fx.ear(), await fx.ear()];
    const user1 = `answer-${ear1.port}`;
    const user2 = `early-${EARLY_SECS}-${ear2.port}`;
    const resId = await fx.construct('ext.duo_callback.construct', {
      to1_uri: `sip:${user1}@carrier`,
      to2_uri: `sip:${user2}@carrier`,
      max_answer_seconds: 2,
      max_ring_seconds: 10,
      ring_play_file: 'ring.wav',
      ring_play_mode: mode,
      user_data: `mode-${mode}`,
    });
    const talking1 = talkOnceAnswered(t, fx, resId, 1, ear1, user1);
    const talking2 = talkOnceAnswered(t, fx, resId, 2, ear2, user2);
    const answered1 = await fx.progress(resId, 'answered', 1);
    const dialing2 = await fx.progress(resId, 'dialing', 2);
    const early = await fx.progress(resId, 'early_media', 2);
    const answered2 = await fx.progress(resId, 'answered', 2);
    const connected = await fx.progress(resId, 'connected', 2);
    await Promise.all([talking1, talking2]);

    // What party 1 hears while party 2 rings with early media.
    const ringing = hearing(ear1, early.at + 200, answered2.at - 100);
    const expected = mode === 0 || mode === 2 ? TONE.ringFile : TONE.early;
    t.equal(ringing.main, expected, `mode ${mode}: during party 2's early media party 1 hears ${expected} Hz (${describeHearing(ringing)})`);
    t.ok(ringing.purity >= 0.9, 'and nothing else');
    t.ok(ringing.soundMs >= (answered2.at - early.at - 300) * 0.7, 'for most of the ringing');

    if (mode === 3) {
      // The file to its end first, then party 2 is dialled.
      const filePackets = ear1.packets.filter((p) => toneOf(p) === TONE.ringFile);
      const first = filePackets[0];
      const last = filePackets.at(-1);
      t.ok(first && last, 'the ring file is heard');
      if (first && last) {
        const endMs = last.at + 20;
        t.ok(Math.abs(filePackets.length * 20 - RING_FILE_MS) <= 60, `the whole file (${RING_FILE_MS} ms) is heard once: ${filePackets.length * 20} ms`);
        t.ok(endMs - first.at <= RING_FILE_MS + 150, `in one go (${(endMs - first.at).toFixed(0)} ms from first to last packet)`);
        t.ok(first.at >= answered1.at - 200, 'the file starts once party 1 answered');
        const invite2 = (await carrierCall(fx.carrier, user2)).invite;
        t.ok(invite2 && invite2.at >= endMs - 60, `party 2's INVITE comes after the file ended (${invite2 ? (invite2.at - endMs).toFixed(0) : '?'} ms after)`);
        t.ok(dialing2.at >= endMs - 60, 'dialing of party 2 is reported after the file ended');
      }
    } else {
      // Party 2 is dialled at once; mode 1 and 2 play the file from dialling.
      t.ok(dialing2.at - answered1.at < 500, 'party 2 dialled right after party 1 answered');
    }

    // Once connected: the file stops, party 2's voice is heard.
    const released = await fx.released(resId);
    const talk = hearing(ear1, connected.at + 300, released.at - 200);
    t.equal(talk.main, TONE.party2Talks, `connected: party 1 hears party 2 (${describeHearing(talk)})`);
    t.notOk(talk.tones[TONE.ringFile], 'the ring file stopped');
    t.match(await checkResource(t, fx, resId, `mode-${mode}`), { error: null, dropped_by: 'sys', connect_time: Number });
    await checkEnd(t, fx, 2);
  });
}

forEachTarget(t, 'duo_callback max_answer_seconds: both hung up by the system; cancel once connected → invalid state', async (t, target) => {
  const fx = await setup(t, target);
  if (!fx) return;
  const [ear1, ear2] = [await fx.ear(), await fx.ear()];
  const user1 = `answer-${ear1.port}`;
  const user2 = `answer-${ear2.port}`;
  const resId = await fx.construct('ext.duo_callback.construct', [null, `sip:${user1}@carrier`, null, `sip:${user2}@carrier`, 2, 10, null, null, null, 'max-answer']);
  const talking = Promise.all([talkOnceAnswered(t, fx, resId, 1, ear1, user1), talkOnceAnswered(t, fx, resId, 2, ear2, user2)]);
  const connected = await fx.progress(resId, 'connected', 2);
  const refused = await fx.client.call('ext.duo_callback.cancel', [resId]);
  t.match(refused.error, { code: -32002, data: { res_id: resId, state: 'Connected' } }, 'cancel after connect: invalid state');
  await talking;
  const releasedEvent = await fx.released(resId);
  const talked = releasedEvent.at - connected.at;
  t.ok(talked >= 1800 && talked <= 2800, `released ~2 s after connect (${talked.toFixed(0)} ms)`);
  checkBothWays(t, ear1, ear2, connected.at + 300, releasedEvent.at - 200);
  t.match(await checkResource(t, fx, resId, 'max-answer'), { error: null, dropped_by: 'sys', connect_time: Number });
  t.equal(await receivedCount(fx.carrier, user1, 'BYE'), 1, 'party 1 got BYE');
  t.equal(await receivedCount(fx.carrier, user2, 'BYE'), 1, 'party 2 got BYE');
  t.match((await fx.client.call('ext.duo_callback.cancel', [resId])).error, { code: -32001 }, 'cancel after release: not found');
  await checkEnd(t, fx, 2);
});

forEachTarget(t, 'duo_callback: party 2 busy → error busy for party 2, party 1 hung up', async (t, target) => {
  const fx = await setup(t, target);
  if (!fx) return;
  const ear1 = await fx.ear();
  const user1 = `answer-${ear1.port}`;
  const resId = await fx.construct('ext.duo_callback.construct', { to1_uri: `sip:${user1}@carrier`, to2_uri: 'sip:busy@carrier' });
  const params = await checkResource(t, fx, resId, null);
  t.match(params, { error: { code: 'busy', party: 2, sip_status: 486 }, answer_time: Number, connect_time: null, dropped_by: 'usr' });
  t.equal(await receivedCount(fx.carrier, user1, 'BYE'), 1, 'party 1 got BYE');
  await checkEnd(t, fx, 2);
});

forEachTarget(t, 'duo_callback: party 1 does not answer within max_ring_seconds → no_answer, CANCEL', async (t, target) => {
  const fx = await setup(t, target);
  if (!fx) return;
  const resId = await fx.construct('ext.duo_callback.construct', { to1_uri: 'sip:ring@carrier', to2_uri: 'sip:answer-9@carrier', max_ring_seconds: 1 });
  const dialing = await fx.progress(resId, 'dialing', 1);
  const releasedEvent = await fx.released(resId);
  const waited = releasedEvent.at - dialing.at;
  t.ok(waited >= 900 && waited <= 2500, `released ~1 s after dialling (${waited.toFixed(0)} ms)`);
  t.match(await checkResource(t, fx, resId, null), { error: { code: 'no_answer', party: 1 }, answer_time: null, connect_time: null, dropped_by: 'sys' });
  const call = await carrierCall(fx.carrier, 'ring');
  t.equal(await receivedCount(fx.carrier, call.user, 'CANCEL'), 1, 'CANCEL reached the carrier');
  t.ok((await carrierCallWhen(fx.carrier, 'ring', (c) => c.sentStatuses().includes(487))).sentStatuses().includes(487), 'the INVITE ended with 487');
  await checkEnd(t, fx, 1);
});

forEachTarget(t, 'duo_callback: cancel while party 1 rings', async (t, target) => {
  const fx = await setup(t, target);
  if (!fx) return;
  const resId = await fx.construct('ext.duo_callback.construct', { to1_uri: 'sip:ring@carrier', to2_uri: 'sip:answer-9@carrier', user_data: 'c1' });
  await fx.progress(resId, 'ringing', 1);
  t.match(await fx.client.call('ext.duo_callback.cancel', { res_id: resId }), { result: null }, 'cancel accepted');
  t.match(await checkResource(t, fx, resId, 'c1'), { error: { code: 'cancelled' }, answer_time: null, dropped_by: 'sys' });
  const call = await carrierCall(fx.carrier, 'ring');
  t.equal(await receivedCount(fx.carrier, call.user, 'CANCEL'), 1, 'CANCEL reached the carrier');
  t.ok((await carrierCallWhen(fx.carrier, 'ring', (c) => c.sentStatuses().includes(487))).sentStatuses().includes(487), 'the INVITE ended with 487');
  t.match((await fx.client.call('ext.duo_callback.cancel', [resId])).error, { code: -32001 }, 'a second cancel: not found');
  await checkEnd(t, fx, 1);
});

forEachTarget(t, 'duo_callback: cancel while party 2 rings', async (t, target) => {
  const fx = await setup(t, target);
  if (!fx) return;
  const ear1 = await fx.ear();
  const user1 = `answer-${ear1.port}`;
  const resId = await fx.construct('ext.duo_callback.construct', { to1_uri: `sip:${user1}@carrier`, to2_uri: 'sip:ring@carrier', user_data: 'c2' });
  await fx.progress(resId, 'ringing', 2);
  t.match(await fx.client.call('ext.duo_callback.cancel', [resId]), { result: null }, 'cancel accepted');
  t.match(await checkResource(t, fx, resId, 'c2'), { error: { code: 'cancelled' }, answer_time: Number, connect_time: null, dropped_by: 'sys' });
  const call2 = await carrierCall(fx.carrier, 'ring');
  t.equal(await receivedCount(fx.carrier, call2.user, 'CANCEL'), 1, 'party 2: CANCEL reached the carrier');
  t.equal(await receivedCount(fx.carrier, user1, 'BYE'), 1, 'party 1: BYE');
  await checkEnd(t, fx, 2);
});

forEachTarget(t, 'duo_callback: party 2 hangs up after connect → dropped_by usr, party 1 BYEd', async (t, target) => {
  const fx = await setup(t, target);
  if (!fx) return;
  const [ear1, ear2] = [await fx.ear(), await fx.ear()];
  const user1 = `answer-${ear1.port}`;
  const user2 = `hangup-1.5-${ear2.port}`;
  const resId = await fx.construct('ext.duo_callback.construct', { to1_uri: `sip:${user1}@carrier`, to2_uri: `sip:${user2}@carrier`, max_answer_seconds: 30 });
  await Promise.all([talkOnceAnswered(t, fx, resId, 1, ear1, user1), talkOnceAnswered(t, fx, resId, 2, ear2, user2)]);
  await fx.progress(resId, 'connected', 2);
  t.match(await checkResource(t, fx, resId, null), { error: null, dropped_by: 'usr', connect_time: Number });
  t.same((await carrierCall(fx.carrier, user2)).received('BYE'), [], 'party 2 hung up itself (no BYE from the server)');
  t.equal(await receivedCount(fx.carrier, user1, 'BYE'), 1, 'party 1 got BYE');
  await checkEnd(t, fx, 2);
});

forEachTarget(t, 'duo_callback: the same number for both parties → invalid params, nothing dialled', async (t, target) => {
  const fx = await setup(t, target);
  if (!fx) return;
  const reply = await fx.client.call('ext.duo_callback.construct', { to1_uri: 'sip:answer-5@carrier', to2_uri: 'sip:answer-5@carrier-auth' });
  t.equal(reply.error?.code, -32602, 'invalid params');
  t.match(reply.error?.data?.errors, [{ param: 'to2_uri', message: /same number/ }]);
  t.same(fx.events, [], 'no event');
  await checkEnd(t, fx, 0);
});

forEachTarget(t, 'duo_callback: party 2 rings without early media, party 1 hears the ringback tone', async (t, target) => {
  const fx = await setup(t, target);
  if (!fx) return;
  const [ear1, ear2] = [await fx.ear(), await fx.ear()];
  const user1 = `answer-${ear1.port}`;
  const user2 = `ringans-1.5-${ear2.port}`;
  const resId = await fx.construct('ext.duo_callback.construct', {
    to1_uri: `sip:${user1}@carrier`,
    to2_uri: `sip:${user2}@carrier`,
    max_answer_seconds: 1,
    user_data: 'plain-180',
  });
  const ringing = await fx.progress(resId, 'ringing', 2);
  t.equal(ringing.params.sip_status, 180);
  const answered2 = await fx.progress(resId, 'answered', 2);
  const heard = hearing(ear1, ringing.at + 200, answered2.at - 100);
  t.equal(heard.main, TONE.ringback, `party 1 hears the ringback tone while party 2 rings (${describeHearing(heard)})`);
  t.ok(heard.soundMs >= (answered2.at - ringing.at - 300) * 0.7 && heard.purity >= 0.9, 'steadily, and nothing else');
  await fx.progress(resId, 'connected', 2);
  const params = await checkResource(t, fx, resId, 'plain-180');
  t.match(params, { error: null, dropped_by: 'sys' });
  await checkEnd(t, fx, 2);
});

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

  const path = join(fx.ts.config.recordingsDir, fx.ts.accountId, 'cd.wav');
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
