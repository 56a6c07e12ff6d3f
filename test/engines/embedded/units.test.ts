// Unit tests of the embedded engine's pure parts: G.711, WAV, SDP, RTP header, pacer, media cache.
import { mkdtempSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { DECODE, ENCODE, TRANSCODE } from '../../../lib/engines/embedded/G711.js';
import { MediaCache } from '../../../lib/engines/embedded/MediaCache.js';
import { Pacer } from '../../../lib/engines/embedded/Pacer.js';
import { rtpHeaderLength, rtpPayloadType, rtpSequence, rtpSsrc, rtpTimestamp, writeRtpHeader } from '../../../lib/engines/embedded/Rtp.js';
import { RtpPortPool } from '../../../lib/engines/embedded/RtpPortPool.js';
import { ANSWER_DIRECTION, buildSdp, parseSdp, type RemoteMedia } from '../../../lib/engines/embedded/Sdp.js';
import { parseWav, pcmWavHeader, toG711 } from '../../../lib/engines/embedded/Wav.js';

t.test('G.711 round trips within the codec step', async (tt) => {
  for (const codec of ['PCMU', 'PCMA'] as const) {
    for (const s of [0, 1, -1, 100, -100, 1000, -1000, 8000, -8000, 32000, -32000]) {
      const back = DECODE[codec][ENCODE[codec][s & 0xffff]!]!;
      tt.ok(Math.abs(back - s) <= Math.max(16, Math.abs(s) / 16), `${codec} ${s} → ${back}`);
    }
  }
  tt.equal(ENCODE.PCMU[0], 0xff, 'µ-law silence');
  tt.equal(ENCODE.PCMA[0], 0xd5, 'A-law silence');
  tt.equal(TRANSCODE.PCMU.PCMA[0xff], 0xd5);
  tt.equal(TRANSCODE.PCMA.PCMU[ENCODE.PCMA[1000]!], ENCODE.PCMU[DECODE.PCMA[ENCODE.PCMA[1000]!]! & 0xffff]);
});

function wav(format: number, bits: number, data: Buffer, opts: { rate?: number; channels?: number; extra?: Buffer } = {}): Buffer {
  const fmt = Buffer.alloc(16);
  fmt.writeUInt16LE(format, 0);
  fmt.writeUInt16LE(opts.channels ?? 1, 2);
  fmt.writeUInt32LE(opts.rate ?? 8000, 4);
  fmt.writeUInt32LE(8000 * (bits / 8), 8);
  fmt.writeUInt16LE(bits / 8, 12);
  fmt.writeUInt16LE(bits, 14);
  const chunk = (id: string, body: Buffer): Buffer => {
    const h = Buffer.alloc(8);
    h.write(id, 0, 'latin1');
    h.writeUInt32LE(body.length, 4);
    return Buffer.concat([h, body, Buffer.alloc(body.length & 1)]);
  };
  const body = Buffer.concat([Buffer.from('WAVE'), chunk('fmt ', fmt), opts.extra ?? Buffer.alloc(0), chunk('data', data)]);
  const riff = Buffer.alloc(8);
  riff.write('RIFF', 0, 'latin1');
  riff.writeUInt32LE(body.length, 4);
  return Buffer.concat([riff, body]);
}

t.test('WAV: PCM, A-law and µ-law; other chunks skipped; bad files refused', async (tt) => {
  const pcm = Buffer.alloc(4);
  pcm.writeInt16LE(1000, 0);
  pcm.writeInt16LE(-1000, 2);
  const list = Buffer.concat([Buffer.from('LIST'), Buffer.from([3, 0, 0, 0]), Buffer.from('abc'), Buffer.alloc(1)]);
  const parsed = parseWav(wav(1, 16, pcm, { extra: list }));
  tt.equal(parsed.format, 'pcm16');
  tt.same([...toG711(parsed, 'PCMU')], [ENCODE.PCMU[1000], ENCODE.PCMU[-1000 & 0xffff]]);
  const alaw = parseWav(wav(6, 8, Buffer.from([0xd5, 0x55])));
  tt.equal(alaw.format, 'PCMA');
  tt.same([...toG711(alaw, 'PCMA')], [0xd5, 0x55], 'same codec: bytes as they are');
  tt.same([...toG711(alaw, 'PCMU')], [TRANSCODE.PCMA.PCMU[0xd5], TRANSCODE.PCMA.PCMU[0x55]]);
  tt.equal(parseWav(wav(7, 8, Buffer.from([1]))).format, 'PCMU');
  tt.throws(() => parseWav(Buffer.from('hello world!')), /not a RIFF/);
  tt.throws(() => parseWav(wav(1, 16, pcm, { rate: 16000 })), /mono 8000 Hz/);
  tt.throws(() => parseWav(wav(1, 16, pcm, { channels: 2 })), /mono 8000 Hz/);
  tt.throws(() => parseWav(wav(3, 32, pcm)), /unsupported WAV encoding/);
  const header = pcmWavHeader(320, 2);
  tt.equal(header.length, 44);
  tt.equal(header.readUInt32LE(4), 36 + 320);
  tt.equal(header.readUInt32LE(28), 32000, 'byte rate of 8 kHz 16-bit stereo');
});

t.test('SDP: our offer and what we read from answers', async (tt) => {
  const offer = buildSdp({ sessionId: 7, version: 1, address: '10.0.0.1', port: 4000, codecs: ['PCMU', 'PCMA'], telephoneEventPt: 101, direction: 'sendrecv' });
  tt.match(offer, /^m=audio 4000 RTP\/AVP 0 8 101\r$/m);
  tt.match(offer, /^a=rtpmap:101 telephone-event\/8000\r$/m);
  tt.match(offer, /^c=IN IP4 10\.0\.0\.1\r$/m);
  tt.same(parseSdp(offer), { address: '10.0.0.1', port: 4000, codec: 'PCMU', codecs: ['PCMU', 'PCMA'], telephoneEventPt: 101, direction: 'sendrecv' });
  const answer = 'v=0\r\nc=IN IP4 1.1.1.1\r\nm=audio 5000 RTP/AVP 8 96\r\nc=IN IP4 2.2.2.2\r\na=rtpmap:96 telephone-event/8000\r\nm=video 6000 RTP/AVP 31\r\n';
  tt.same(parseSdp(answer), { address: '2.2.2.2', port: 5000, codec: 'PCMA', codecs: ['PCMA'], telephoneEventPt: 96, direction: 'sendrecv' }, 'media-level c= wins');
  const held = 'v=0\r\nc=IN IP4 1.1.1.1\r\na=inactive\r\nm=audio 5000 RTP/AVP 0\r\na=sendonly\r\nm=video 6000 RTP/AVP 31\r\na=recvonly\r\n';
  tt.equal((parseSdp(held) as RemoteMedia).direction, 'sendonly', 'the audio stream\'s direction wins over the session\'s');
  tt.equal((parseSdp(held.replace('a=sendonly\r\n', '')) as RemoteMedia).direction, 'inactive', 'else the session\'s');
  tt.match(buildSdp({ sessionId: 7, version: 2, address: '10.0.0.1', port: 4000, codecs: ['PCMU'], telephoneEventPt: undefined, direction: ANSWER_DIRECTION.sendonly }), /^a=recvonly\r$/m, 'hold is answered recvonly');
  tt.equal(parseSdp('v=0\r\nc=IN IP4 1.1.1.1\r\nm=audio 5000 RTP/AVP 18\r\n'), 'no common codec (need PCMU or PCMA)');
  tt.equal(parseSdp('v=0\r\n'), 'no audio stream');
});

t.test('RTP header write and read', async (tt) => {
  const p = Buffer.alloc(172);
  writeRtpHeader(p, 0, 8, true, 65536 + 5, 2 ** 32 + 9, 0xdeadbeef);
  tt.equal(rtpHeaderLength(p, p.length), 12);
  tt.equal(rtpPayloadType(p), 8);
  tt.equal(rtpSequence(p), 5, 'sequence wraps');
  tt.equal(rtpTimestamp(p), 9, 'timestamp wraps');
  tt.equal(rtpSsrc(p), 0xdeadbeef);
  p[0] = 0x80 | 0x10 | 2; // 2 CSRCs and an extension of 1 word
  p.writeUInt16BE(1, 12 + 8 + 2);
  tt.equal(rtpHeaderLength(p, p.length), 12 + 8 + 4 + 4);
  tt.equal(rtpHeaderLength(Buffer.from([0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), 12), 0, 'not RTP version 2');
});

t.test('port pool: even ports, rotation, exhaustion', async (tt) => {
  const pool = new RtpPortPool(4001, 4005);
  tt.equal(pool.size, 2);
  tt.equal(pool.take(), 4002);
  tt.equal(pool.take(), 4004);
  tt.equal(pool.take(), undefined);
  pool.release(4002);
  tt.equal(pool.take(), 4002);
});

t.test('pacer: ticks on a fixed grid, catches up a little, skips the rest', async (tt) => {
  let now = 0;
  let ticks = 0;
  const pacer = new Pacer({ periodMs: 20, maxCatchUp: 5, now: () => now });
  const listener = (): void => void ticks++;
  pacer.add(listener);
  now = 19.9;
  pacer.runDue();
  tt.equal(ticks, 0, 'not due yet');
  now = 45;
  pacer.runDue();
  tt.equal(ticks, 2, 'due ticks run even when the timer was late');
  now = 45 + 1000;
  pacer.runDue();
  tt.equal(ticks, 7, 'a 1 s stall replays only 5 ticks');
  now = 1060;
  pacer.runDue();
  tt.equal(ticks, 8, 'the grid is kept after skipping: tick 53 at 1060 ms');
  pacer.remove(listener);
});

t.test('pacer on real timers: no drift over a second', async (tt) => {
  const pacer = new Pacer({ periodMs: 20, maxCatchUp: 5 });
  const times: number[] = [];
  const start = performance.now();
  await new Promise<void>((resolve) => {
    const listener = (): void => {
      times.push(performance.now() - start);
      if (times.length === 50) {
        pacer.remove(listener);
        resolve();
      }
    };
    pacer.add(listener);
  });
  const last = times.at(-1)!;
  tt.ok(last >= 1000 && last < 1030, `50th tick at ${last.toFixed(1)} ms`);
  tt.ok(times.every((at, i) => at >= (i + 1) * 20 - 0.5), 'no tick early');
});

t.test('media cache: a file named 4,710 times is loaded and rendered once; a changed file is read again; the bound holds', async (tt) => {
  const dir = mkdtempSync(join(tmpdir(), 'media-cache-'));
  const wav = (name: string, samples: number): string => {
    const path = join(dir, name);
    const data = Buffer.alloc(samples * 2, 1);
    writeFileSync(path, Buffer.concat([pcmWavHeader(data.length, 1), data]));
    return path;
  };
  const prompt = wav('prompt.wav', 8000); // 1 s: 16,000 bytes of samples
  const cache = new MediaCache(100_000);
  const files = await Promise.all(Array.from({ length: 4710 }, () => cache.load(prompt)));
  tt.ok(files.every((f) => f === files[0]), 'one shared MediaFile for every occurrence');
  tt.equal(cache.bytes, 32_000, 'held once (samples + room for the G.711 renderings)');
  tt.equal(files[0]!.g711('PCMU'), files[1]!.g711('PCMU'), 'each codec rendered once');

  wav('prompt.wav', 4000);
  utimesSync(prompt, new Date(), new Date(Date.now() + 5000));
  tt.not(await cache.load(prompt), files[0], 'a file replaced on disk is read again');

  for (let i = 0; i < 5; i++) await cache.load(wav(`other${i}.wav`, 8000));
  tt.ok(cache.bytes <= 100_000, `least recently used entries dropped beyond the bound (${cache.bytes} bytes held)`);
  await tt.rejects(cache.load(wav('huge.wav', 60_000)), /larger than 100000 bytes/, 'a file larger than the cache is refused');
  await tt.rejects(cache.load(join(dir, 'missing.wav')), /cannot play .*missing\.wav/);
});
