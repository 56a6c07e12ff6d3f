import t from 'tap';
import { join } from 'node:path';
import type { ExtNotifyCallConstructParams } from '../../lib/api/generated/types.js';
import { ServiceError } from '../../lib/errors/ServiceError.js';
import { ACCOUNT_ID, OWNER, serviceHarness, type Harness } from '../support/serviceHarness.js';


async function construct(h: Harness, params: Partial<ExtNotifyCallConstructParams> = {}) {
  const result = h.service.constructNotifyCall({ to_uri: '13967446745', play_content: 'prompt.wav', ...params }, OWNER);
  await h.tick();
  return { ...result, leg: h.engine.legs.at(-1)! };
}

t.test('Initiated → Answered → Released: plays play_repeat + 1 times, then hangs up', async (t) => {
  const h = serviceHarness();
  const { res_id, leg } = await construct(h, { play_repeat: 2, user_data: 'n1', from_uri: '95588' });
  t.equal(leg.request.fromUri, 'sip:95588@192.0.2.10');
  t.equal(h.service.getResource(res_id, ACCOUNT_ID).state, 'Initiated');
  leg.ring();
  leg.answer();
  await h.tick();
  t.equal(h.service.getResource(res_id, ACCOUNT_ID).state, 'Answered');
  t.same(leg.playing?.files, [join(h.mediaDir, 'prompt.wav')]);
  t.equal(leg.playing?.repeat, 2, 'the engine plays the list repeat + 1 times');
  leg.playing!.finish();
  await h.tick();
  t.equal(leg.hangups, 1, 'system hangs up after the last play');
  const [released] = h.released(res_id);
  t.match(released, { res_id, error: null, dropped_by: 'sys', user_data: 'n1' });
  t.type(released!.answer_time, 'number');
  t.same(
    h.progress(res_id).map((p) => `${p.state}:${p.progress}`),
    ['Initiated:dialing', 'Initiated:ringing', 'Answered:answered'],
  );
});

t.test('defaults: play_repeat 1, ring timeout 50 s from ringing, dial timeout before ringing', async (t) => {
  const h = serviceHarness();
  const a = await construct(h);
  a.leg.answer();
  await h.tick();
  t.equal(a.leg.playing?.repeat, 1);

  const b = await construct(h);
  h.clock.advance(10_000);
  b.leg.ring();
  h.clock.advance(49_999);
  t.equal(h.released(b.res_id).length, 0, 'ring time counted from ringing');
  h.clock.advance(1);
  await h.tick();
  t.match(h.released(b.res_id), [{ error: { code: 'no_answer' }, dropped_by: 'sys', answer_time: null }]);
  t.equal(b.leg.hangups, 1, 'CANCEL sent');

  const c = await construct(h);
  h.clock.advance(h.config.limits.dialTimeoutSeconds * 1000);
  await h.tick();
  t.match(h.released(c.res_id), [{ error: { code: 'timeout' }, dropped_by: 'sys' }]);
});

t.test('callee hangs up during the prompt: dropped_by usr', async (t) => {
  const h = serviceHarness();
  const { res_id, leg } = await construct(h);
  leg.answer();
  await h.tick();
  leg.hangUpRemotely();
  await h.tick();
  t.match(h.released(res_id), [{ error: null, dropped_by: 'usr' }]);
  t.equal(leg.plays[0]!.completed, false);
});

t.test('failures map to error codes; exactly one on_released', async (t) => {
  const h = serviceHarness();
  for (const [status, code] of [[486, 'busy'], [404, 'unreachable'], [487, 'no_answer'], [401, 'rejected']] as const) {
    const { res_id, leg } = await construct(h);
    leg.reject(status);
    leg.reject(status);
    await h.tick();
    t.match(h.released(res_id), [{ error: { code, sip_status: status }, dropped_by: 'usr' }], `${status} → ${code}`);
    t.equal(h.released(res_id)[0]!.error && 'party' in (h.released(res_id)[0]!.error as object), false, 'no party for one-party resources');
  }
  const { res_id, leg } = await construct(h);
  leg.answer();
  await h.tick();
  leg.end({ by: 'engine', reason: 'media timeout' });
  leg.end({ by: 'engine', reason: 'media timeout' });
  await h.tick();
  t.match(h.released(res_id), [{ error: { code: 'engine_error', message: 'media timeout' }, dropped_by: 'sys' }]);
});

t.test('a play failure releases with engine_error', async (t) => {
  const h = serviceHarness();
  const { res_id, leg } = await construct(h);
  leg.play = () => Promise.reject(new Error('unreadable file'));
  leg.answer();
  await h.tick();
  t.match(h.released(res_id), [{ error: { code: 'engine_error', message: /unreadable file/ } }]);
  t.equal(leg.hangups, 1);
});

