import t from 'tap';
import { join } from 'node:path';
import type { CollectDtmf, ExtNotifyCallConstructParams } from '../../lib/api/generated/types.js';
import { RpcContract } from '../../lib/api/RpcContract.js';
import { ServiceError } from '../../lib/errors/ServiceError.js';
import { OWNER, serviceHarness, type Harness } from '../support/serviceHarness.js';

/** A notify_call with key collection, answered, its prompt playing. */
async function answered(h: Harness, collect: CollectDtmf, params: Partial<ExtNotifyCallConstructParams> = {}) {
  const result = h.service.constructNotifyCall(
    { to_uri: '13967446745', play_content: 'prompt.wav', play_repeat: 0, collect_dtmf: collect, ...params },
    OWNER,
  );
  await h.tick();
  const leg = h.engine.legs.at(-1)!;
  leg.answer();
  await h.tick();
  return { ...result, leg };
}

const dtmfProgress = (h: Harness, resId: string) => h.progress(resId).filter((p) => p.progress === 'dtmf').map((p) => p.dtmf);

t.test('one key after the prompt: progress at once, on_released dtmf, hang up', async (t) => {
  const h = serviceHarness();
  const { res_id, leg } = await answered(h, {});
  t.equal(leg.playing?.repeat, 0, 'with collection each round plays the prompt once');
  leg.playing!.finish();
  await h.tick();
  h.clock.advance(4000);
  leg.press('1');
  await h.tick();
  t.same(dtmfProgress(h, res_id), ['1']);
  t.match(h.released(res_id), [{ error: null, dropped_by: 'sys', dtmf: '1' }]);
  t.equal(leg.hangups, 1);
});

t.test('barge-in: a key during the prompt stops it and counts; the terminator ends early', async (t) => {
  const h = serviceHarness();
  const { res_id, leg } = await answered(h, { max_digits: 4 });
  const prompt = leg.playing!;
  leg.press('4');
  await h.tick();
  t.equal(prompt.completed, false, 'prompt stopped');
  leg.press('2#');
  await h.tick();
  t.same(dtmfProgress(h, res_id), ['4', '42']);
  t.match(h.released(res_id), [{ error: null, dtmf: '42' }]);
});

t.test('no barge-in: keys during the prompt are ignored', async (t) => {
  const h = serviceHarness();
  const { res_id, leg } = await answered(h, { barge_in: false, max_digits: 2 });
  leg.press('9');
  await h.tick();
  t.ok(leg.playing && !leg.playing.settled, 'prompt still playing');
  leg.playing!.finish();
  await h.tick();
  leg.press('12');
  await h.tick();
  t.match(h.released(res_id), [{ dtmf: '12' }], 'max_digits ends the collection');
});

t.test('inter-digit timeout ends the collection; max_digits bounds it', async (t) => {
  const h = serviceHarness();
  const { res_id, leg } = await answered(h, { max_digits: 5, inter_digit_timeout: 2, terminator: '' });
  leg.playing!.finish();
  await h.tick();
  leg.press('#7');
  await h.tick();
  h.clock.advance(1999);
  await h.tick();
  t.equal(h.released(res_id).length, 0);
  h.clock.advance(1);
  await h.tick();
  t.match(h.released(res_id), [{ dtmf: '#7' }], 'with no terminator # is a digit');
});

t.test('play_repeat repeats the prompt until a key arrives; none: empty dtmf', async (t) => {
  const h = serviceHarness();
  const { res_id, leg } = await answered(h, { first_digit_timeout: 3 }, { play_repeat: 1 });
  leg.playing!.finish();
  await h.tick();
  h.clock.advance(3000);
  await h.tick();
  t.equal(leg.plays.length, 2, 'second round');
  leg.playing!.finish();
  await h.tick();
  h.clock.advance(3000);
  await h.tick();
  t.equal(leg.plays.length, 2, 'no third round');
  t.match(h.released(res_id), [{ error: null, dtmf: '' }]);
  t.same(dtmfProgress(h, res_id), []);
});

t.test('reply prompt for the digits before hanging up; keys during it are ignored', async (t) => {
  const h = serviceHarness();
  const { res_id, leg } = await answered(h, { replies: { '1': 'prompt2.wav' } });
  leg.press('1');
  await h.tick();
  t.same(leg.playing?.files, [join(h.mediaDir, 'prompt2.wav')]);
  leg.press('2');
  await h.tick();
  t.equal(h.released(res_id).length, 0, 'still replying');
  leg.playing!.finish();
  await h.tick();
  t.match(h.released(res_id), [{ dtmf: '1' }]);
  t.same(dtmfProgress(h, res_id), ['1']);
});

t.test('a key with no reply hangs up at once; keys after release change nothing', async (t) => {
  const h = serviceHarness();
  const { res_id, leg } = await answered(h, { replies: { '1': 'prompt2.wav' } });
  leg.press('3');
  leg.press('1');
  await h.tick();
  t.equal(leg.plays.length, 1, 'no reply played');
  t.match(h.released(res_id), [{ dtmf: '3' }]);
});

t.test('without collect_dtmf keys are ignored and on_released has no dtmf', async (t) => {
  const h = serviceHarness();
  const { res_id, leg } = await answered(h, null, { play_repeat: 0 });
  leg.press('1');
  await h.tick();
  t.ok(leg.playing && !leg.playing.settled);
  leg.playing!.finish();
  await h.tick();
  t.equal(h.released(res_id).length, 1);
  t.notOk('dtmf' in h.released(res_id)[0]!);
});

t.test('reply files must exist in the media folder', async (t) => {
  const h = serviceHarness();
  for (const name of ['missing.wav', '../etc/passwd']) {
    t.throws(
      () => h.service.constructNotifyCall({ to_uri: '13967446745', play_content: 'prompt.wav', collect_dtmf: { replies: { '1': name } } }, OWNER),
      new ServiceError('invalid_params', '', { errors: [{ param: 'collect_dtmf.replies.1' }] }),
      name,
    );
  }
});

t.test('the contract bounds collect_dtmf: counts, timeouts, terminator, reply keys and names', async (t) => {
  const contract = new RpcContract();
  const check = (collect: unknown) => () =>
    contract.params('ext.notify_call.construct', { to_uri: '1001', play_content: 'prompt.wav', collect_dtmf: collect });
  t.doesNotThrow(check({ max_digits: 32, first_digit_timeout: 60, inter_digit_timeout: 30, terminator: '*', barge_in: false, replies: { '1': 'a.wav', '*#AD9': 'b.wav' } }));
  t.doesNotThrow(check(null));
  for (const bad of [
    { max_digits: 0 },
    { max_digits: 33 },
    { first_digit_timeout: 0 },
    { first_digit_timeout: 61 },
    { inter_digit_timeout: 31 },
    { terminator: '1' },
    { terminator: '##' },
    { barge_in: 'yes' },
    { replies: { '<script>': 'a.wav' } },
    { replies: { '': 'a.wav' } },
    { replies: { ['1'.repeat(33)]: 'a.wav' } },
    { replies: { '1': 'x'.repeat(256) } },
    { replies: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [String(i), 'a.wav'])) },
    { unknown: 1 },
    'digits',
  ]) {
    let refused: string | undefined;
    try {
      check(bad)();
    } catch (err) {
      refused = err instanceof ServiceError ? err.kind : String(err);
    }
    t.equal(refused, 'invalid_params', JSON.stringify(bad).slice(0, 60));
  }
});
