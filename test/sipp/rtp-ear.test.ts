// RtpEar: receiving, decoding, talking back and counting bursts.
import { createSocket, type Socket } from 'node:dgram';
import t from 'tap';
import { encodeAlaw, encodeUlaw } from '../support/audio/g711.js';
import { silence, toneSamples } from '../support/audio/signal.js';
import { RtpEar } from '../support/sipp/RtpEar.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A plain UDP peer standing in for the server's media side. */
async function peer(tt: { teardown(fn: () => unknown): void }): Promise<Socket> {
  const s = createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', () => resolve()));
  tt.teardown(() => new Promise<void>((resolve) => s.close(() => resolve())));
  return s;
}

function rtp(pt: number, seq: number, ts: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(12);
  h[0] = 0x80;
  h[1] = pt;
  h.writeUInt16BE(seq, 2);
  h.writeUInt32BE(ts, 4);
  h.writeUInt32BE(0x1234, 8);
  return Buffer.concat([h, payload]);
}

/** Sends pcm as 20 ms packets in real time. */
async function stream(s: Socket, port: number, pcm: Int16Array, pt: 0 | 8 = 0): Promise<void> {
  for (let i = 0, seq = 0; i < pcm.length; i += 160, seq++) {
    const chunk = pcm.subarray(i, i + 160);
    s.send(rtp(pt, seq, i, pt === 8 ? encodeAlaw(chunk) : encodeUlaw(chunk)), port, '127.0.0.1');
    await sleep(20);
  }
}

t.test('records packets with header fields and decodes PCMU and PCMA', async (tt) => {
  const ear = await RtpEar.open();
  tt.teardown(() => ear.close());
  tt.ok(ear.port > 0, 'OS chose a port');
  const s = await peer(tt);
  const t0 = RtpEar.now();
  await stream(s, ear.port, toneSamples(800, 200), 0);
  await stream(s, ear.port, toneSamples(1500, 200), 8);
  await ear.waitForPackets(20, 2000);
  tt.equal(ear.packets.length, 20);
  const first = ear.packets[0];
  tt.equal(first?.payloadType, 0);
  tt.equal(first?.seq, 0);
  tt.equal(first?.ssrc, 0x1234);
  tt.equal(first?.payload.length, 160);
  tt.equal(first?.from.port, s.address().port, 'source recorded for symmetric RTP');
  tt.equal(ear.audioDurationMs(), 400);
  const pcmu = ear.packets.filter((p) => p.payloadType === 0);
  const pcma = ear.packets.filter((p) => p.payloadType === 8);
  tt.equal(ear.dominantFrequency(ear.pcm(pcmu)), 800);
  tt.equal(ear.dominantFrequency(ear.pcm(pcma)), 1500);
  tt.equal(ear.packetsBetween(t0, RtpEar.now()).length, 20);
  tt.equal(ear.packetsBetween(0, t0).length, 0);
  // Non-RTP junk and RTCP are ignored.
  s.send(Buffer.from('hello'), ear.port, '127.0.0.1');
  s.send(rtp(200 - 128, 1, 1, Buffer.alloc(20)), ear.port, '127.0.0.1');
  await sleep(50);
  tt.equal(ear.packets.length, 20);
});

t.test('waitForPackets rejects when nothing comes', async (tt) => {
  const ear = await RtpEar.open();
  tt.teardown(() => ear.close());
  await tt.rejects(ear.waitForPackets(1, 150), /0\/1 packets/);
});

t.test('talk(): a tone sent back to the first packet’s source, at 50 packets/s', async (tt) => {
  const ear = await RtpEar.open();
  const listener = await RtpEar.open(); // a second ear hears what the first one says
  tt.teardown(async () => {
    await ear.close();
    await listener.close();
  });
  // The listener speaks first, so the ear's symmetric RTP answers the listener's port.
  await listener.talk({ to: { address: '127.0.0.1', port: ear.port }, freq: 100, durationMs: 20 });
  await ear.waitForPackets(1, 1000);
  await ear.talk({ freq: 1000 });
  await sleep(1000);
  ear.stopTalking();
  const heard = listener.packets.length;
  tt.ok(heard >= 45 && heard <= 55, `${heard} packets in 1 s`);
  tt.equal(listener.packets[0]?.payloadType, 0);
  tt.equal(listener.packets[0]?.marker, true, 'marker on the first packet');
  const seqs = listener.packets.map((p) => p.seq);
  tt.ok(seqs.every((q, i) => i === 0 || q === ((seqs[i - 1] ?? 0) + 1) % 65536), 'consecutive sequence numbers');
  const ts = listener.packets.map((p) => p.timestamp);
  tt.ok(ts.every((x, i) => i === 0 || x === ((ts[i - 1] ?? 0) + 160) >>> 0), 'timestamps step by 160');
  tt.equal(listener.dominantFrequency(), 1000);
  await sleep(100);
  const after = listener.packets.length;
  await sleep(100);
  tt.equal(listener.packets.length, after, 'stopTalking() stops');
});

t.test('talk() answers in PCMA when it heard PCMA', async (tt) => {
  const ear = await RtpEar.open();
  const listener = await RtpEar.open();
  tt.teardown(async () => {
    await ear.close();
    await listener.close();
  });
  await listener.talk({ to: { address: '127.0.0.1', port: ear.port }, payloadType: 8, freq: 300, durationMs: 20 });
  await ear.talk({ freq: 2000, durationMs: 200 });
  await listener.waitForPackets(8, 2000);
  await sleep(150);
  tt.ok(listener.packets.every((p) => p.payloadType === 8));
  tt.ok(listener.packets.length >= 9 && listener.packets.length <= 11, `${listener.packets.length} packets for 200 ms`);
  tt.equal(listener.dominantFrequency(), 2000);
});

t.test('segments(): a prompt with trailing silence, played three times, counts 3', async (tt) => {
  const ear = await RtpEar.open();
  tt.teardown(() => ear.close());
  const s = await peer(tt);
  // Continuous stream: the silence is sent as packets, as a server playing a WAV would.
  const prompt = [toneSamples(600, 300), silence(400)];
  for (let i = 0; i < 3; i++) for (const part of prompt) await stream(s, ear.port, part);
  await sleep(50);
  const segs = ear.segments(250);
  tt.equal(segs.length, 3, 'three bursts');
  for (const seg of segs) {
    tt.ok(seg.durationMs >= 260 && seg.durationMs <= 360, `burst of ${seg.durationMs.toFixed(0)} ms`);
    tt.equal(ear.dominantFrequency(seg.pcm), 600);
  }
  const gap = (segs[1]?.startMs ?? 0) - (segs[0]?.endMs ?? 0);
  tt.ok(gap >= 330 && gap <= 480, `gap ${gap.toFixed(0)} ms`);
  tt.equal(ear.segments(1000).length, 1, 'a gap threshold above the silence merges them');
});

t.test('segments(): bursts separated by missing packets, and minDurationMs', async (tt) => {
  const ear = await RtpEar.open();
  tt.teardown(() => ear.close());
  const s = await peer(tt);
  await stream(s, ear.port, toneSamples(900, 200));
  await sleep(300); // sender silent: no packets at all
  await stream(s, ear.port, toneSamples(900, 40));
  await sleep(300);
  await stream(s, ear.port, toneSamples(900, 200));
  await sleep(50);
  tt.equal(ear.segments(200).length, 3);
  tt.equal(ear.segments(200, { minDurationMs: 100 }).length, 2, 'short blip dropped');
  ear.clear();
  tt.equal(ear.segments(200).length, 0, 'clear() forgets');
});
