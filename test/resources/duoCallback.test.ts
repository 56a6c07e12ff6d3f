import t from 'tap';
import { join } from 'node:path';
import { ServiceError } from '../../lib/errors/ServiceError.js';
import { ACCOUNT_ID, OWNER, serviceHarness, type Harness } from '../support/serviceHarness.js';
import type { ExtDuoCallbackConstructParams } from '../../lib/api/generated/types.js';
import type { ScriptedLeg } from '../support/ScriptedTelephonyEngine.js';


async function construct(h: Harness, params: Partial<ExtDuoCallbackConstructParams> = {}) {
  const result = h.service.constructDuoCallback({ to1_uri: '13967446745', to2_uri: '13009347583', ...params }, OWNER);
  await h.tick();
  return result;
}

/** Party 1 answers; party 2 is dialled (modes without a pre-dial file). */
/** Works on the newest resource: its party 1 is the last leg dialled. */
async function answerParty1(h: Harness) {
  const leg1 = h.engine.legs.at(-1)!;
  leg1.ring();
  leg1.answer();
  await h.tick();
  return leg1;
}

async function connect(h: Harness) {
  const leg1 = await answerParty1(h);
  const leg2 = h.engine.legs.at(-1)!;
  leg2.ring(true);
  leg2.answer();
  await h.tick();
  return { leg1, leg2 };
}

t.test('construct answers at once with the seed result shape', async (t) => {
  const h = serviceHarness();
  const result = h.service.constructDuoCallback({ to1_uri: '13967446745', to2_uri: '13009347583', user_data: 'u1' }, OWNER);
  t.match(result.res_id, /^0\.0\.0-ext\.duo_callback-\d+$/);
  t.equal(result.res_id, `0.0.0-ext.duo_callback-${result.ipsc_info.process_id}`);
  t.ok(Number.isSafeInteger(result.ipsc_info.process_id) && result.ipsc_info.process_id > 0);
  t.equal(result.user_data, 'u1');
  t.equal(h.engine.legs.length, 0, 'nothing dialled before the reply is sent');
  await h.tick();
  t.equal(h.engine.legs.length, 1, 'party 1 dialled right after');
  t.equal(h.engine.legs[0]!.request.requestUri, 'sip:13967446745@192.0.2.10:5060');
  t.equal(h.engine.legs[0]!.request.fromUri, 'sip:075589877675@192.0.2.10', 'gateway default caller id');
  const second = h.service.constructDuoCallback({ to1_uri: '1', to2_uri: '2' }, OWNER);
  t.not(second.ipsc_info.process_id, result.ipsc_info.process_id, 'process ids are unique');
});

t.test('happy path walks Initiated → Answer1 → Answer2 → Connected → Released', async (t) => {
  const h = serviceHarness();
  const { res_id } = await construct(h, { from1_uri: '10086', from2_uri: 'sip:95555@gw1', max_answer_seconds: 60, user_data: 'x' });
  const get = () => h.service.getResource(res_id, ACCOUNT_ID);
  t.equal(get().state, 'Initiated');
  t.equal(h.engine.legs[0]!.request.fromUri, 'sip:10086@192.0.2.10');
  const leg1 = h.engine.legs[0]!;
  leg1.ring();
  t.equal(get().parties[0]!.state, 'RINGING');
  leg1.answer();
  await h.tick();
  t.equal(get().state, 'Answer1');
  t.equal(h.engine.legs.length, 2, 'party 2 dialled once party 1 answered');
  const leg2 = h.engine.legs[1]!;
  t.equal(leg2.request.fromUri, 'sip:95555@192.0.2.10', "the client's caller id at the gateway's host");
  leg2.ring(true);
  t.equal(h.engine.bridges.length, 1, 'party 2 early media passed through to party 1');
  t.equal(get().parties[1]!.state, 'EARLY_MEDIA');
  leg2.answer();
  await h.tick();
  t.equal(get().state, 'Connected');
  t.ok(get().connect_time);
  t.same(
    h.progress(res_id).map((p) => `${p.state}:${p.party}:${p.progress}`),
    [
      'Initiated:1:dialing',
      'Initiated:1:ringing',
      'Answer1:1:answered',
      'Answer1:2:dialing',
      'Answer1:2:early_media',
      'Answer2:2:answered',
      'Connected:2:connected',
    ],
  );
  t.ok(h.progress(res_id).every((p) => p.user_data === 'x' && p.res_id === res_id));
  h.clock.advance(59_000);
  t.equal(h.released(res_id).length, 0);
  h.clock.advance(1_000);
  await h.tick();
  const [released] = h.released(res_id);
  t.match(released, { res_id, error: null, dropped_by: 'sys', user_data: 'x' });
  t.equal(released!.end_time, released!.connect_time! as number + 60, 'max_answer_seconds counted from connection');
  t.equal(leg1.hangups, 1);
  t.equal(leg2.hangups, 1);
  t.ok(h.engine.bridges[0]!.closed, 'bridge closed');
  t.notOk(h.service.resourceExists(res_id, ACCOUNT_ID));
  t.throws(() => h.service.getResource(res_id, ACCOUNT_ID), { name: 'ServiceError', kind: 'not_found' });
});

