// Conformance: every ext.notify_call flow of shared/spec/API.md, end to end
// over the public WebSocket API, against SIPp far ends, per engine target.
import t from 'tap';
import { PROMPT_GAP_MS, PROMPT_TONE_MS, TONE, carrierCall, receivedCount, carrierCallWhen, checkEnd, checkResource, describeHearing, forEachTarget, hearing, setup } from './support.js';

const GAP = 300; // < PROMPT_GAP_MS: one segment per play of the prompt

forEachTarget(t, 'notify_call answered: prompt played play_repeat+1 times, then the server hangs up', async (t, target) => {
  const fx = await setup(t, target);
  if (!fx) return;
  const ear = await fx.ear();
  const user = `answer-${ear.port}`;
  const resId = await fx.construct('ext.notify_call.construct', {
    to_uri: `sip:${user}@carrier`,
    play_content: 'prompt.wav',
    play_repeat: 2,
    max_ring_seconds: 5,
    user_data: 'n-answered',
  });
  const answered = await fx.progress(resId, 'answered');
  const released = await checkResource(t, fx, resId, 'n-answered');
  t.match(released, { error: null, dropped_by: 'sys', answer_time: Number });

  const segments = ear.segments(GAP);
  t.equal(segments.length, 3, `3 bursts heard (play_repeat 2): ${segments.map((s) => s.durationMs.toFixed(0)).join(', ')} ms`);
  for (const [i, s] of segments.entries()) {
    t.equal(ear.dominantFrequency(s.pcm, { candidates: [TONE.prompt, TONE.early, TONE.ringFile] }), TONE.prompt, `burst ${i + 1} is the prompt's 1 kHz`);
    t.ok(Math.abs(s.durationMs - PROMPT_TONE_MS) <= 80, `burst ${i + 1} lasts ~${PROMPT_TONE_MS} ms (${s.durationMs.toFixed(0)})`);
  }
  const starts = segments.map((s) => s.startMs);
  for (let i = 1; i < starts.length; i++) {
    const period = starts[i]! - starts[i - 1]!;
    t.ok(Math.abs(period - (PROMPT_TONE_MS + PROMPT_GAP_MS)) <= 120, `plays follow each other every ~800 ms (${period.toFixed(0)})`);
  }
  const releasedEvent = fx.resourceEvents(resId).at(-1)!;
  const lastEnd = segments.at(-1)?.endMs ?? 0;
  t.ok(releasedEvent.at >= lastEnd, 'released only after the last burst was heard');
  t.ok(segments[0] && segments[0].startMs >= answered.at - 200, 'the prompt starts after the answer');

  const call = await carrierCall(fx.carrier, user);
  t.equal(await receivedCount(fx.carrier, call.user, 'BYE'), 1, 'the server sent BYE');
  t.same(call.received('CANCEL'), [], 'no CANCEL');
  await checkEnd(t, fx, 1);
});

forEachTarget(t, 'notify_call: callee hangs up mid-prompt → dropped_by usr', async (t, target) => {
  const fx = await setup(t, target);
  if (!fx) return;
  const ear = await fx.ear();
  const user = `hangup-1.2-${ear.port}`;
  // Positional params, in the seed's construct() order.
  const resId = await fx.construct('ext.notify_call.construct', [null, `sip:${user}@carrier`, 'prompt.wav', 10, 5, 'n-usr']);
  const released = await checkResource(t, fx, resId, 'n-usr');
  t.match(released, { error: null, dropped_by: 'usr', answer_time: Number });
  const bursts = ear.segments(GAP).length;
  t.ok(bursts >= 1 && bursts <= 3, `prompt cut short: ${bursts} of 11 plays heard`);
  const call = await carrierCall(fx.carrier, user);
  t.same(call.received('BYE'), [], 'the server sent no BYE (the callee did)');
  await checkEnd(t, fx, 1);
});

