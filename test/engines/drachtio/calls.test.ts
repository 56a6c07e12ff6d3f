// The drachtio engine's SIP call flows against a live drachtio-server +
// FreeSWITCH, with SIPp (test/sipp/carrier.xml) as the far end.
import t from 'tap';
import type { LegProgress } from '../../../lib/telephony/TelephonyEngine.js';
import { callOutcome, countEnded, ended, next, openEar, request, sleep, startCarrier, startEngine } from './harness.js';
import { eslApi } from './eslApi.js';
import { findServices } from './services.js';

const services = await findServices();
if ('skip' in services) {
  t.comment(`SKIP drachtio engine call flows: ${services.skip}`);
  t.test('drachtio engine call flows', { skip: services.skip }, () => {});
} else {
  t.teardown(() => services.local?.stop());
  const engine = await startEngine(t, services.config);
  const udp = await startCarrier(t, 'udp');
  const tcp = await startCarrier(t, 'tcp');
  t.comment(`carrier logs: ${udp.logDir} ${tcp.logDir}`);

  for (const carrier of [udp, tcp]) {
    t.test(`${carrier.transport}: answered, then our BYE`, async (tt) => {
      const ear = await openEar(tt);
      const leg = engine.dial(request(carrier, `answer-${ear.port}`));
      const endedCount = countEnded(leg);
      await next(leg, 'answered');
      leg.hangup();
      leg.hangup(); // idempotent
      tt.same(await ended(leg), { by: 'local', reason: 'hangup' });
      await sleep(300);
      tt.equal(endedCount(), 1, 'exactly one ended');
    });
  }

  t.test('486 ends the leg by remote with status and reason', async (tt) => {
    const leg = engine.dial(request(udp, 'busy'));
    let syncEnded = true;
    const end = ended(leg);
    syncEnded = false;
    tt.same(await end, { by: 'remote', sipStatus: 486, reason: '486 Busy Here' });
    tt.notOk(syncEnded, 'ended is never emitted inside dial()');
  });

  t.test('ringing: progress without early media, then CANCEL on hangup', async (tt) => {
    const leg = engine.dial(request(udp, 'ring'));
    const endedCount = countEnded(leg);
    const [progress] = (await next(leg, 'progress')) as [LegProgress];
    tt.same(progress, { sipStatus: 180, earlyMedia: false });
    leg.hangup();
    tt.same(await ended(leg), { by: 'local', reason: 'hangup' });
    await sleep(500);
    tt.equal(endedCount(), 1, 'the 487 after CANCEL adds no second ended');
    tt.match(await udp.messages(), /CANCEL sip:ring@/, 'the carrier got a CANCEL');
  });

  t.test('hangup before anything was sent: ended by local, nothing dialled', async (tt) => {
    const leg = engine.dial(request(udp, 'ring'));
    leg.hangup();
    tt.same(await ended(leg), { by: 'local', reason: 'hangup' });
  });

  t.test('hangup racing the answer: the 2xx is still hung up with BYE', async (tt) => {
    const ear = await openEar(tt);
    const leg = engine.dial(request(udp, `ringans-0.3-${ear.port}`));
    await next(leg, 'progress');
    await sleep(290);
    leg.hangup();
    tt.same(await ended(leg), { by: 'local', reason: 'hangup' });
    await sleep(1000);
    tt.equal(await callOutcome(udp, `ringans-0.3-${ear.port}`), 'hung up', 'the carrier saw CANCEL/487 or a BYE');
  });

  t.test('183 with SDP is early media, then 200', async (tt) => {
    const ear = await openEar(tt);
    const leg = engine.dial(request(udp, `early-0.5-${ear.port}`));
    const [progress] = (await next(leg, 'progress')) as [LegProgress];
    tt.same(progress, { sipStatus: 183, earlyMedia: false }, 'SDP alone is no early media yet (RFC 3960)');
    tt.same(await next(leg, 'progress'), [{ sipStatus: 183, earlyMedia: true }], 'the party\'s RTP reaching FreeSWITCH makes it early media');
    await next(leg, 'answered');
    leg.hangup();
    tt.same(await ended(leg), { by: 'local', reason: 'hangup' });
  });

  t.test('the far end hangs up: ended by remote BYE', async (tt) => {
    const ear = await openEar(tt);
    const leg = engine.dial(request(udp, `hangup-0.5-${ear.port}`));
    await next(leg, 'answered');
    tt.same(await ended(leg), { by: 'remote', reason: 'BYE' });
    leg.hangup(); // nothing left to do
  });

  t.test('digest challenge answered with the gateway credentials', async (tt) => {
    const ear = await openEar(tt);
    const leg = engine.dial(request(udp, `auth-${ear.port}`, true));
    await next(leg, 'answered');
    leg.hangup();
    tt.same(await ended(leg), { by: 'local', reason: 'hangup' });
  });

  t.test('a challenge without credentials fails the leg with 401', async (tt) => {
    const ear = await openEar(tt);
    const leg = engine.dial(request(udp, `auth-${ear.port}`));
    const end = await ended(leg);
    tt.equal(end.by, 'remote');
    tt.equal(end.sipStatus, 401);
  });

  t.test('a SIP INFO key press (dtmf-relay) reaches the leg as dtmf; the INFO is answered 200', async (tt) => {
    const ear = await openEar(tt);
    const leg = engine.dial(request(udp, `info-0.3-${ear.port}`));
    const keys: string[] = [];
    leg.on('dtmf', (key, source) => keys.push(`${key}:${source}`));
    await next(leg, 'answered');
    for (let waited = 0; keys.length === 0 && waited < 5000; waited += 100) await sleep(100);
    tt.same(keys, ['7:sip_info']);
    leg.hangup();
    await ended(leg);
    tt.match(await udp.messages(), /SIP\/2\.0 200 OK\r?\n(?:[^\r\n]+\r?\n)*?CSeq: \d+ INFO/, 'the carrier got 200 for its INFO');
  });

  t.test('the leg ends while the party’s re-INVITE offer is with FreeSWITCH: the re-INVITE gets 487 (RFC 3261 §15.1.2), not silence', { skip: services.local ? false : 'needs a FreeSWITCH started here (the test pauses it)' }, async (tt) => {
    const ear = await openEar(tt);
    const leg = engine.dial(request(udp, `reinvhold-${ear.port}`));
    await next(leg, 'answered');
    const finals = async (): Promise<number[]> =>
      [...(await udp.messages()).matchAll(/^\s*SIP\/2\.0 (\d{3}) [^\r\n]*\r?\n(?:[^\r\n]+\r?\n)*?CSeq: 11 INVITE/gm)].map((m) => Number(m[1]));
    const resume = services.local!.pauseFreeswitch();
    try {
      // The party's hold re-INVITE comes 0.5 s after its ACK; drachtio-server's 100 Trying says it arrived.
      for (let waited = 0; !(await finals()).includes(100) && waited < 5000; waited += 50) await sleep(50);
      tt.ok((await finals()).includes(100), 'the re-INVITE reached drachtio-server');
      await sleep(200); // the engine has passed its offer to the frozen FreeSWITCH
      leg.hangup();
      tt.same(await ended(leg), { by: 'local', reason: 'hangup' });
    } finally {
      resume();
    }
    for (let waited = 0; !(await finals()).some((s) => s >= 200) && waited < 3000; waited += 50) await sleep(50);
    tt.same((await finals()).filter((s) => s >= 200), [487], 'the pending re-INVITE got 487');
    tt.equal(await callOutcome(udp, `reinvhold-${ear.port}`), 'hung up', 'and our BYE ended the call');
  });

  t.test('no FreeSWITCH channel and no carrier call left up', async (tt) => {
    await sleep(1000);
    if (!services.local) {
      tt.comment('FreeSWITCH is shared (DRACHTIO_HOST mode): channel count not checked');
      return;
    }
    const [fs] = services.config.freeswitch;
    const reply = await eslApi(fs!, 'show channels count');
    tt.match(reply, /^0 total/m, 'FreeSWITCH has no channel up');
  });
}
