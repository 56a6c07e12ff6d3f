// Key presses reaching a leg of the embedded engine: RFC 4733 events sent from the far
// end's media address (a test socket SIPp's SDP names) and SIP INFO sent by SIPp.
import t from 'tap';
import { writeRtpHeader } from '../../../lib/engines/embedded/Rtp.js';
import { MAX_DTMF_PER_SECOND, type CallLeg, type DtmfSource } from '../../../lib/telephony/TelephonyEngine.js';
import { Ear, SIPP_MISSING, answeredLeg, ended, next, requestTo, rtpPort, runSipp, sippInstalled, sleep, startEngine } from './harness.js';

/** Every key the leg reports, with its source. */
function keysOf(leg: CallLeg): string[] {
  const keys: string[] = [];
  leg.on('dtmf', (key: string, source: DtmfSource) => keys.push(`${key}:${source}`));
  return keys;
}

/** The packets of one key press (RFC 4733 §2.5): start, updates, the end three times; 20 ms apart. */
function keyPress(seq: number, ts: number, event: number): Buffer[] {
  return [160, 320, 480, 640, 640, 640].map((duration, i) => {
    const p = Buffer.alloc(16);
    writeRtpHeader(p, 0, 101, i === 0, seq + i, ts, 0x4733);
    p[12] = event;
    p[13] = (i >= 3 ? 0x80 : 0) | 10;
    p.writeUInt16BE(duration, 14);
    return p;
  });
}

if (!sippInstalled()) {
  t.fail(SIPP_MISSING);
} else {
  t.test('RFC 4733: our offer names telephone-event/8000; each key is reported once, at its first packet', async (tt) => {
    const engine = await startEngine(tt);
    const ear = await Ear.open(tt);
    const sipp = await runSipp(tt, 'answer', { mediaPort: ear.port });
    const leg = engine.dial(requestTo(sipp));
    const keys = keysOf(leg);
    await next(leg, 'answered');
    const invite = sipp.received().find((m) => m.startsWith('INVITE'));
    tt.match(invite, /a=rtpmap:101 telephone-event\/8000/, 'telephone-event offered');
    const port = await rtpPort(leg);
    let seq = 1;
    const sentAt: number[] = [];
    for (const [i, event] of [1, 11, 1, 9].entries()) {
      sentAt.push(performance.now());
      for (const p of keyPress(seq, 8000 * (i + 1), event)) {
        await ear.send(p, port);
        await sleep(20);
      }
      seq += 6;
      await ear.send(Buffer.from([0x80, 101, 0, 0]), port); // garbage between keys
    }
    await sleep(100);
    tt.same(keys, ['1:rfc4733', '#:rfc4733', '1:rfc4733', '9:rfc4733']);
    leg.hangup();
    await ended(leg);
    tt.equal(await sipp.exit, 0, sipp.errors());
  });

  t.test('a flood of telephone-events: at most MAX_DTMF_PER_SECOND keys a second reach the leg', async (tt) => {
    const engine = await startEngine(tt);
    const ear = await Ear.open(tt);
    const leg = await answeredLeg(tt, engine, ear);
    const keys = keysOf(leg);
    const port = await rtpPort(leg);
    // 200 distinct key presses (a new timestamp each) as fast as the socket sends them.
    await Promise.all(Array.from({ length: 200 }, (_, i) => ear.send(keyPress(i * 6, (i + 1) * 1000, i % 10)[0]!, port)));
    await sleep(200);
    tt.equal(keys.length, MAX_DTMF_PER_SECOND, `${keys.length} keys passed`);
    leg.hangup();
    await ended(leg);
  });

  t.test('SIP INFO: dtmf-relay and dtmf give keys, garbage none, every INFO is answered 200', async (tt) => {
    const engine = await startEngine(tt);
    const ear = await Ear.open(tt);
    const sipp = await runSipp(tt, 'info-dtmf', { mediaPort: ear.port });
    const leg = engine.dial(requestTo(sipp));
    const keys = keysOf(leg);
    await next(leg, 'answered');
    const deadline = performance.now() + 5000;
    while (keys.length < 3 && performance.now() < deadline) await sleep(50);
    await sleep(200);
    tt.same(keys, ['5:sip_info', '#:sip_info', '*:sip_info']);
    leg.hangup();
    await ended(leg);
    tt.equal(await sipp.exit, 0, `SIPp got 200 for every INFO and our BYE: ${sipp.errors()}`);
  });
}