for (const [user, code, status] of [
  ['busy', 'busy', 486],
  ['notfound', 'unreachable', 404],
  ['unavailable', 'unreachable', 503],
  ['reject', 'rejected', 603],
] as const) {
  forEachTarget(t, `notify_call: ${user} → ${status} → error ${code}`, async (t, target) => {
    const fx = await setup(t, target);
    if (!fx) return;
    const resId = await fx.construct('ext.notify_call.construct', { to_uri: `sip:${user}@carrier`, play_content: 'prompt.wav', user_data: null });
    const released = await checkResource(t, fx, resId, null);
    t.match(released, { error: { code, sip_status: status, message: String }, answer_time: null, dropped_by: 'usr' });
    t.same(
      fx.resourceEvents(resId).filter((e) => e.method.endsWith('on_progress')).map((e) => e.params.progress),
      ['dialing'],
      'only dialing before the failure',
    );
    await checkEnd(t, fx, 1);
  });
}

forEachTarget(t, 'notify_call: an answer naming port 0 → rejected "no usable media in the answer", the call hung up, nothing played', async (t, target) => {
  const fx = await setup(t, target);
  if (!fx) return;
  const resId = await fx.construct('ext.notify_call.construct', { to_uri: 'sip:answer-0@carrier', play_content: 'prompt.wav', user_data: null });
  const released = await checkResource(t, fx, resId, null);
  t.match(released, { error: { code: 'rejected', message: 'no usable media in the answer' }, answer_time: null, dropped_by: 'sys' });
  t.same(
    fx.resourceEvents(resId).filter((e) => e.method.endsWith('on_progress')).map((e) => e.params.progress),
    ['dialing'],
    'never answered: no prompt "played" to nobody',
  );
  await checkEnd(t, fx, 1); // the carrier got its ACK and BYE: no call left up
});

forEachTarget(t, 'notify_call: rings past max_ring_seconds → no_answer, CANCEL reaches the carrier', async (t, target) => {
  const fx = await setup(t, target);
  if (!fx) return;
  const resId = await fx.construct('ext.notify_call.construct', { to_uri: 'sip:ring@carrier', play_content: 'prompt.wav', max_ring_seconds: 1 });
  const ringing = await fx.progress(resId, 'ringing');
  t.equal(ringing.params.sip_status, 180, 'ringing carries 180');
  const releasedEvent = await fx.released(resId);
  const waited = releasedEvent.at - ringing.at;
  t.ok(waited >= 900 && waited < 2500, `released ~1 s after ringing (${waited.toFixed(0)} ms)`);
  const released = await checkResource(t, fx, resId, null);
  t.match(released, { error: { code: 'no_answer' }, answer_time: null, dropped_by: 'sys' });
  const call = await carrierCall(fx.carrier, 'ring');
  t.equal(await receivedCount(fx.carrier, call.user, 'CANCEL'), 1, 'CANCEL reached the carrier');
  t.ok((await carrierCallWhen(fx.carrier, 'ring', (c) => c.sentStatuses().includes(487))).sentStatuses().includes(487), 'the INVITE ended with 487');
  await checkEnd(t, fx, 1);
});