t.test('passthrough: a 180 without media gives party 1 a ringback tone until early media', async (t) => {
  const h = serviceHarness();
  await construct(h);
  const leg1 = await answerParty1(h);
  const leg2 = h.engine.legs[1]!;
  leg2.ring(false);
  t.equal(leg1.playing?.files[0], join(h.mediaDir, 'ringback.wav'));
  t.equal(h.engine.bridges.length, 0);
  leg2.ring(true);
  t.equal(leg1.playing, undefined, 'tone stopped');
  t.equal(h.engine.bridges.length, 1, 'real early media bridged');
});

t.test('ring_play_mode 0: file from party 2 ringback on, until answer', async (t) => {
  const h = serviceHarness();
  await construct(h, { ring_play_file: 'ring.wav', ring_play_mode: 0 });
  const leg1 = await answerParty1(h);
  t.equal(h.engine.legs.length, 2, 'party 2 dialled at once');
  t.equal(leg1.playing, undefined, 'nothing before ringback');
  const leg2 = h.engine.legs[1]!;
  leg2.ring(true);
  t.equal(leg1.playing?.files[0], join(h.mediaDir, 'ring.wav'));
  t.equal(h.engine.bridges.length, 0, 'early media not passed through');
  leg2.answer();
  await h.tick();
  t.equal(leg1.playing, undefined, 'file stopped at answer');
  t.equal(h.engine.bridges.length, 1);
});

t.test('ring_play_mode 1: file from dialling until ringback, then the real ringback', async (t) => {
  const h = serviceHarness();
  await construct(h, { ring_play_file: 'ring.wav', ring_play_mode: 1 });
  const leg1 = await answerParty1(h);
  t.equal(leg1.playing?.files[0], join(h.mediaDir, 'ring.wav'), 'file while dialling');
  const leg2 = h.engine.legs[1]!;
  leg2.ring(true);
  t.equal(leg1.playing, undefined, 'file stopped at ringback');
  t.equal(leg1.plays[0]!.completed, false);
  t.equal(h.engine.bridges.length, 1, 'real ringback passed through');
});

t.test('ring_play_mode 2: file from dialling until answer, ignoring ringback', async (t) => {
  const h = serviceHarness();
  await construct(h, { ring_play_file: 'ring.wav', ring_play_mode: 2 });
  const leg1 = await answerParty1(h);
  const leg2 = h.engine.legs[1]!;
  leg2.ring(true);
  t.equal(leg1.playing?.files[0], join(h.mediaDir, 'ring.wav'), 'still the file during ringback');
  t.equal(h.engine.bridges.length, 0);
  leg2.answer();
  await h.tick();
  t.equal(leg1.playing, undefined);
  t.equal(h.engine.bridges.length, 1);
});

