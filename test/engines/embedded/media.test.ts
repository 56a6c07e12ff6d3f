// The media path against SIPp: test sockets are the phones' ears (named in
// SIPp's SDP), so the test sees exactly what the engine sends.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { DECODE, ENCODE, TRANSCODE } from '../../../lib/engines/embedded/G711.js';
import { pcmWavHeader } from '../../../lib/engines/embedded/Wav.js';
import { Ear, SIPP_MISSING, answeredLeg, ended, next, requestTo, rtp, rtpPort, runSipp, sippInstalled, sleep, startEngine } from './harness.js';

const dir = mkdtempSync(join(tmpdir(), 'embedded-media-'));

/** A 16-bit PCM mono WAV of `samples` samples of a constant value. */
function wavFile(name: string, samples: number, value = 1000): string {
  const data = Buffer.alloc(samples * 2);
  for (let i = 0; i < samples; i++) data.writeInt16LE(value, i * 2);
  const path = join(dir, name);
  writeFileSync(path, Buffer.concat([pcmWavHeader(data.length, 1), data]));
  return path;
}

if (!sippInstalled()) {
  t.fail(SIPP_MISSING);
} else {
  t.test('play: every frame of the list repeat+1 times, paced at 20 ms, in PCMU', async (tt) => {
    const engine = await startEngine(tt);
    const ear = await Ear.open(tt);
    const leg = await answeredLeg(tt, engine, ear);
    const a = wavFile('a.wav', 1600); // 10 frames
    const b = wavFile('b.wav', 1000); // 6.25 → 7 frames, the last padded
    const result = await leg.play([a, b], 2);
    tt.same(result, { completed: true });
    await sleep(50);
    const packets = ear.packets.map((p) => p.data);
    tt.equal(packets.length, 3 * 17, '3 × (10 + 7) frames');
    tt.ok(packets.every((p) => p.length === 172 && (p[1]! & 0x7f) === 0), '160-byte PCMU frames');
    tt.equal(packets[0]![12], ENCODE.PCMU[1000], 'payload is the µ-law of the samples');
    tt.ok(packets.every((p, i) => i === 0 || p.readUInt16BE(2) === ((packets[i - 1]!.readUInt16BE(2) + 1) & 0xffff)), 'consecutive sequence numbers');
    tt.ok(packets.every((p, i) => i === 0 || p.readUInt32BE(4) === (packets[i - 1]!.readUInt32BE(4) + 160) >>> 0), 'timestamps step 160');
    const span = ear.packets.at(-1)!.at - ear.packets[0]!.at;
    tt.ok(Math.abs(span - 50 * 20) < 60, `50 intervals take about 1000 ms (took ${span.toFixed(0)})`);
    leg.hangup();
    await ended(leg);
  });

  t.test('play: transcodes to PCMA; stopPlay() and hangup cut it short', async (tt) => {
    const engine = await startEngine(tt);
    const ear = await Ear.open(tt);
    const leg = await answeredLeg(tt, engine, ear, { codec: 'PCMA' });
    const long = wavFile('long.wav', 8000 * 10);
    const playing = leg.play([long], 0);
    await ear.waitFor(5);
    leg.stopPlay();
    tt.same(await playing, { completed: false });
    tt.equal(ear.packets[0]!.data[1]! & 0x7f, 8, 'PCMA payload type');
    tt.equal(ear.packets[0]!.data[12], ENCODE.PCMA[1000]);
    const again = leg.play([long], 0);
    await sleep(100);
    leg.hangup();
    tt.same(await again, { completed: false });
    await ended(leg);
    tt.same(await leg.play([join(dir, 'missing.wav')], 0), { completed: false }, 'an ended leg plays nothing');
  });

  t.test('play rejects an unreadable file', async (tt) => {
    const engine = await startEngine(tt);
    const ear = await Ear.open(tt);
    const leg = await answeredLeg(tt, engine, ear);
    const bad = join(dir, 'bad.wav');
    writeFileSync(bad, 'not a wav');
    await tt.rejects(leg.play([bad], 0), /cannot play .*bad\.wav: not a RIFF\/WAVE file/);
    leg.hangup();
    await ended(leg);
  });

  t.test('bridge: relays both ways, transcodes, maps telephone-event, latches; a recording of leg a has a left, b right', async (tt) => {
    const engine = await startEngine(tt);
    const earA = await Ear.open(tt);
    const earB = await Ear.open(tt);
    const a = await answeredLeg(tt, engine, earA, { codec: 'PCMA', telephoneEventPt: 96 });
    const b = await answeredLeg(tt, engine, earB, { codec: 'PCMU', telephoneEventPt: 101 });
    const bridge = await engine.bridge(a, b);
    const recording = join(dir, 'bridge.wav');
    const recorder = await a.record(recording, 'left');
    const portA = await rtpPort(a);
    const portB = await rtpPort(b);
    for (let i = 0; i < 25; i++) {
      await earB.send(rtp(0, i, 0x10), portB); // µ-law from b
      await earA.send(rtp(8, i, 0x55), portA); // A-law from a
      await sleep(20);
    }
    await earB.send(rtp(101, 99, 0x01), portB); // a DTMF event from b
    await earA.waitFor(26);
    await earB.waitFor(25);
    const toA = earA.packets.map((p) => p.data);
    tt.ok(toA.slice(0, 25).every((p) => (p[1]! & 0x7f) === 8 && p[12] === TRANSCODE.PCMU.PCMA[0x10]), 'b’s µ-law reaches a as A-law');
    tt.equal(toA[25]![1]! & 0x7f, 96, 'telephone-event mapped to a’s payload type');
    tt.ok(earB.packets.every((p) => (p.data[1]! & 0x7f) === 0 && p.data[12] === TRANSCODE.PCMA.PCMU[0x55]), 'a’s A-law reaches b as µ-law');
    tt.equal(new Set(toA.map((p) => p.readUInt32BE(8))).size, 1, 'one SSRC towards a');

    // Symmetric RTP: b's far end now sends from another port; the engine must answer there.
    const moved = await Ear.open(tt);
    await moved.send(rtp(0, 100, 0x10, 0x99), portB);
    await earA.send(rtp(8, 200, 0x55), portA);
    await moved.waitFor(1);
    tt.pass('media for b goes where b’s RTP comes from');

    await bridge.close();
    await bridge.close(); // idempotent
    await recorder.stop();
    await recorder.stop(); // idempotent
    const wav = readFileSync(recording);
    tt.equal(wav.readUInt16LE(22), 2, 'stereo');
    tt.equal(wav.readUInt32LE(40), wav.length - 44, 'data size finalized');
    tt.equal(wav.readUInt32LE(4), wav.length - 8, 'RIFF size finalized');
    const frames = (wav.length - 44) / 4;
    tt.ok(frames >= 8000 * 0.4, `about half a second or more recorded (${frames} frames)`);
    let left = 0;
    let right = 0;
    for (let i = 0; i < frames; i++) {
      if (wav.readInt16LE(44 + i * 4) === DECODE.PCMA[0x55]) left++;
      if (wav.readInt16LE(46 + i * 4) === DECODE.PCMA[TRANSCODE.PCMU.PCMA[0x10]!]) right++; // what a heard: b's audio as A-law
    }
    tt.ok(left >= 160 * 20 && right >= 160 * 20, `a on the left (${left}), b on the right (${right})`);
    a.hangup();
    b.hangup();
    await Promise.all([ended(a), ended(b)]);
  });

  t.test('bridge with b in early media: a hears b’s ringback', async (tt) => {
    const engine = await startEngine(tt);
    const earA = await Ear.open(tt);
    const earB = await Ear.open(tt);
    const a = await answeredLeg(tt, engine, earA);
    const sipp = await runSipp(tt, 'early-media', { mediaPort: earB.port });
    const b = engine.dial(requestTo(sipp, {}, 'b'));
    await next(b, 'progress');
    const bridge = await engine.bridge(a, b);
    await earB.send(rtp(0, 1, 0x22), await rtpPort(b));
    await earA.waitFor(1);
    tt.equal(earA.packets[0]!.data[12], 0x22, 'ringback relayed');
    b.hangup();
    await ended(b);
    await bridge.close();
    a.hangup();
    await ended(a);
  });

  t.test('re-INVITE: our RTP follows the far end to its new port and stops on hold; our 200s keep the o= session', async (tt) => {
    const engine = await startEngine(tt);
    const earA = await Ear.open(tt);
    const earB = await Ear.open(tt);
    const sipp = await runSipp(tt, 'reinvite', { mediaPort: earA.port, mediaPort2: earB.port });
    const leg = engine.dial(requestTo(sipp, {}, 'moving'));
    await next(leg, 'answered');
    const port = await rtpPort(leg);
    await earA.send(rtp(0, 1, 0x10, 0x77), port); // the far end's RTP comes from ear A: we latch there
    const playing = leg.play([wavFile('reinvite.wav', 8000 * 10)], 0);
    await earA.waitFor(5);
    tt.equal(earB.packets.length, 0, 'ear B hears nothing before the re-INVITE');
    await earB.waitFor(5, 3000);
    const heardByA = earA.packets.length;
    await earA.send(rtp(0, 2, 0x10, 0x77), port); // a late packet of the old stream
    await sleep(200);
    tt.equal(earA.packets.length, heardByA, 'ear A hears nothing after the move, even after a late packet from it');
    tt.ok(earB.packets.length >= 10, `ear B hears the playback (${earB.packets.length} packets)`);

    const answers = (): string[] => sipp.received().filter((m) => m.startsWith('SIP/2.0 200'));
    for (let i = 0; i < 300 && answers().length < 3; i++) await sleep(10);
    const heardByB = earB.packets.length;
    await sleep(300);
    tt.equal(earB.packets.length, heardByB, 'nothing is sent while the far end holds the call (sendonly)');
    leg.stopPlay();
    tt.same(await playing, { completed: false });

    const origin = (m: string | undefined): string[] | undefined => /^o=- (\d+) (\d+) /m.exec(m ?? '')?.slice(1, 3);
    const direction = (m: string): string | undefined => /^a=(sendrecv|sendonly|recvonly|inactive)\r?$/m.exec(m)?.[1];
    const [id] = origin(sipp.received()[0]) ?? [];
    tt.same(origin(sipp.received()[0]), [id, '1'], 'our offer');
    tt.same(answers().map(origin), [[id, '2'], [id, '3'], [id, '3']], 'one session id; the version moves only when our SDP changes');
    tt.same(answers().map(direction), ['sendrecv', 'recvonly', 'recvonly'], 'hold is answered recvonly');
    leg.hangup();
    await ended(leg);
    tt.equal(await sipp.exit, 0, 'SIPp got its 200s and our BYE', { errors: sipp.errors() });
  });

  t.test('no RTP after answer: the leg ends on media timeout', async (tt) => {
    const engine = await startEngine(tt, { mediaTimeoutSeconds: 1 });
    const ear = await Ear.open(tt);
    const sipp = await runSipp(tt, 'answer', { mediaPort: ear.port });
    const leg = engine.dial(requestTo(sipp, {}, 'silent'));
    await next(leg, 'answered');
    const started = performance.now();
    tt.same(await ended(leg, 5000), { by: 'engine', reason: 'media timeout' });
    const after = performance.now() - started;
    tt.ok(after >= 900 && after < 2500, `after about a second (${after.toFixed(0)} ms)`);
    tt.equal(await sipp.exit, 0, 'the far end got our BYE');
  });

  t.test('hold without music (sendonly, then c=0.0.0.0): the media timeout pauses, and runs again off hold', async (tt) => {
    const engine = await startEngine(tt, { mediaTimeoutSeconds: 1 });
    const ear = await Ear.open(tt);
    const sipp = await runSipp(tt, 'hold', { mediaPort: ear.port });
    const leg = engine.dial(requestTo(sipp, {}, 'held'));
    let endedAt = 0;
    const end = ended(leg, 10_000).then((e) => ((endedAt = performance.now()), e));
    await next(leg, 'answered');
    const answers = (): number => sipp.received().filter((m) => m.startsWith('SIP/2.0 200')).length;
    for (let i = 0; i < 800 && answers() < 3; i++) await sleep(10);
    const resumedAt = performance.now();
    tt.equal(answers(), 3, 'all three re-INVITEs answered');
    tt.equal(endedAt, 0, 'the call outlived 3.2 s of silence on hold (media timeout 1 s)');
    tt.same(await end, { by: 'engine', reason: 'media timeout' });
    const after = endedAt - resumedAt;
    tt.ok(after >= 700 && after < 2500, `off hold, silence ends the call after about a second (${after.toFixed(0)} ms)`);
    tt.equal(await sipp.exit, 0, 'SIPp got its 200s and our BYE', { errors: sipp.errors() });
  });
}
