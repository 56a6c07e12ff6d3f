// A test's own RTP endpoint ("the ear"): put its port in an SDP and it records
// exactly what the server sent, and can talk back so bridges/recordings can be checked.
import { createSocket, type Socket } from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { decodeAlaw, decodeUlaw, encodeAlaw, encodeUlaw } from '../audio/g711.js';
import { concatSamples, dominantFrequency, rms, toneSamples, type DominantOptions } from '../audio/signal.js';

export interface RtpPacket {
  /** Arrival time, epoch milliseconds with sub-ms precision (see RtpEar.now()). */
  at: number;
  from: { address: string; port: number };
  payloadType: number;
  marker: boolean;
  seq: number;
  timestamp: number;
  ssrc: number;
  payload: Buffer;
}

export interface AudioSegment {
  /** Arrival of the first sounding packet, epoch ms. */
  startMs: number;
  /** Arrival of the last sounding packet plus its duration, epoch ms. */
  endMs: number;
  durationMs: number;
  packets: RtpPacket[];
  /** Decoded audio of the segment's packets. */
  pcm: Int16Array;
}

export interface SegmentOptions {
  /** Packets with an RMS level below this count as silence (default 200 ≈ -44 dBFS). */
  silenceRms?: number;
  /** Drop segments shorter than this, e.g. comfort-noise blips (default 0). */
  minDurationMs?: number;
}

export interface TalkOptions {
  /** Tone frequency in Hz (default 1000). */
  freq?: number;
  /** Peak amplitude (default 8000). */
  amplitude?: number;
  /** 0 = PCMU, 8 = PCMA; default: the payload type of the first packet heard, else 0. */
  payloadType?: 0 | 8;
  /** Where to send; default: the source of the first packet heard (symmetric RTP). */
  to?: { address: string; port: number };
  /** Stop by itself after this long; default: until stopTalking()/close(). */
  durationMs?: number;
}

const PACKET_MS = 20;
const SAMPLES_PER_PACKET = 160;

/** Payload types whose audio this class can decode. */
function isG711(pt: number): boolean {
  return pt === 0 || pt === 8;
}

function decodePayload(p: RtpPacket): Int16Array {
  return p.payloadType === 8 ? decodeAlaw(p.payload) : decodeUlaw(p.payload);
}

export class RtpEar {
  readonly packets: RtpPacket[] = [];
  /** Packets that were sent by talk(). */
  sentPackets = 0;
  private talkTimer: NodeJS.Timeout | undefined;
  private waiters: Array<() => void> = [];
  private closed = false;

  private constructor(
    private readonly socket: Socket,
    readonly host: string,
    readonly port: number,
  ) {
    socket.on('message', (msg, rinfo) => this.onMessage(msg, rinfo.address, rinfo.port));
  }

  /** Epoch milliseconds on the same clock as RtpPacket.at. */
  static now(): number {
    return performance.timeOrigin + performance.now();
  }

