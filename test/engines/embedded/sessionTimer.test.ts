// The session timer of the embedded engine (RFC 4028): the Session-Expires and
// Min-SE grammar against hostile values, the timer's refresh/expiry times, and
// what our refresh does with a 422, 408, 481 or 491 from the far end, and
// the PRACK of a reliable 18x to our refresh re-INVITE.
import t, { type Test } from 'tap';
import { SESSION_EXPIRED } from '../../../lib/engines/sipChecks.js';
import { droppedByFor, errorForEndedCall } from '../../../lib/resources/releaseError.js';
import type { CallLeg } from '../../../lib/telephony/TelephonyEngine.js';
import { ManualClock } from '../../support/ManualClock.js';
import { freeSipPort } from '../../support/engineTestKit.js';
import type { SipMessage } from '../../support/sipp/sipMessage.js';
import { ENGINE_HOST, Ear, FAR_HOST, ScriptedCarrier, earSdp, ended, next, requestTo, sleep, startEngine } from './harness.js';
import { MAX_SESSION_EXPIRES_SECONDS, MIN_SE_SECONDS, parseMinSe, parseSessionExpires } from '../../../lib/engines/sessionExpires.js';
import { SessionTimer, expiryMs, glareWaitMs } from '../../../lib/engines/embedded/SessionTimer.js';

t.test('Session-Expires: the RFC 4028 §4 grammar', async (tt) => {
  tt.same(parseSessionExpires('90;refresher=uas'), { seconds: 90, refresher: 'uas' });
  tt.same(parseSessionExpires(' 1800 ; refresher = UAC '), { seconds: 1800, refresher: 'uac' }, 'spaces around ; and = (SWS), any case');
  tt.same(parseSessionExpires('3600'), { seconds: 3600, refresher: undefined }, 'no refresher');
  tt.same(parseSessionExpires('120;x-foo=bar;flag;refresher=uac'), { seconds: 120, refresher: 'uac' }, 'generic params ignored');
  tt.equal(parseSessionExpires(undefined), undefined, 'absent');
  tt.same(parseSessionExpires('30'), { seconds: 30, refresher: undefined }, 'small values parse (the caller answers 422)');
  for (const bad of ['', 'soon', '-90', '90.5', '0', '0x5a', '90;refresher=whoever', '90;refresher=uac;refresher=uas', '90,120', '12345678901', '99999999999999999999',
    '90;refresher', '90;=x', `90;${'a'.repeat(300)}`, '90\r\nX-Injected: 1', '90;a="unterminated']) {
    tt.equal(parseSessionExpires(bad), 'invalid', `invalid: ${JSON.stringify(bad.slice(0, 40))}`);
  }
  tt.equal(parseSessionExpires(90), 'invalid', 'a non-string (a parser object) is invalid, not a throw');
  tt.equal(parseSessionExpires(['90']), 'invalid');
});

t.test('Min-SE: delta-seconds and generic params only', async (tt) => {
  tt.equal(parseMinSe('90'), 90);
  tt.equal(parseMinSe('120;foo=bar'), 120);
  tt.equal(parseMinSe(undefined), undefined);
  for (const bad of ['', 'ninety', '90,100', '0', '90;', '-1']) tt.equal(parseMinSe(bad), 'invalid', `invalid: ${JSON.stringify(bad)}`);
});

t.test('expiry slack: min(32 s, interval/3) before the end (RFC 4028 §10)', async (tt) => {
  tt.equal(expiryMs(90), 60_000);
  tt.equal(expiryMs(1800), 1_768_000);
  tt.equal(expiryMs(60), 40_000);
});

t.test('SessionTimer: we refresh at half the interval, they must refresh before the slack', async (tt) => {
  const clock = new ManualClock();
  const fired: string[] = [];
  const timer = new SessionTimer(() => fired.push('refresh'), () => fired.push('expired'), clock);
  timer.arm(90, 'we');
  tt.same(timer.state, { kind: 'we_refresh', seconds: 90 });
  clock.advance(44_999);
  tt.same(fired, []);
  clock.advance(1);
  tt.same(fired, ['refresh'], 'refresh at 45 s');
  timer.arm(90, 'they'); // the 2xx to our refresh made the far end the refresher
  clock.advance(59_999);
  tt.same(fired, ['refresh']);
  clock.advance(1);
  tt.same(fired, ['refresh', 'expired'], 'expired at 60 s without their refresh');
  tt.same(timer.state, { kind: 'off' });

  timer.arm(10, 'they');
  tt.same(timer.state, { kind: 'they_refresh', seconds: MIN_SE_SECONDS }, 'below Min-SE is raised to it');
  timer.arm(10 ** 9, 'we');
  tt.same(timer.state, { kind: 'we_refresh', seconds: MAX_SESSION_EXPIRES_SECONDS }, 'above the maximum is cut to it');
  timer.stop();
  clock.advance(10 ** 8);
  tt.same(fired, ['refresh', 'expired'], 'nothing after stop()');
  tt.equal(clock.pending, 0, 'stop() cancelled both timers');
});

