// Redirects at the resource layer (issue 11 kind 3): a leg ended by a 3xx is
// replaced by a new leg to the Contact's user part at the same gateway, in the
// same capacity slot, up to limits.maxRedirects; the client sees `redirected`.
import t from 'tap';
import type { ExtDuoCallbackConstructParams } from '../../lib/api/generated/types.js';
import type { LegEnd } from '../../lib/telephony/TelephonyEngine.js';
import { ACCOUNT_ID, OWNER, serviceHarness, type Harness } from '../support/serviceHarness.js';

const moved = (...contacts: string[]): LegEnd => ({ by: 'remote', sipStatus: 302, reason: '302 Moved Temporarily', redirectContacts: contacts });

async function notify(h: Harness, to_uri = '13967446745') {
  const result = h.service.constructNotifyCall({ to_uri, play_content: 'prompt.wav', user_data: 'r' }, OWNER);
  await h.tick();
  return { ...result, leg: h.engine.legs.at(-1)! };
}

t.test('a 302 is followed through the same gateway whatever host its Contact names; events, context and on_released say so', async (t) => {
  const h = serviceHarness();
  const { res_id, leg } = await notify(h);
  leg.ring();
  leg.end(moved('sip:4000@evil.example:5999;transport=tcp'));
  await h.tick();
  t.equal(h.engine.legs.length, 2, 'a new leg');
  const next = h.engine.legs[1]!;
  t.equal(next.request.requestUri, 'sip:4000@192.0.2.10:5060', "the Contact's user at gw1, never evil.example");
  t.equal(next.request.gateway.name, 'gw1');
  t.equal(next.request.fromUri, leg.request.fromUri, 'same caller id');
  const redirect = { party: 1, from_uri: 'sip:13967446745@192.0.2.10:5060', to_uri: 'sip:4000@192.0.2.10:5060', sip_status: 302 };
  t.match(h.progress(res_id).at(-1), { progress: 'redirected', state: 'Initiated', party: 1, sip_status: 302, redirect });
  const party = h.service.getResource(res_id, ACCOUNT_ID).parties[0]!;
  t.match(party, { state: 'CREATED', to_uri: 'sip:13967446745@192.0.2.10:5060', redirects: [redirect] }, 'context: dialled again, redirect listed');
  t.equal(h.released(res_id).length, 0, 'not released');
  next.ring();
  next.answer();
  next.playing!.finish();
  await h.tick();
  t.same(h.progress(res_id).map((p) => p.progress), ['dialing', 'ringing', 'redirected', 'ringing', 'answered'], 'the new callee rings again');
  t.match(h.released(res_id), [{ error: null, redirects: [redirect] }]);
});

t.test('not followed: loop, hop limit, no usable Contact; the party ends rejected with the 3xx and why', async (t) => {
  const h = serviceHarness({ CTI_LIMITS__MAX_REDIRECTS: '1' });
  const loop = await notify(h);
  loop.leg.end(moved('sip:13967446745@gw1'));
  await h.tick();
  t.match(h.released(loop.res_id), [{ error: { code: 'rejected', sip_status: 302, message: '302 Moved Temporarily (redirect not followed: redirect loop (13967446745 already dialled))' }, dropped_by: 'usr' }]);
  t.notOk('redirects' in h.released(loop.res_id)[0]!, 'no redirects field when none was followed');

  const hops = await notify(h);
  hops.leg.end(moved('sip:2000@x'));
  await h.tick();
  h.engine.legs.at(-1)!.end(moved('sip:3000@x'));
  await h.tick();
  t.match(h.released(hops.res_id), [{ error: { code: 'rejected', message: /more than 1 redirects/ }, redirects: [{ to_uri: 'sip:2000@192.0.2.10:5060' }] }]);

  const bad = await notify(h);
  bad.leg.end(moved('sip:%0D%0Ax@x', 'sip:x', 'tel:+1555', `sip:${'9'.repeat(300)}@x`));
  await h.tick();
  t.match(h.released(bad.res_id), [{ error: { code: 'rejected', message: /no usable Contact/ } }]);
  t.equal(h.engine.legs.length, 4, 'only the followed redirect dialled');
});

t.test('a 3xx that crosses the hang-up is not followed; the slot is kept across a redirect and freed once', async (t) => {
  const h = serviceHarness();
  const { res_id, leg } = await notify(h, 'sip:100@gw2');
  t.match(await notify(h, 'sip:101@gw2').catch((e: unknown) => e), { kind: 'capacity_exceeded' }, 'gw2 holds one call');
  leg.end(moved('sip:200@gw2'));
  await h.tick();
  t.equal(h.engine.legs.at(-1)!.request.requestUri, 'sip:200@192.0.2.20:5080;transport=tcp');
  t.match(await notify(h, 'sip:102@gw2').catch((e: unknown) => e), { kind: 'capacity_exceeded' }, 'the redirected call still holds the slot');
  // The leg already ended by a 302 whose event is still on its way (engines emit `ended` a tick later): hangup() changes nothing.
  const last = h.engine.legs.at(-1)!;
  last.hangup = () => void last.hangups++;
  h.service.cancel(res_id, 'ext.notify_call', ACCOUNT_ID);
  await h.tick();
  t.equal(last.hangups, 1, 'the party was hung up');
  last.end(moved('sip:300@gw2'));
  await h.tick();
  t.equal(h.engine.legs.length, 2, 'not followed after the hang-up');
  t.match(h.released(res_id), [{ error: { code: 'cancelled' } }]);
  const again = await notify(h, 'sip:103@gw2');
  t.ok(again.res_id, 'the slot is free again');
});