  /** Opens a UDP socket on host (default 127.0.0.1) and an OS-chosen port unless given. */
  static async open(host = '127.0.0.1', port = 0): Promise<RtpEar> {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(port, host, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    return new RtpEar(socket, host, socket.address().port);
  }

  private onMessage(msg: Buffer, address: string, port: number): void {
    // RTP version 2 and a full 12-byte header; anything else (RTCP, junk) is ignored.
    if (msg.length < 12 || msg[0] === undefined || msg[0] >> 6 !== 2) return;
    const b0 = msg[0];
    const b1 = msg[1] ?? 0;
    const payloadType = b1 & 0x7f;
    if (payloadType >= 72 && payloadType <= 76) return; // RTCP on the RTP port
    const csrcCount = b0 & 0x0f;
    let offset = 12 + 4 * csrcCount;
    if (b0 & 0x10 && msg.length >= offset + 4) offset += 4 + 4 * msg.readUInt16BE(offset + 2);
    let end = msg.length;
    if (b0 & 0x20) end -= msg[msg.length - 1] ?? 0; // padding
    this.packets.push({
      at: RtpEar.now(),
      from: { address, port },
      payloadType,
      marker: (b1 & 0x80) !== 0,
      seq: msg.readUInt16BE(2),
      timestamp: msg.readUInt32BE(4),
      ssrc: msg.readUInt32BE(8),
      payload: Buffer.from(msg.subarray(offset, Math.max(offset, end))),
    });
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** Resolves once `count` packets in total have arrived; rejects after timeoutMs. */
  async waitForPackets(count = 1, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.packets.length < count) {
      const left = deadline - Date.now();
      if (left <= 0 || this.closed) {
        throw new Error(`RtpEar :${this.port}: ${this.packets.length}/${count} packets after ${timeoutMs} ms`);
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Packets that arrived in [t0, t1) (epoch ms). */
  packetsBetween(t0: number, t1: number): RtpPacket[] {
    return this.packets.filter((p) => p.at >= t0 && p.at < t1);
  }

  /** Media time received: G.711 payload bytes / 8 (one byte per sample at 8 kHz). */
  audioDurationMs(packets: readonly RtpPacket[] = this.packets): number {
    return packets.filter((p) => isG711(p.payloadType)).reduce((ms, p) => ms + p.payload.length / 8, 0);
  }

  /** Decoded audio of G.711 packets, in arrival order (other payload types skipped). */
  pcm(packets: readonly RtpPacket[] = this.packets): Int16Array {
    return concatSamples(...packets.filter((p) => isG711(p.payloadType)).map(decodePayload));
  }

  /** The strongest frequency in pcm (default: everything received), 0 for silence. */
  dominantFrequency(pcm: Int16Array = this.pcm(), opts: DominantOptions = {}): number {
    return dominantFrequency(pcm, opts);
  }

  /**
   * Splits what was heard into bursts of sound. A burst ends when no sounding
   * packet arrives for gapMs, whether the sender went quiet (missing packets)
   * or kept sending silence, so "the prompt played N times" is segments().length.
   */
  segments(gapMs = 300, opts: SegmentOptions = {}): AudioSegment[] {
    const threshold = opts.silenceRms ?? 200;
    const out: AudioSegment[] = [];
    let current: { start: number; end: number; packets: RtpPacket[] } | undefined;
    const flush = (): void => {
      if (!current) return;
      const durationMs = current.end - current.start;
      if (durationMs >= (opts.minDurationMs ?? 0)) {
        out.push({ startMs: current.start, endMs: current.end, durationMs, packets: current.packets, pcm: this.pcm(current.packets) });
      }
      current = undefined;
    };
    for (const p of this.packets) {
      if (!isG711(p.payloadType) || rms(decodePayload(p)) < threshold) continue;
      const end = p.at + p.payload.length / 8;
      if (current && p.at - current.end < gapMs) {
        current.end = end;
        current.packets.push(p);
      } else {
        flush();
        current = { start: p.at, end, packets: [p] };
      }
    }
    flush();
    return out;
  }

  /**
   * Sends a continuous tone as 20 ms G.711 packets, paced by the clock (not by
   * setInterval drift). Without `to`, waits for the first packet and answers its source.
   */
  async talk(opts: TalkOptions = {}): Promise<void> {
    this.stopTalking();
    let to = opts.to;
    if (!to) {
      await this.waitForPackets(1, 10_000);
      const first = this.packets[0];
      if (!first) throw new Error('RtpEar.talk: nothing heard to answer');
      to = first.from;
    }
    const target = to;
    const pt = opts.payloadType ?? (this.packets[0]?.payloadType === 8 ? 8 : 0);
    const freq = opts.freq ?? 1000;
    const ssrc = (Math.random() * 0xffffffff) >>> 0;
    let seq = Math.floor(Math.random() * 0xffff);
    let ts = (Math.random() * 0xffffffff) >>> 0;
    let sample = 0;
    let sent = 0;
    const started = RtpEar.now();
    const sendDue = (): void => {
      const elapsed = RtpEar.now() - started;
      if (opts.durationMs !== undefined && sent * PACKET_MS >= opts.durationMs) {
        this.stopTalking();
        return;
      }
      // Catch up if the event loop was late, but never burst more than 5 packets.
      const due = Math.min(Math.floor(elapsed / PACKET_MS) + 1, sent + 5);
      while (sent < due && !this.closed) {
        const pcm = toneSamples(freq, PACKET_MS, { amplitude: opts.amplitude ?? 8000, startSample: sample });
        const payload = pt === 8 ? encodeAlaw(pcm) : encodeUlaw(pcm);
        const header = Buffer.alloc(12);
        header[0] = 0x80;
        header[1] = (sent === 0 ? 0x80 : 0) | pt;
        header.writeUInt16BE(seq & 0xffff, 2);
        header.writeUInt32BE(ts >>> 0, 4);
        header.writeUInt32BE(ssrc, 8);
        this.socket.send(Buffer.concat([header, payload]), target.port, target.address);
        seq = (seq + 1) & 0xffff;
        ts = (ts + SAMPLES_PER_PACKET) >>> 0;
        sample += SAMPLES_PER_PACKET;
        sent++;
        this.sentPackets++;
      }
    };
    sendDue();
    this.talkTimer = setInterval(sendDue, 5);
  }

  /**
   * Presses `key` (0-9 * # A-D) as a phone does with RFC 4733 (§2.5): three
   * packets while held and the end packet three times, 20 ms apart, payload
   * type `payloadType` (the SDP's telephone-event), to where the first packet
   * heard came from. Resolves when the last packet is out.
   */
  async pressKey(key: string, payloadType = 101): Promise<void> {
    const event = '0123456789*#ABCD'.indexOf(key);
    if (event < 0 || key.length !== 1) throw new Error(`not a DTMF key: ${key}`);
    await this.waitForPackets(1, 10_000);
    const to = this.packets[0]!.from;
    this.#keySsrc ??= (Math.random() * 0xffffffff) >>> 0;
    const timestamp = (this.#keyTimestamp += 8000) >>> 0;
    for (const [i, duration] of [160, 320, 480, 640, 640, 640].entries()) {
      const p = Buffer.alloc(16);
      p[0] = 0x80;
      p[1] = (i === 0 ? 0x80 : 0) | payloadType;
      p.writeUInt16BE(this.#keySeq++ & 0xffff, 2);
      p.writeUInt32BE(timestamp, 4);
      p.writeUInt32BE(this.#keySsrc, 8);
      p[12] = event;
      p[13] = (i >= 3 ? 0x80 : 0) | 10;
      p.writeUInt16BE(duration, 14);
      this.socket.send(p, to.port, to.address);
      await new Promise((resolve) => setTimeout(resolve, PACKET_MS));
    }
  }

  #keySsrc: number | undefined;
  #keySeq = 0;
  #keyTimestamp = 0;

  stopTalking(): void {
    if (this.talkTimer) clearInterval(this.talkTimer);
    this.talkTimer = undefined;
  }

  /** Forgets what was heard so far (e.g. between phases of a test). */
  clear(): void {
    this.packets.length = 0;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopTalking();
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
    await new Promise<void>((resolve) => this.socket.close(() => resolve()));
  }
}