// Our refreshes on a real engine and real SIP, the far end played by the test
// (ScriptedCarrier); only the session timers run on a hand-driven clock.

interface RefreshedCall {
  readonly clock: ManualClock;
  readonly carrier: ScriptedCarrier;
  readonly leg: CallLeg;
  /** The next refresh (UPDATE or re-INVITE) after CSeq `after`, within `ms`. */
  refresh(after: number, ms?: number): Promise<SipMessage | undefined>;
}

/** A call answered with `Session-Expires: 90;refresher=uac` (we refresh); `allowUpdate` puts UPDATE in the 200's Allow. */
async function refreshedCall(tt: Test, allowUpdate: boolean): Promise<RefreshedCall> {
  const clock = new ManualClock();
  const port = await freeSipPort(ENGINE_HOST);
  const engine = await startEngine(tt, { sipPort: port }, clock);
  const ear = await Ear.open(tt);
  const carrier = await ScriptedCarrier.open(tt, FAR_HOST, port);
  const leg = engine.dial(requestTo(carrier, {}, 'refresh'));
  const invite = await carrier.waitFor((m) => m.method === 'INVITE');
  if (!invite) throw new Error('no INVITE');
  const answered = next(leg, 'answered');
  await carrier.reply(invite, '200 OK', 'far', [
    `Allow: INVITE, ACK, BYE, CANCEL, OPTIONS${allowUpdate ? ', UPDATE' : ''}`,
    'Supported: timer', 'Require: timer', 'Session-Expires: 90;refresher=uac',
  ], earSdp(ear));
  await answered;
  const method = allowUpdate ? 'UPDATE' : 'INVITE';
  return {
    clock, carrier, leg,
    refresh: (after, ms) => carrier.waitFor((m) => m.status === undefined && m.method === method && m.cseq > after && /;tag=/.test(m.header('to') ?? ''), ms),
  };
}

/** The engine's BYE, answered 200. */
async function byeAnswered(tt: Test, carrier: ScriptedCarrier): Promise<void> {
  const bye = await carrier.waitFor((m) => m.method === 'BYE' && m.status === undefined);
  tt.ok(bye, 'we BYE the far end');
  if (bye) await carrier.reply(bye, '200 OK', 'far');
}

t.test('a 422 to our UPDATE refresh is retried once with the far end’s Min-SE; a 481 to a later refresh ends the leg (timeout, dropped_by sys)', async (tt) => {
  const { clock, carrier, leg, refresh } = await refreshedCall(tt, true);
  clock.advance(44_999);
  tt.notOk(await refresh(0, 200), 'no refresh before half the interval');
  clock.advance(1);
  const first = await refresh(0);
  tt.equal(first?.header('session-expires'), '90;refresher=uac', 'the UPDATE refresh at 45 s');
  tt.equal(first?.body, '', 'without SDP');
  if (!first) return;
  await carrier.reply(first, '422 Session Interval Too Small', 'far', ['Min-SE: 120']);
  const retry = await refresh(first.cseq);
  tt.equal(retry?.header('session-expires'), '120;refresher=uac', 'retried with the far end’s Min-SE (RFC 4028 §7.4), a new CSeq');
  if (!retry) return;
  await carrier.reply(retry, '200 OK', 'far', ['Session-Expires: 120;refresher=uac', 'Require: timer']);
  await sleep(100);
  clock.advance(59_999);
  tt.notOk(await refresh(retry.cseq, 200), 'the 200 armed a 120 s interval: nothing before 60 s');
  clock.advance(1);
  const third = await refresh(retry.cseq);
  tt.equal(third?.header('session-expires'), '120;refresher=uac', 'the next refresh at half of 120 s');
  if (!third) return;
  const end = ended(leg);
  await carrier.reply(third, '481 Call/Transaction Does Not Exist', 'far');
  const how = await end;
  tt.same(how, { by: 'engine', reason: 'session refresh failed: 481', farEndFault: 'timeout' });
  tt.same(errorForEndedCall(how), { code: 'timeout', message: 'session refresh failed: 481' }, 'docs/errors.md: timeout');
  tt.equal(droppedByFor(how), 'sys');
  await byeAnswered(tt, carrier);
});