forEachTarget(t, 'notify_call: to_uri list → the first gateway with free capacity is used', async (t, target) => {
  const fx = await setup(t, target);
  if (!fx) return;
  const ear = await fx.ear();
  // Fill carrier-small (1 call) with a ringing call.
  const filler = await fx.construct('ext.notify_call.construct', { to_uri: 'sip:ring@carrier-small', play_content: 'prompt.wav', max_ring_seconds: 3 });
  await fx.progress(filler, 'ringing');
  const user = `answer-${ear.port}`;
  const resId = await fx.construct('ext.notify_call.construct', {
    to_uri: [`sip:${user}@carrier-small`, `sip:${user}@carrier`],
    play_content: [['prompt.wav', 0, null]],
    play_repeat: 0,
  });
  await fx.progress(resId, 'answered');
  const context = (await fx.client.call('sys.resource.get', [resId])).result as { parties: Array<{ from_uri: string }> };
  t.equal(context.parties[0]?.from_uri, 'sip:075500000001@cti.test', "dialled through 'carrier' (its caller id), not the full 'carrier-small'");
  const released = await checkResource(t, fx, resId, null);
  t.match(released, { error: null, dropped_by: 'sys' });
  t.equal(ear.segments(GAP).length, 1, 'prompt played once (play_repeat 0)');
  const call = await carrierCall(fx.carrier, user);
  t.match(call.messages.find((m) => m.method === 'INVITE')?.firstLine, /^INVITE sip:answer-\d+@/, 'the carrier got the INVITE');

  const fillerReleased = await checkResource(t, fx, filler, null);
  t.match(fillerReleased, { error: { code: 'no_answer' }, dropped_by: 'sys' });
  // Now carrier-small is free again: the first of the list is taken.
  const ear2 = await fx.ear();
  const user2 = `answer-${ear2.port}`;
  const second = await fx.construct('ext.notify_call.construct', { to_uri: [`sip:${user2}@carrier-small`, `sip:${user2}@carrier`], play_content: 'prompt.wav', play_repeat: 0 });
  await fx.progress(second, 'answered');
  const context2 = (await fx.client.call('sys.resource.get', [second])).result as { parties: Array<{ from_uri: string }> };
  t.equal(context2.parties[0]?.from_uri, 'sip:075500000004@cti.test', "with room again, the first URI ('carrier-small') is used");
  t.match(await checkResource(t, fx, second, null), { error: null, dropped_by: 'sys' });
  await checkEnd(t, fx, 3);
});

forEachTarget(t, 'notify_call: digest auth gateway answers the 401 with its credentials', async (t, target) => {
  const fx = await setup(t, target);
  if (!fx) return;
  const ear = await fx.ear();
  const user = `auth-${ear.port}`;
  const resId = await fx.construct('ext.notify_call.construct', { to_uri: `sip:${user}@carrier-auth`, play_content: 'prompt.wav', play_repeat: 0 });
  const released = await checkResource(t, fx, resId, null);
  t.match(released, { error: null, dropped_by: 'sys', answer_time: Number });
  t.equal(ear.segments(GAP).length, 1, 'prompt heard once');
  const call = await carrierCall(fx.carrier, user);
  t.equal(call.received('INVITE').length, 2, 'INVITE, 401, INVITE with credentials');
  t.same(call.sentStatuses().filter((s) => s >= 200), [401, 200, 200], '401 then 200 (INVITE), 200 (BYE)');

  // The same call through a gateway with the wrong password: 403 → rejected.
  const badUser = `auth-${ear.port}`;
  const bad = await fx.construct('ext.notify_call.construct', { to_uri: `sip:${badUser}@carrier-badauth`, play_content: 'prompt.wav' });
  t.match(await checkResource(t, fx, bad, null), { error: { code: 'rejected', sip_status: 403 }, answer_time: null });
  await checkEnd(t, fx, 2);
});

forEachTarget(t, 'notify_call: TCP gateway', async (t, target) => {
  const fx = await setup(t, target, { tcp: true });
  if (!fx) return;
  const ear = await fx.ear();
  const user = `answer-${ear.port}`;
  const resId = await fx.construct('ext.notify_call.construct', { to_uri: `sip:${user}@carrier-tcp`, play_content: 'prompt.wav', play_repeat: 1 });
  const released = await checkResource(t, fx, resId, null);
  t.match(released, { error: null, dropped_by: 'sys', answer_time: Number });
  const segments = ear.segments(GAP);
  t.equal(segments.length, 2, `2 bursts over TCP signalling: ${describeHearing(hearing(ear, 0, Infinity))}`);
  const call = await carrierCall(fx.tcpCarrier!, user);
  t.ok(call.invite, 'the INVITE came over TCP');
  t.equal(await receivedCount(fx.tcpCarrier!, call.user, 'BYE'), 1, 'BYE over TCP');
  await checkEnd(t, fx, 0, 1);
});