t.test('ring_play_mode 2: file stops when party 2 fails', async (t) => {
  const h = serviceHarness();
  const { res_id } = await construct(h, { ring_play_file: 'ring.wav', ring_play_mode: 2 });
  const leg1 = await answerParty1(h);
  h.engine.legs[1]!.reject(486, '486 Busy Here');
  await h.tick();
  t.equal(leg1.playing, undefined);
  t.match(h.released(res_id)[0], { error: { code: 'busy', sip_status: 486, party: 2 }, dropped_by: 'usr' });
  t.equal(leg1.hangups, 1, 'party 1 hung up');
});

t.test('ring_play_mode 3 (default): the whole file first, then dial with real ringback', async (t) => {
  const h = serviceHarness();
  await construct(h, { ring_play_file: 'ring.wav' });
  const leg1 = await answerParty1(h);
  t.equal(h.engine.legs.length, 1, 'party 2 not dialled yet');
  t.equal(leg1.playing?.repeat, 0, 'played once');
  leg1.playing!.finish();
  await h.tick();
  t.equal(h.engine.legs.length, 2, 'party 2 dialled after the file');
  h.engine.legs[1]!.ring(true);
  t.equal(h.engine.bridges.length, 1, 'ringback passed through');
});

t.test('ring timeouts count from each party\'s dial', async (t) => {
  const h = serviceHarness();
  const a = await construct(h, { max_ring_seconds: 20 });
  h.engine.legs[0]!.ring();
  h.clock.advance(19_999);
  t.equal(h.released(a.res_id).length, 0);
  h.clock.advance(1);
  await h.tick();
  t.match(h.released(a.res_id)[0], { error: { code: 'no_answer', party: 1 }, dropped_by: 'sys', answer_time: null });
  t.equal(h.engine.legs[0]!.hangups, 1, 'party 1 cancelled');

  const b = await construct(h, { max_ring_seconds: 20 });
  h.clock.advance(15_000);
  const leg1 = h.engine.legs[1]!;
  leg1.answer();
  await h.tick();
  h.clock.advance(19_999);
  t.equal(h.released(b.res_id).length, 0, 'party 2 has its own 20 s');
  h.clock.advance(1);
  await h.tick();
  t.match(h.released(b.res_id)[0], { error: { code: 'no_answer', party: 2 }, dropped_by: 'sys' });
  t.equal(h.engine.legs[2]!.hangups, 1);
  t.equal(leg1.hangups, 1);
});

t.test('default ring timeout is 45 s and max_answer default applies', async (t) => {
  const h = serviceHarness();
  const { res_id } = await construct(h);
  h.clock.advance(44_999);
  t.equal(h.released(res_id).length, 0);
  h.clock.advance(1);
  await h.tick();
  t.equal(h.released(res_id).length, 1);

  const c = await construct(h);
  h.engine.legs[1]!.answer();
  await h.tick();
  h.engine.legs[2]!.answer();
  await h.tick();
  h.clock.advance(h.config.limits.defaultMaxAnswerSeconds * 1000);
  await h.tick();
  t.match(h.released(c.res_id)[0], { error: null, dropped_by: 'sys' });
});