t.test('duo_callback: party 2 redirected during early media rings afresh; party 1 is bridged to the new leg', async (t) => {
  const h = serviceHarness();
  const params: ExtDuoCallbackConstructParams = { to1_uri: '13800000001', to2_uri: '13800000002', ring_play_file: null, ring_play_mode: 3 };
  const { res_id } = h.service.constructDuoCallback(params, OWNER);
  await h.tick();
  h.engine.legs[0]!.answer();
  await h.tick();
  const first2 = h.engine.legs[1]!;
  first2.ring(true);
  await h.tick();
  t.equal(h.engine.bridges.length, 1, 'party 1 hears the early media');
  first2.end(moved('sip:13800000003@gw1'));
  await h.tick();
  t.equal(h.engine.bridges[0]!.closed, true, 'the bridge to the old leg closed');
  const next2 = h.engine.legs[2]!;
  next2.ring(true);
  next2.answer();
  await h.tick();
  t.equal(h.engine.bridges.length, 2, 'a new bridge');
  t.equal(h.engine.bridges[1]!.b, next2, 'to the new leg');
  t.same(
    h.progress(res_id).filter((p) => p.party === 2).map((p) => p.progress),
    ['dialing', 'early_media', 'redirected', 'early_media', 'answered', 'connected'],
  );
});

t.test("a redirect's new leg takes fresh media through engine.reserve; none to be had ends the party engine_error without a new INVITE", async (t) => {
  const h = serviceHarness();
  const ok = await notify(h);
  const before = h.engine.reservations.length;
  ok.leg.end(moved('sip:4000@x'));
  await h.tick();
  t.equal(h.engine.reservations.length, before + 1, 'one fresh reservation');
  const fresh = h.engine.reservations.at(-1)!;
  t.equal(fresh.group, ok.res_id, 'grouped by the resource');
  t.equal(h.engine.legs.at(-1)!.request.reservation, fresh, 'the new leg gets it');

  const failed = await notify(h);
  const legs = h.engine.legs.length;
  h.engine.reserveFailure = 'no FreeSWITCH endpoint free';
  failed.leg.end(moved('sip:5000@x'));
  await h.tick();
  t.equal(h.engine.legs.length, legs, 'no new INVITE');
  t.match(h.released(failed.res_id), [{ error: { code: 'engine_error', message: /media for the redirect to sip:5000@192\.0\.2\.10:5060 could not be had \(no FreeSWITCH endpoint free\)/ }, dropped_by: 'sys' }]);
});

t.test('a hang-up while the redirect reserves media ends the party without the new INVITE and gives the media back', async (t) => {
  const h = serviceHarness();
  const { res_id, leg } = await notify(h);
  let open!: () => void;
  h.engine.reserveGate = new Promise((resolve) => (open = resolve));
  leg.end(moved('sip:4000@x'));
  await h.tick();
  h.service.cancel(res_id, 'ext.notify_call', ACCOUNT_ID);
  await h.tick();
  t.equal(h.released(res_id).length, 0, 'not released before the reserve answers');
  open();
  await h.tick();
  t.equal(h.engine.legs.length, 1, 'the redirect was not dialled');
  t.ok(h.engine.reservations.at(-1)!.released, 'the reserved media was given back');
  t.match(h.released(res_id), [{ error: { code: 'cancelled' } }]);
});

t.test('duo_callback record_mode 2: the recording follows party 2 to its redirected leg, into the same file', async (t) => {
  const h = serviceHarness();
  const params: ExtDuoCallbackConstructParams = { to1_uri: '13800000001', to2_uri: '13800000002', ring_play_file: null, ring_play_mode: 3, record_file: 'r.wav', record_mode: 2 };
  const { res_id } = h.service.constructDuoCallback(params, OWNER);
  await h.tick();
  h.engine.legs[0]!.answer();
  await h.tick();
  const first2 = h.engine.legs[1]!;
  t.equal(first2.recordings.length, 1, 'recording from the dialling');
  first2.end(moved('sip:13800000003@gw1'));
  await h.tick();
  const next2 = h.engine.legs[2]!;
  t.equal(next2.recordings.length, 1, 'restarted on the new leg');
  t.equal(next2.recordings[0]!.path, first2.recordings[0]!.path, 'same file');
  t.equal(next2.recordings[0]!.farEnd, 'right', 'party 2 right');
  next2.answer();
  await h.tick();
  t.equal(h.released(res_id).length, 0, 'the call goes on');
  t.match(h.progress(res_id).at(-1), { progress: 'connected' });
});
