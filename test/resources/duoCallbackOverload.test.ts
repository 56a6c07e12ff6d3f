// Issue 11, kind 8 (overload), on the scripted engine: party 2's media is
// reserved before party 1 rings, a call whose media cannot be had ends before
// any dial, and a saturated engine refuses constructs with retry_after_ms.
import t from 'tap';
import { ServiceError } from '../../lib/errors/ServiceError.js';
import { ACCOUNT_ID, OWNER, serviceHarness } from '../support/serviceHarness.js';

const PARAMS = { to1_uri: '13967446745', to2_uri: '13009347583' };

t.test('both parties media is reserved before party 1 is dialled, and handed to the legs', async (t) => {
  const h = serviceHarness();
  const { res_id } = h.service.constructDuoCallback(PARAMS, OWNER);
  t.same(h.engine.saturationAsked, [2], 'admission asked about two legs at construct');
  await h.tick();
  t.equal(h.engine.reservations.length, 2, 'two reservations');
  t.ok(h.engine.reservations.every((r) => r.group === res_id), 'grouped by the resource');
  const leg1 = h.engine.legs[0]!;
  t.equal(leg1.request.reservation, h.engine.reservations[0], "party 1's leg gets its reservation");
  leg1.answer();
  await h.tick();
  t.equal(h.engine.legs[1]!.request.reservation, h.engine.reservations[1], "party 2's leg gets the other");
  t.notOk(h.engine.reservations.some((r) => r.released), 'nothing given back: the legs own them now');
});

t.test('media that cannot be had ends the resource before anyone is called', async (t) => {
  const h = serviceHarness();
  h.engine.reserveFailure = 'cannot create media endpoint: Connection timeout';
  const { res_id } = h.service.constructDuoCallback(PARAMS, OWNER);
  await h.tick();
  t.equal(h.engine.legs.length, 0, 'no INVITE to party 1');
  const [released] = h.released(res_id);
  t.match(released, { error: { code: 'engine_error', party: 1, message: /nobody was called.*Connection timeout/ }, dropped_by: 'sys', answer_time: null });
  t.same(
    h.progress(res_id).map((p) => p.progress),
    [],
    'no progress event: nothing was dialled',
  );
  // gw1 has 4 slots: both were given back, so two more calls fit.
  h.engine.reserveFailure = undefined;
  h.service.constructDuoCallback(PARAMS, OWNER);
  h.service.constructDuoCallback(PARAMS, OWNER);
  await h.tick();
  t.equal(h.engine.legs.length, 2, 'the gateway slots came back');
});

t.test('a resource cancelled while its media is being reserved gives the media back and dials nobody', async (t) => {
  const h = serviceHarness();
  let mediaReady!: () => void;
  h.engine.reserveGate = new Promise((resolve) => (mediaReady = resolve));
  const { res_id } = h.service.constructDuoCallback(PARAMS, OWNER);
  await h.tick();
  h.service.cancel(res_id, 'ext.duo_callback', ACCOUNT_ID);
  mediaReady();
  await h.tick();
  t.equal(h.engine.legs.length, 0, 'nobody dialled');
  t.ok(h.engine.reservations.length > 0 && h.engine.reservations.every((r) => r.released), 'every reservation released');
  t.match(h.released(res_id), [{ error: { code: 'cancelled' } }]);
});

t.test('a party that is never dialled gives its reservation back when the call ends', async (t) => {
  const h = serviceHarness();
  const { res_id } = h.service.constructDuoCallback(PARAMS, OWNER);
  await h.tick();
  h.engine.legs[0]!.reject(486);
  await h.tick();
  t.match(h.released(res_id)[0], { error: { code: 'busy', party: 1 } });
  t.equal(h.engine.legs.length, 1, 'party 2 never dialled');
  t.ok(h.engine.reservations[1]!.released, "party 2's media given back");
});

t.test('a saturated engine refuses constructs with rate_limited and retry_after_ms, taking nothing', async (t) => {
  const h = serviceHarness();
  h.engine.saturated = { cause: 'endpoints_pending', message: '32 FreeSWITCH endpoints are being created (limit 32)', retryAfterMs: 140.2 };
  for (const construct of [
    () => h.service.constructDuoCallback(PARAMS, OWNER),
    () => h.service.constructNotifyCall({ to_uri: '13967446745', play_content: 'prompt.wav' }, OWNER),
  ]) {
    try {
      construct();
      t.fail('refused');
    } catch (err) {
      t.ok(err instanceof ServiceError && err.kind === 'rate_limited', 'rate_limited (-32006)');
      t.match((err as ServiceError).data, { retry_after_ms: 141, cause: 'endpoints_pending', reason: /32 FreeSWITCH endpoints/ });
    }
  }
  t.same(h.engine.saturationAsked, [2, 1], 'a duo_callback is two legs, a notify_call one');
  await h.tick();
  t.equal(h.engine.legs.length + h.engine.reservations.length, 0, 'nothing reserved, nobody dialled');
  h.engine.saturated = undefined;
  for (let i = 0; i < 2; i++) h.service.constructDuoCallback(PARAMS, OWNER);
  await h.tick();
  t.equal(h.engine.legs.length, 2, 'no gateway slot was held by the refusals (gw1 has 4)');
});