t.test('cancel in Initiated, before and after dialling, and in Answer1', async (t) => {
  const h = serviceHarness();
  const before = h.service.constructDuoCallback({ to1_uri: '1001', to2_uri: '1002' }, OWNER);
  h.service.cancel(before.res_id, 'ext.duo_callback', ACCOUNT_ID);
  await h.tick();
  t.equal(h.engine.legs.length, 0, 'cancelled before dialling: nothing dialled');
  t.match(h.released(before.res_id), [{ error: { code: 'cancelled' }, dropped_by: 'sys' }]);

  const ringing = await construct(h);
  h.engine.legs[0]!.ring();
  h.service.cancel(ringing.res_id, 'ext.duo_callback', ACCOUNT_ID);
  await h.tick();
  t.equal(h.engine.legs[0]!.hangups, 1, 'party 1 CANCELled');
  t.match(h.released(ringing.res_id), [{ error: { code: 'cancelled' }, dropped_by: 'sys' }]);

  const dialling2 = await construct(h);
  h.engine.legs[1]!.answer();
  await h.tick();
  h.engine.legs[2]!.ring();
  t.equal(h.service.getResource(dialling2.res_id, ACCOUNT_ID).state, 'Answer1');
  h.service.cancel(dialling2.res_id, 'ext.duo_callback', ACCOUNT_ID);
  await h.tick();
  t.equal(h.engine.legs[1]!.hangups, 1, 'party 1 BYE');
  t.equal(h.engine.legs[2]!.hangups, 1, 'party 2 CANCEL');
  t.match(h.released(dialling2.res_id), [{ error: { code: 'cancelled' } }]);

  const modeThree = await construct(h, { ring_play_file: 'ring.wav' });
  h.engine.legs[3]!.answer();
  await h.tick();
  h.service.cancel(modeThree.res_id, 'ext.duo_callback', ACCOUNT_ID);
  await h.tick();
  t.equal(h.engine.legs.length, 4, 'party 2 never dialled after cancel during the mode-3 file');
  t.match(h.released(modeThree.res_id), [{ error: { code: 'cancelled' } }]);
});

t.test('cancel after party 2 answered is an invalid state; after release, not found', async (t) => {
  const h = serviceHarness();
  const { res_id } = await construct(h);
  await connect(h);
  t.throws(() => h.service.cancel(res_id, 'ext.duo_callback', ACCOUNT_ID), { name: 'ServiceError', kind: 'invalid_state', data: { state: 'Connected' } });
  h.engine.legs[0]!.hangUpRemotely();
  await h.tick();
  t.throws(() => h.service.cancel(res_id, 'ext.duo_callback', ACCOUNT_ID), { name: 'ServiceError', kind: 'not_found' });
  t.throws(() => h.service.cancel('0.0.0-ext.duo_callback-1', 'ext.duo_callback', ACCOUNT_ID), { name: 'ServiceError', kind: 'not_found' });
});

t.test('cancel is refused in Answer2 while the bridge is being set up', async (t) => {
  const h = serviceHarness();
  const { res_id } = await construct(h);
  await answerParty1(h);
  h.engine.legs[1]!.answer();
  t.equal(h.service.getResource(res_id, ACCOUNT_ID).state, 'Answer2');
  t.throws(() => h.service.cancel(res_id, 'ext.duo_callback', ACCOUNT_ID), { name: 'ServiceError', kind: 'invalid_state' });
});

t.test('party failures map to error codes with the party and SIP status', async (t) => {
  const cases: Array<[number, string]> = [
    [486, 'busy'], [600, 'busy'], [480, 'no_answer'], [408, 'timeout'], [404, 'unreachable'],
    [503, 'unreachable'], [403, 'rejected'], [603, 'rejected'],
  ];
  for (const [status, code] of cases) {
    const h = serviceHarness();
    const one = await construct(h);
    h.engine.legs[0]!.reject(status);
    await h.tick();
    t.match(h.released(one.res_id), [{ error: { code, sip_status: status, party: 1 }, dropped_by: 'usr' }], `party 1 ${status}`);
    const two = await construct(h);
    h.engine.legs[1]!.answer();
    await h.tick();
    h.engine.legs[2]!.reject(status);
    await h.tick();
    t.match(h.released(two.res_id), [{ error: { code, sip_status: status, party: 2 } }], `party 2 ${status}`);
    t.equal(h.engine.legs[1]!.hangups, 1, 'party 1 hung up when party 2 failed');
  }
});

