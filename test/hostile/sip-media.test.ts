// Issue 7 points 3 and 7 on the embedded engine: a stranger scanning the RTP
// range during a bridged call neither receives audio nor redirects it; an
// answer without usable media ends the call with a clear error.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { NO_USABLE_MEDIA } from '../../lib/engines/sipChecks.js';
import { pcmWavHeader } from '../../lib/engines/embedded/Wav.js';
import { errorForFailedLeg } from '../../lib/resources/releaseError.js';
import {
  Ear,
  FAR_HOST,
  SIPP_MISSING,
  answeredLeg,
  ended,
  next,
  requestTo,
  rtp,
  rtpPort,
  runSipp,
  sippInstalled,
  sleep,
  startEngine,
  type SippOptions,
} from '../engines/embedded/harness.js';

const STRANGER = '127.0.0.5';
const RTP_MIN = 40000 + 2 * Math.floor(Math.random() * 5000);
const RTP_MAX = RTP_MIN + 99;

if (!sippInstalled()) {
  t.fail(SIPP_MISSING);
} else {
  t.test('an RTP scan of the port range during a bridged call: the stranger gets nothing, party 2 still hears party 1', async (tt) => {
    const engine = await startEngine(tt, { rtpPortMin: RTP_MIN, rtpPortMax: RTP_MAX, rtpLatchSeconds: 1 });
    const earA = await Ear.open(tt);
    const earB = await Ear.open(tt);
    const a = await answeredLeg(tt, engine, earA);
    const b = await answeredLeg(tt, engine, earB);
    await engine.bridge(a, b);
    const portA = await rtpPort(a);
    const portB = await rtpPort(b);
    const stranger = await Ear.open(tt, STRANGER);

    let seq = 0;
    const talk = async (packets: number): Promise<void> => {
      for (let i = 0; i < packets; i++, seq++) {
        await earA.send(rtp(0, seq, 0x11, 0xaaaa), portA); // party 1 talks
        await earB.send(rtp(0, seq, 0x22, 0xbbbb), portB); // party 2 talks
        await sleep(20);
      }
    };
    await talk(5);
    // The attack: one bare 12-byte RTP header to each even port of the range, while the call goes on.
    const header = rtp(0, 1, 0).subarray(0, 12);
    for (let port = RTP_MIN; port <= RTP_MAX; port += 2) await stranger.send(header, port);
    const heardByB = earB.packets.length;
    const heardByA = earA.packets.length;
    await talk(25);
    tt.equal(stranger.packets.length, 0, 'the stranger received no packet of the call');
    tt.ok(earB.packets.length - heardByB >= 20, `party 2 still hears party 1 (${earB.packets.length - heardByB} packets after the scan)`);
    tt.ok(earA.packets.length - heardByA >= 20, `party 1 still hears party 2 (${earA.packets.length - heardByA} packets after the scan)`);
    tt.ok(earB.packets.slice(heardByB).every((p) => p.data[12] === 0x11), 'and it is party 1’s audio');

    // After the latch window even the signalling peer's address cannot move the stream.
    await sleep(1100);
    const fromPeer = await Ear.open(tt, FAR_HOST);
    await fromPeer.send(rtp(0, 500, 0x33, 0xcccc), portB);
    const before = earB.packets.length;
    await talk(5);
    tt.equal(fromPeer.packets.length, 0, 'a packet from the SIP peer’s IP after the window takes nothing');
    tt.ok(earB.packets.length - before >= 3, 'party 2 keeps hearing');
    a.hangup();
    b.hangup();
    await Promise.all([ended(a), ended(b)]);
    await engine.stop(); // waits for both BYEs' answers while SIPp is still up (its teardown kills it)
  });

  t.test('within the latch window a packet from the SDP’s IP (another port: NAT) moves the stream; a stranger’s does not', async (tt) => {
    const engine = await startEngine(tt, { rtpPortMin: RTP_MIN, rtpPortMax: RTP_MAX, rtpLatchSeconds: 5 });
    const ear = await Ear.open(tt);
    const sipp = await runSipp(tt, 'answer', { mediaPort: ear.port });
    const leg = engine.dial(requestTo(sipp, {}, 'latch'));
    await next(leg, 'answered');
    const port = await rtpPort(leg);
    const stranger = await Ear.open(tt, STRANGER);
    await stranger.send(rtp(0, 1, 0x44, 0x5555), port);
    const natted = await Ear.open(tt); // the same IP as the SDP, another port
    await natted.send(rtp(0, 2, 0x44, 0x6666), port);
    const file = join(mkdtempSync(join(tmpdir(), 'hostile-rtp-')), 'tone.wav');
    const samples = Buffer.alloc(8000 * 2 * 0.2, 1); // 200 ms
    writeFileSync(file, Buffer.concat([pcmWavHeader(samples.length, 1), samples]));
    await leg.play([file], 0);
    await natted.waitFor(5);
    tt.equal(stranger.packets.length, 0, 'the stranger got nothing');
    tt.equal(ear.packets.length, 0, 'the old address gets nothing after the latch');
    leg.hangup();
    await ended(leg);
    tt.equal(await sipp.exit, 0, 'the far end got our BYE', { errors: sipp.errors() });
  });

  const variants: [string, string, Partial<SippOptions>][] = [
    ['a 200 without SDP to our offer', 'answer-nosdp', {}],
    ['port 0', 'answer', { mediaPort: 0 }],
    ['c=0.0.0.0', 'answer', { mediaHost: '0.0.0.0' }],
    ['an IPv6-only connection line', 'answer-net', { mediaHost: '::1', keys: { net: 'IP6' } }],
  ];
  for (const [name, scenario, o] of variants) {
    t.test(`an answer with ${name}: the call ends "${NO_USABLE_MEDIA}" (ACK and BYE sent), never "answered"`, async (tt) => {
      const engine = await startEngine(tt);
      const ear = await Ear.open(tt);
      const sipp = await runSipp(tt, scenario, { mediaPort: ear.port, ...o });
      const leg = engine.dial(requestTo(sipp, {}, 'nomedia'));
      let answered = false;
      leg.on('answered', () => (answered = true));
      const end = await ended(leg);
      tt.same(end, { by: 'engine', reason: NO_USABLE_MEDIA, farEndFault: 'rejected' });
      tt.notOk(answered, 'no answered event: nothing would be heard');
      tt.same(errorForFailedLeg(end), { code: 'rejected', message: 'no usable media in the answer' }, 'what on_released says: the far end\'s doing, not engine_error');
      tt.equal(await sipp.exit, 0, 'the far end got our ACK and BYE', { errors: sipp.errors() });
      const received = sipp.received().map((m) => m.split(' ')[0]);
      tt.same(received.slice(-2), ['ACK', 'BYE']);
    });
  }
}
