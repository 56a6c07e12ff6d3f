import t from 'tap';
import { join } from 'node:path';
import type { ExtDuoCallbackConstructParams } from '../../lib/api/generated/types.js';
import { OWNER, serviceHarness, type Harness } from '../support/serviceHarness.js';

/** A connected duo_callback with `params`. */
async function connected(h: Harness, params: Partial<ExtDuoCallbackConstructParams>) {
  const { res_id } = h.service.constructDuoCallback({ to1_uri: '13967446745', to2_uri: '13009347583', ...params }, OWNER);
  await h.tick();
  const leg1 = h.engine.legs.at(-1)!;
  leg1.answer();
  await h.tick();
  const leg2 = h.engine.legs.at(-1)!;
  leg2.answer();
  await h.tick();
  return { res_id, leg1, leg2 };
}

t.test('countdown_seconds before max_answer_seconds: both parties hear the file, a progress marks it, the call ends on time', async (t) => {
  const h = serviceHarness();
  const { res_id, leg1, leg2 } = await connected(h, { max_answer_seconds: 60, countdown_seconds: 10, countdown_play_file: 'prompt2.wav', record_file: 'c.wav' });
  h.clock.advance(49_999);
  await h.tick();
  t.equal(leg1.plays.length + leg2.plays.length, 0, 'nothing before 50 s');
  h.clock.advance(1);
  await h.tick();
  for (const leg of [leg1, leg2]) t.same(leg.playing?.files, [join(h.mediaDir, 'prompt2.wav')], 'played to each party');
  const countdown = h.progress(res_id).filter((p) => p.progress === 'countdown');
  t.match(countdown, [{ state: 'Connected', party: 2, sip_status: null }]);
  leg1.playing!.finish();
  leg2.playing!.finish();
  await h.tick();
  t.equal(h.released(res_id).length, 0, 'the warning does not end the call');
  t.match(h.engine.legs[0]!.recordings, [{ path: join(h.recordingsDir, OWNER.account.accountId, 'c.wav'), stopped: false }], 'recording untouched');
  h.clock.advance(10_000);
  await h.tick();
  t.match(h.released(res_id), [{ error: null, dropped_by: 'sys' }]);
});

t.test('no countdown_play_file: the built-in tone; no countdown_seconds: no warning', async (t) => {
  const h = serviceHarness();
  const a = await connected(h, { max_answer_seconds: 5, countdown_seconds: 2 });
  h.clock.advance(3000);
  await h.tick();
  t.same(a.leg1.playing?.files, [join(h.mediaDir, 'countdown.wav')]);
  const b = await connected(h, { max_answer_seconds: 5, countdown_play_file: 'prompt2.wav' });
  h.clock.advance(4999);
  await h.tick();
  t.equal(b.leg1.plays.length + b.leg2.plays.length, 0);
  t.equal(h.progress(b.res_id).filter((p) => p.progress === 'countdown').length, 0);
});

t.test('a call that ends before the warning plays none', async (t) => {
  const h = serviceHarness();
  const { res_id, leg1, leg2 } = await connected(h, { max_answer_seconds: 30, countdown_seconds: 5 });
  leg2.hangUpRemotely();
  await h.tick();
  h.clock.advance(30_000);
  await h.tick();
  t.equal(leg1.plays.length, 0);
  t.equal(h.released(res_id).length, 1);
});