t.test('hang-ups: party 1 while party 2 rings; either side once connected', async (t) => {
  const h = serviceHarness();
  const a = await construct(h);
  await answerParty1(h);
  h.engine.legs[1]!.ring();
  h.engine.legs[0]!.hangUpRemotely();
  await h.tick();
  t.match(h.released(a.res_id), [{ error: null, dropped_by: 'usr', connect_time: null }]);
  t.equal(h.engine.legs[1]!.hangups, 1, 'party 2 cancelled');

  for (const side of [0, 1]) {
    const h2 = serviceHarness();
    const b = await construct(h2);
    const legs = await connect(h2);
    (side === 0 ? legs.leg1 : legs.leg2).hangUpRemotely();
    await h2.tick();
    t.match(h2.released(b.res_id), [{ error: null, dropped_by: 'usr' }]);
    t.equal((side === 0 ? legs.leg2 : legs.leg1).hangups, 1, 'the other side hung up');
    t.ok(h2.engine.bridges[0]!.closed);
  }
});

t.test('engine failures release with engine_error', async (t) => {
  const h = serviceHarness();
  const a = await construct(h);
  await connect(h);
  h.engine.legs[1]!.end({ by: 'engine', reason: 'media server lost' });
  await h.tick();
  t.match(h.released(a.res_id), [{ error: { code: 'engine_error', party: 2 }, dropped_by: 'sys' }]);

  h.engine.bridgeFailure = new Error('no media server');
  const b = await construct(h);
  await answerParty1(h);
  h.engine.legs.at(-1)!.answer();
  await h.tick();
  t.match(h.released(b.res_id), [{ error: { code: 'engine_error' }, dropped_by: 'sys' }]);
});

t.test('exactly one on_released even when the engine reports an end twice', async (t) => {
  const h = serviceHarness();
  const { res_id } = await construct(h);
  const leg1 = h.engine.legs[0]!;
  leg1.reject(486);
  leg1.reject(486);
  leg1.hangUpRemotely();
  await h.tick();
  h.service.constructDuoCallback({ to1_uri: '5', to2_uri: '6' }, OWNER);
  await h.tick();
  t.equal(h.released(res_id).length, 1);
});

t.test('recording (record_mode 0) starts at connection on party 1\'s leg, stops before hang-up, is named in on_released', async (t) => {
  const h = serviceHarness();
  const { res_id } = await construct(h, { record_file: 'calls/a.wav' });
  await answerParty1(h);
  h.engine.legs[1]!.ring(true);
  t.same(h.engine.legs[0]!.recordings, [], 'not recording during ringback');
  h.engine.legs[1]!.answer();
  await h.tick();
  t.match(h.engine.legs[0]!.recordings, [{ path: join(h.recordingsDir, OWNER.account.accountId, 'calls/a.wav'), farEnd: 'left', stopped: false }], "in the account's own folder");
  t.same(h.engine.legs[1]!.recordings, [], 'one recording');
  h.engine.legs[0]!.hangUpRemotely();
  await h.tick();
  t.match(h.released(res_id), [{ record_file: 'calls/a.wav' }]);
  t.equal(h.engine.legs[0]!.recordings[0]!.stopped, true, 'stopped at release');
});

t.test('record_mode 1 records party 1 from its dialling; 2 records party 2\'s leg from its dialling, party 1 left', async (t) => {
  const h = serviceHarness();
  await construct(h, { record_file: 'm1.wav', record_mode: 1 });
  t.match(h.engine.legs[0]!.recordings, [{ farEnd: 'left', stopped: false }], 'mode 1: from the INVITE to party 1');
  await connect(h);
  t.equal(h.engine.legs[0]!.recordings.length, 1, 'not started again at connection');
  t.same(h.engine.legs[1]!.recordings, []);

  await construct(h, { record_file: 'm2.wav', record_mode: 2 });
  const leg1 = h.engine.legs.at(-1)!;
  t.same(leg1.recordings, [], 'mode 2: not while party 1 is dialled');
  await answerParty1(h);
  const leg2 = h.engine.legs.at(-1)!;
  t.not(leg2, leg1);
  t.match(leg2.recordings, [{ path: join(h.recordingsDir, OWNER.account.accountId, 'm2.wav'), farEnd: 'right' }], 'party 2\'s leg from its INVITE, its far end right');
  const h2 = serviceHarness();
  await construct(h2, { record_mode: 1 });
  t.same(h2.engine.legs[0]!.recordings, [], 'record_mode alone records nothing');
});