t.test('to_uri list: the first gateway with free capacity is used', async (t) => {
  const h = serviceHarness();
  const first = await construct(h, { to_uri: ['sip:100@gw2', 'sip:100@gw1'] });
  t.equal(first.leg.request.gateway.name, 'gw2');
  const second = await construct(h, { to_uri: ['sip:100@gw2', 'sip:100@gw1'] });
  t.equal(second.leg.request.gateway.name, 'gw1', 'gw2 is full (1 call)');
  t.equal(second.leg.request.requestUri, 'sip:100@192.0.2.10:5060');
  t.equal(first.leg.request.requestUri, 'sip:100@192.0.2.20:5080;transport=tcp');
  t.equal(first.leg.request.fromUri, 'sip:4000@gw2.example', 'gateway default caller id');
});

t.test('play_content forms and their errors', async (t) => {
  const h = serviceHarness();
  const a = await construct(h, { play_content: [['prompt.wav', 0, null], ['prompt2.wav|prompt.wav', 7, null]] });
  a.leg.answer();
  await h.tick();
  t.same(a.leg.playing?.files, ['prompt.wav', 'prompt2.wav', 'prompt.wav'].map((f) => join(h.mediaDir, f)));
  const problems = (params: Partial<ExtNotifyCallConstructParams>) => {
    try {
      h.service.constructNotifyCall({ to_uri: '1', play_content: 'prompt.wav', ...params }, OWNER);
      return [];
    } catch (err) {
      if (err instanceof ServiceError) return err.data!.errors;
      throw err;
    }
  };
  t.match(problems({ play_content: [['123', 1, null]] }), [{ param: 'play_content[0]', message: /type 1 is not supported/ }]);
  t.match(problems({ play_content: 'nope.wav' }), [{ param: 'play_content', message: /does not exist/ }]);
  t.match(problems({ play_content: '../../x.wav' }), [{ param: 'play_content', message: /leaves its folder/ }]);
  t.match(problems({ play_repeat: 99 }), [{ param: 'play_repeat', message: /at most 20/ }]);
  t.match(problems({ to_uri: ['1', 'sip:1@nowhere'] }), [{ param: 'to_uri[1]' }]);
});

t.test('cancel is allowed in every state: dialling, ringing, playing; then not found', async (t) => {
  const h = serviceHarness();
  const before = h.service.constructNotifyCall({ to_uri: '1001', play_content: 'prompt.wav' }, OWNER);
  h.service.cancel(before.res_id, 'ext.notify_call', ACCOUNT_ID);
  await h.tick();
  t.equal(h.engine.legs.length, 0, 'cancelled before dialling: nothing dialled');
  t.match(h.released(before.res_id), [{ error: { code: 'cancelled', message: 'cancelled by the application' }, dropped_by: 'sys' }]);

  const ringing = await construct(h);
  ringing.leg.ring();
  h.service.cancel(ringing.res_id, 'ext.notify_call', ACCOUNT_ID);
  await h.tick();
  t.equal(ringing.leg.hangups, 1, 'CANCEL sent');
  t.match(h.released(ringing.res_id), [{ error: { code: 'cancelled' }, dropped_by: 'sys', answer_time: null }]);

  const playing = await construct(h);
  playing.leg.answer();
  await h.tick();
  t.equal(h.service.getResource(playing.res_id, ACCOUNT_ID).state, 'Answered');
  t.ok(playing.leg.playing, 'prompt playing');
  h.service.cancel(playing.res_id, 'ext.notify_call', ACCOUNT_ID);
  t.throws(() => h.service.cancel(playing.res_id, 'ext.notify_call', ACCOUNT_ID), { name: 'ServiceError', kind: 'not_found' }, 'released at once');
  await h.tick();
  t.equal(playing.leg.hangups, 1, 'BYE sent once');
  t.match(h.released(playing.res_id), [{ error: { code: 'cancelled' }, dropped_by: 'sys', answer_time: Number }]);

  const duo = h.service.constructDuoCallback({ to1_uri: '1001', to2_uri: '1002' }, OWNER);
  t.throws(() => h.service.cancel(duo.res_id, 'ext.notify_call', ACCOUNT_ID), { name: 'ServiceError', kind: 'not_found' }, 'class checked');
  t.throws(() => h.service.cancel(playing.res_id.replace('notify_call', 'duo_callback'), 'ext.duo_callback', ACCOUNT_ID), { name: 'ServiceError', kind: 'not_found' });
});