t.test('a re-INVITE refresh: a second 422 is not retried again, and the session then expires (BYE at interval − 30 s)', async (tt) => {
  const { clock, carrier, leg, refresh } = await refreshedCall(tt, false);
  clock.advance(45_000);
  const first = await refresh(0);
  tt.equal(first?.header('session-expires'), '90;refresher=uac', 'a re-INVITE when the far end does not allow UPDATE');
  tt.match(first?.body ?? '', /^v=0/, 'offering our SDP again');
  if (!first) return;
  await carrier.reply(first, '422 Session Interval Too Small', 'far', ['Min-SE: 120']);
  tt.ok(await carrier.waitFor((m) => m.method === 'ACK' && m.cseq === first.cseq), 'the 422 is ACKed');
  const retry = await refresh(first.cseq);
  tt.equal(retry?.header('session-expires'), '120;refresher=uac');
  if (!retry) return;
  let endedNow = false;
  leg.once('ended', () => (endedNow = true));
  await carrier.reply(retry, '422 Session Interval Too Small', 'far', ['Min-SE: 150']);
  tt.notOk(await refresh(retry.cseq, 300), 'only one retry');
  tt.notOk(endedNow, 'a refused refresh does not end the call by itself');
  const end = ended(leg);
  clock.advance(15_000); // 60 s since the 2xx: 90 − min(32, 90/3)
  tt.same(await end, { by: 'engine', reason: SESSION_EXPIRED, farEndFault: 'timeout' }, 'the interval ran out');
  await byeAnswered(tt, carrier);
});

t.test('a 408 to our refresh ends the leg (timeout)', async (tt) => {
  const { clock, carrier, leg, refresh } = await refreshedCall(tt, false);
  clock.advance(45_000);
  const first = await refresh(0);
  if (!first) return tt.fail('no refresh');
  const end = ended(leg);
  await carrier.reply(first, '408 Request Timeout', 'far');
  tt.same(await end, { by: 'engine', reason: 'session refresh failed: 408', farEndFault: 'timeout' });
  await byeAnswered(tt, carrier);
});

t.test('glare wait (RFC 3261 §14.1, we own the Call-ID): 2.1 to 4 s in 10 ms units', async (tt) => {
  tt.equal(glareWaitMs(() => 0), 2100);
  tt.equal(glareWaitMs(() => 0.999999), 4000);
  for (let i = 0; i < 200; i++) {
    const ms = glareWaitMs();
    if (ms < 2100 || ms > 4000 || ms % 10 !== 0) return tt.fail(`out of range: ${ms}`);
  }
  tt.pass('200 random waits in range');
});

/** The next refresh after `after` once the glare wait is over: none before 2.1 s, one by 4 s. */
async function refreshAfterGlare(tt: Test, call: RefreshedCall, after: number): Promise<SipMessage | undefined> {
  await sleep(100); // the 491 reaches the engine, which sets the wait on the hand-driven clock
  call.clock.advance(2099);
  tt.notOk(await call.refresh(after, 200), 'not retried before 2.1 s');
  call.clock.advance(4000 - 2099);
  return call.refresh(after);
}

t.test('a 491 to our UPDATE refresh is retried after 2.1–4 s, at most twice; a third 491 leaves the session to expire', async (tt) => {
  const call = await refreshedCall(tt, true);
  const { clock, carrier, leg } = call;
  clock.advance(45_000);
  const first = await call.refresh(0);
  if (!first) return tt.fail('no refresh');
  await carrier.reply(first, '491 Request Pending', 'far');
  const second = await refreshAfterGlare(tt, call, first.cseq);
  tt.equal(second?.header('session-expires'), '90;refresher=uac', 'the UPDATE again, with a new CSeq');
  if (!second) return;
  await carrier.reply(second, '491 Request Pending', 'far');
  const third = await refreshAfterGlare(tt, call, second.cseq);
  if (!third) return tt.fail('no second retry');
  let endedNow = false;
  leg.once('ended', () => (endedNow = true));
  await carrier.reply(third, '491 Request Pending', 'far');
  await sleep(100);
  clock.advance(4000);
  tt.notOk(await call.refresh(third.cseq, 300), 'no third retry');
  tt.notOk(endedNow, 'a refused refresh does not end the call by itself');
  const end = ended(leg);
  clock.advance(60_000 - 45_000 - 8000);
  tt.same(await end, { by: 'engine', reason: SESSION_EXPIRED, farEndFault: 'timeout' }, 'the interval ran out (60 s after the 2xx)');
  await byeAnswered(tt, carrier);
});