t.test('a recording that cannot start releases the call as engine_error; a leg that ended first keeps its own cause', async (t) => {
  const h = serviceHarness();
  const dial = h.engine.dial.bind(h.engine);
  let onRecord: (leg: ScriptedLeg) => void = () => {
    throw new Error('disk full');
  };
  h.engine.dial = (request) => {
    const leg = dial(request);
    leg.record = async () => {
      onRecord(leg);
      throw new Error('unreachable');
    };
    return leg;
  };
  const { res_id } = await construct(h, { record_file: 'f.wav', record_mode: 1 });
  await new Promise((r) => setImmediate(r));
  await h.tick();
  t.match(h.released(res_id), [{ error: { code: 'engine_error', message: 'starting the recording failed: disk full' }, dropped_by: 'sys' }]);

  // As the real engines do: the leg's end is decided first, its `ended` follows on the next tick.
  onRecord = (leg) => {
    process.nextTick(() => leg.reject(486));
    throw new Error('cannot record a leg that has ended');
  };
  const busy = await construct(h, { record_file: 'g.wav', record_mode: 1 });
  await new Promise((r) => setImmediate(r));
  await h.tick();
  t.match(h.released(busy.res_id), [{ error: { code: 'busy', party: 1 } }]);
});

t.test('invalid params name each bad param', async (t) => {
  const h = serviceHarness();
  const problems = (params: Partial<ExtDuoCallbackConstructParams>) => {
    try {
      h.service.constructDuoCallback({ to1_uri: '1001', to2_uri: '1002', ...params }, OWNER);
    } catch (err) {
      if (err instanceof ServiceError && err.kind === 'invalid_params') return err.data!.errors;
      throw err;
    }
    return [];
  };
  t.match(problems({ to2_uri: 'sip:1001@gw1' }), [{ param: 'to2_uri', message: /same number/ }]);
  t.match(problems({ to1_uri: 'sip:1001@evil.example' }), [{ param: 'to1_uri', message: /not a configured gateway/ }]);
  t.match(problems({ ring_play_file: 'missing.wav' }), [{ param: 'ring_play_file', message: /does not exist/ }]);
  t.match(problems({ ring_play_file: '../etc/passwd' }), [{ param: 'ring_play_file', message: /leaves its folder/ }]);
  t.match(problems({ record_file: '/tmp/x.wav' }), [{ param: 'record_file', message: /relative/ }]);
  t.match(problems({ max_answer_seconds: 999_999 }), [{ param: 'max_answer_seconds', message: /at most/ }]);
  t.match(problems({ max_answer_seconds: 10, countdown_seconds: 10 }), [{ param: 'countdown_seconds', message: /less than max_answer_seconds \(10\)/ }]);
  t.match(problems({ countdown_seconds: h.config.limits.defaultMaxAnswerSeconds }), [{ param: 'countdown_seconds' }], 'against the default talk limit');
  t.match(problems({ countdown_seconds: 5, countdown_play_file: 'missing.wav' }), [{ param: 'countdown_play_file', message: /does not exist/ }]);
  t.match(problems({ countdown_seconds: 5, countdown_play_file: '../x.wav' }), [{ param: 'countdown_play_file', message: /leaves its folder/ }]);
  t.match(
    problems({ to1_uri: 'sip:x@nowhere', max_ring_seconds: 999, ring_play_file: 'nope.wav' }),
    [{ param: 'to1_uri' }, { param: 'max_ring_seconds' }, { param: 'ring_play_file' }],
    'all problems reported at once',
  );
  t.equal(h.engine.legs.length, 0);
});

