// The engine's SIP call flows against a real SIPp far end (UDP and TCP).
import t from 'tap';
import type { LegProgress } from '../../../lib/telephony/TelephonyEngine.js';
import { Ear, FAR_HOST, SIPP_MISSING, ended, next, runSipp, sippInstalled, sleep, requestTo, rtp, rtpPort, startEngine, type Sipp } from './harness.js';

async function sippPassed(tt: Pick<typeof t, 'equal'>, sipp: Sipp): Promise<void> {
  const code = await sipp.exit;
  tt.equal(code, 0, 'SIPp ran its scenario to the end', { errors: code === 0 ? '' : sipp.errors() });
}

if (!sippInstalled()) {
  t.fail(SIPP_MISSING);
} else {
  for (const transport of ['udp', 'tcp'] as const) {
    t.test(`${transport}: answered, then our BYE`, async (tt) => {
      const engine = await startEngine(tt);
      const ear = await Ear.open(tt);
      const sipp = await runSipp(tt, 'answer', { transport, mediaPort: ear.port });
      const leg = engine.dial(requestTo(sipp, { transport }));
      await next(leg, 'answered');
      leg.hangup();
      leg.hangup(); // idempotent
      tt.same(await ended(leg), { by: 'local', reason: 'hangup' });
      await sippPassed(tt, sipp);
    });
  }

  t.test('486 ends the leg by remote with status and reason', async (tt) => {
    const engine = await startEngine(tt);
    const sipp = await runSipp(tt, 'busy', { mediaPort: 9 });
    const leg = engine.dial(requestTo(sipp));
    tt.same(await ended(leg), { by: 'remote', sipStatus: 486, reason: '486 Busy Here' });
    await sippPassed(tt, sipp);
  });

  t.test('ringing: progress without early media, then CANCEL on hangup', async (tt) => {
    const engine = await startEngine(tt);
    const sipp = await runSipp(tt, 'ring-cancel', { mediaPort: 9 });
    const leg = engine.dial(requestTo(sipp));
    const [progress] = (await next(leg, 'progress')) as [LegProgress];
    tt.same(progress, { sipStatus: 180, earlyMedia: false });
    leg.hangup();
    tt.same(await ended(leg), { by: 'local', reason: 'hangup' });
    await sippPassed(tt, sipp);
  });

  t.test('a 200 racing our CANCEL is ACKed and BYEd; the leg ends once, by local', async (tt) => {
    const engine = await startEngine(tt);
    const ear = await Ear.open(tt);
    const sipp = await runSipp(tt, 'cancel-race', { mediaPort: ear.port });
    const leg = engine.dial(requestTo(sipp));
    const ends: unknown[] = [];
    let answered = false;
    leg.on('ended', (end) => ends.push(end));
    leg.on('answered', () => (answered = true));
    await next(leg, 'progress');
    leg.hangup();
    await sippPassed(tt, sipp);
    await sleep(200); // room for a second, wrong 'ended'
    tt.same(ends, [{ by: 'local', reason: 'hangup' }], 'ended exactly once');
    tt.notOk(answered, 'a call we hung up is never reported answered');
    const received = sipp.received();
    tt.same(received.map((m) => m.split(' ', 1)[0]), ['INVITE', 'CANCEL', 'ACK', 'BYE'], 'SIPp got the ACK for its 200, then our BYE');
    tt.match(received[2], /^Via: .*;branch=z9hG4bK/m, 'the ACK has an RFC 3261 branch');
    tt.equal(ear.packets.length, 0, 'no media towards a call we hung up');
  });

  t.test('hangup while the leg is still starting sends nothing', async (tt) => {
    const engine = await startEngine(tt);
    const leg = engine.dial(requestTo({ host: FAR_HOST, port: 9 }));
    leg.hangup();
    tt.same(await ended(leg), { by: 'local', reason: 'hangup' });
  });

  t.test('183 with SDP is early media, then 200', async (tt) => {
    const engine = await startEngine(tt);
    const ear = await Ear.open(tt);
    const sipp = await runSipp(tt, 'early-media', { mediaPort: ear.port });
    const leg = engine.dial(requestTo(sipp));
    const [progress] = (await next(leg, 'progress')) as [LegProgress];
    tt.same(progress, { sipStatus: 183, earlyMedia: false }, 'SDP alone is no early media yet (RFC 3960)');
    const heard = next(leg, 'progress');
    await ear.send(rtp(0, 1, 0x10, 0x55), await rtpPort(leg)); // the far end's first early RTP packet
    tt.same(await heard, [{ sipStatus: 183, earlyMedia: true }], 'its first RTP packet makes it early media');
    await next(leg, 'answered');
    leg.hangup();
    await ended(leg);
    await sippPassed(tt, sipp);
  });

  t.test('401 challenge answered with the gateway credentials', async (tt) => {
    const engine = await startEngine(tt);
    const sipp = await runSipp(tt, 'auth', { mediaPort: 9 });
    const leg = engine.dial(requestTo(sipp, { username: 'alice', password: 'secret' }));
    await next(leg, 'answered');
    leg.hangup();
    await ended(leg);
    await sippPassed(tt, sipp);
  });

  t.test('wrong credentials: the final 403 ends the leg', async (tt) => {
    const engine = await startEngine(tt);
    const sipp = await runSipp(tt, 'auth', { mediaPort: 9 });
    const leg = engine.dial(requestTo(sipp, { username: 'alice', password: 'wrong' }));
    tt.same(await ended(leg), { by: 'remote', sipStatus: 403, reason: '403 Forbidden' });
    await sippPassed(tt, sipp);
  });

  t.test('the far end hangs up: 200 to its BYE, ended by remote', async (tt) => {
    const engine = await startEngine(tt);
    const sipp = await runSipp(tt, 'answer-then-bye', { mediaPort: 9 });
    const leg = engine.dial(requestTo(sipp));
    await next(leg, 'answered');
    tt.same(await ended(leg), { by: 'remote', reason: 'BYE' });
    leg.hangup(); // nothing left to do
    await sippPassed(tt, sipp);
  });

  t.test('a dial failure is never reported synchronously', async (tt) => {
    const engine = await startEngine(tt);
    const leg = engine.dial({ requestUri: 'not a uri', fromUri: 'sip:a@b', gateway: { name: 'gw', host: FAR_HOST, port: 5060, transport: 'udp' }, label: 'bad' });
    let sync = true;
    const end = ended(leg);
    sync = false;
    tt.equal((await end).by, 'engine');
    tt.notOk(sync);
    await engine.stop();
    tt.notOk(engine.available, 'stopped engine is unavailable');
    const late = engine.dial(requestTo({ host: FAR_HOST, port: 5060 }));
    tt.same(await ended(late), { by: 'engine', reason: 'engine not available' });
  });
}