t.test('a 491 to our re-INVITE refresh is ACKed and retried; the retry’s 200 arms the next interval', async (tt) => {
  const call = await refreshedCall(tt, false);
  const { clock, carrier, leg } = call;
  clock.advance(45_000);
  const first = await call.refresh(0);
  if (!first) return tt.fail('no refresh');
  await carrier.reply(first, '491 Request Pending', 'far');
  tt.ok(await carrier.waitFor((m) => m.method === 'ACK' && m.cseq === first.cseq), 'the 491 is ACKed');
  const retry = await refreshAfterGlare(tt, call, first.cseq);
  tt.match(retry?.body ?? '', /^v=0/, 'a re-INVITE offering our SDP again');
  if (!retry) return;
  await carrier.reply(retry, '200 OK', 'far', ['Session-Expires: 90;refresher=uac', 'Require: timer'], retry.body);
  tt.ok(await carrier.waitFor((m) => m.method === 'ACK' && m.cseq === retry.cseq), 'the 200 is ACKed');
  await sleep(100);
  let endedNow = false;
  leg.once('ended', () => (endedNow = true));
  clock.advance(44_999);
  tt.notOk(await call.refresh(retry.cseq, 200), 'the next refresh waits for half the new interval');
  clock.advance(1);
  tt.ok(await call.refresh(retry.cseq), 'and comes at 45 s');
  tt.notOk(endedNow, 'the call went on');
  leg.hangup();
  await byeAnswered(tt, carrier);
});

t.test('a reliable 183 to our re-INVITE refresh is PRACKed on the confirmed dialog, once (RFC 3262)', async (tt) => {
  const call = await refreshedCall(tt, false);
  const { clock, carrier } = call;
  clock.advance(45_000);
  const reinvite = await call.refresh(0);
  if (!reinvite) return tt.fail('no refresh');
  const reliable = ['Require: 100rel', 'RSeq: 7'];
  await carrier.reply(reinvite, '183 Session Progress', 'far', reliable);
  const prack = await carrier.waitFor((m) => m.method === 'PRACK');
  tt.equal(prack?.header('rack'), `7 ${reinvite.cseq} INVITE`, 'RAck names the 183 and the re-INVITE');
  tt.ok((prack?.cseq ?? 0) > reinvite.cseq, 'a new CSeq');
  tt.equal(prack?.header('call-id'), reinvite.header('call-id'));
  tt.equal(prack?.header('to'), reinvite.header('to'), 'on the confirmed dialog (its To tag)');
  if (!prack) return;
  await carrier.reply(prack, '200 OK', 'far');
  await carrier.reply(reinvite, '183 Session Progress', 'far', reliable); // a retransmission
  await sleep(200);
  tt.equal(carrier.messages.filter((m) => m.method === 'PRACK').length, 1, 'a retransmitted 183 is not PRACKed again');
  await carrier.reply(reinvite, '183 Session Progress', 'far', ['Require: 100rel', 'RSeq: 8']);
  const second = await carrier.waitFor((m) => m.method === 'PRACK' && m.cseq > prack.cseq);
  tt.equal(second?.header('rack'), `8 ${reinvite.cseq} INVITE`, 'the next RSeq is PRACKed');
  if (second) await carrier.reply(second, '200 OK', 'far');
  await carrier.reply(reinvite, '200 OK', 'far', ['Session-Expires: 90;refresher=uac', 'Require: timer'], reinvite.body);
  tt.ok(await carrier.waitFor((m) => m.method === 'ACK' && m.cseq === reinvite.cseq), 'the 200 is ACKed');
  call.leg.hangup();
  await byeAnswered(tt, carrier);
});