t.test('gateway capacity: all slots or none, freed on release', async (t) => {
  const h = serviceHarness();
  const a = await construct(h, { to1_uri: 'sip:2001@gw2', to2_uri: '2002' });
  t.throws(() => h.service.constructDuoCallback({ to1_uri: 'sip:3001@gw2', to2_uri: '3002' }, OWNER), {
    name: 'ServiceError',
    kind: 'capacity_exceeded',
  });
  // gw1 has 4 slots: a holds one, b two. c gets gw1's last slot but not gw2's, so it must give gw1's back.
  const b = await construct(h, { to1_uri: '4001', to2_uri: '4002' });
  t.throws(() => h.service.constructDuoCallback({ to1_uri: '5001', to2_uri: 'sip:5002@gw2' }, OWNER), {
    name: 'ServiceError',
    kind: 'capacity_exceeded',
  });
  const c = h.service.constructNotifyCall({ to_uri: '6001', play_content: 'prompt.wav' }, OWNER);
  t.ok(c.res_id, 'the slot c took was given back');
  t.throws(() => h.service.constructNotifyCall({ to_uri: '6002', play_content: 'prompt.wav' }, OWNER), {
    name: 'ServiceError',
    kind: 'capacity_exceeded',
  });
  h.service.cancel(a.res_id, 'ext.duo_callback', ACCOUNT_ID);
  h.service.cancel(b.res_id, 'ext.duo_callback', ACCOUNT_ID);
  await h.registry.releaseAll('test');
  t.ok(h.service.constructDuoCallback({ to1_uri: 'sip:7001@gw2', to2_uri: '7002' }, OWNER).res_id, 'slots returned');
});

t.test('engine unavailable and the resource limit', async (t) => {
  const h = serviceHarness({ CTI_LIMITS__MAX_RESOURCES: '1' });
  h.engine.available = false;
  t.throws(() => h.service.constructDuoCallback({ to1_uri: '1', to2_uri: '2' }, OWNER), { name: 'ServiceError', kind: 'engine_unavailable' });
  h.engine.available = true;
  await construct(h);
  t.throws(() => h.service.constructDuoCallback({ to1_uri: '1', to2_uri: '2' }, OWNER), { name: 'ServiceError', kind: 'capacity_exceeded' });
});

t.test('abort (server shutdown) releases in any state', async (t) => {
  const h = serviceHarness();
  const a = await construct(h);
  const b = await construct(h);
  h.engine.legs[1]!.answer();
  await h.tick();
  await h.registry.releaseAll('server shutting down');
  t.match(h.released(a.res_id), [{ error: { code: 'cancelled', message: 'server shutting down' } }]);
  t.match(h.released(b.res_id), [{ error: { code: 'cancelled' } }]);
  t.ok(h.engine.legs.every((l) => l.ended), 'no call left up');
  t.equal(h.clock.pending, 0, 'no timer left');
});

t.test('teardown closes the bridge (finishing the recording) before hanging up', async (t) => {
  const h = serviceHarness();
  const { res_id } = await construct(h, { record_file: 'b.wav' });
  const { leg1, leg2 } = await connect(h);
  const bridge = h.engine.bridges[0]!;
  let legsUpAtClose: boolean[] = [];
  bridge.close = async () => {
    legsUpAtClose = [leg1, leg2].map((l) => !l.ended);
  };
  h.clock.advance(h.config.limits.defaultMaxAnswerSeconds * 1000);
  await h.tick();
  t.same(legsUpAtClose, [true, true], 'both calls still up while the recording is stopped');
  t.equal(h.released(res_id).length, 1);
});

t.test('a bridge that never closes does not keep the calls up', async (t) => {
  const h = serviceHarness();
  const { res_id } = await construct(h);
  const { leg1, leg2 } = await connect(h);
  h.engine.bridges[0]!.close = () => new Promise(() => undefined);
  leg2.hangUpRemotely();
  await new Promise((resolve) => setTimeout(resolve, 3200));
  t.equal(leg1.hangups, 1, 'party 1 hung up after the close limit');
  t.match(h.released(res_id), [{ error: null, dropped_by: 'usr' }]);
});
