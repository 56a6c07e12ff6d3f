/**
 * One phone's media port in the phone farm: sends a 20 ms PCMU stream and
 * counts what arrives from its peer. Each payload carries a magic number, the
 * sender's leg index and a per-leg counter, so loss is measured end to end
 * (phone → relay → phone) whatever the relay does to RTP headers.
 */
import type dgram from 'node:dgram';

export const MAGIC = 0x7e57beef;
/** Counters tracked per leg: 327 s of 20 ms packets. */
export const MAX_COUNTER = 1 << 14;
const HEADER = 12;
const PAYLOAD = 160;

export interface Address {
  readonly address: string;
  readonly port: number;
}

export class FarmLeg {
  readonly index: number;
  readonly peerIndex: number;
  readonly socket: dgram.Socket;
  /** Where we send; in symmetric mode the source of the first packet received. */
  target: Address | undefined;
  /** Counter of the next packet we send. */
  sent = 0;
  /** Packets from the peer (marked), distinct counters. */
  markedReceived = 0;
  /** Everything received, marked or not (e.g. ringback before the bridge). */
  packetsReceived = 0;
  readonly #seen = new Uint8Array(MAX_COUNTER);
  /** Template: each send copies it, since dgram sends on a later tick and may still hold the last buffer. */
  readonly #packet = Buffer.alloc(HEADER + PAYLOAD, 0xff);
  readonly #symmetric: boolean;

  constructor(index: number, peerIndex: number, socket: dgram.Socket, symmetric: boolean) {
    this.index = index;
    this.peerIndex = peerIndex;
    this.socket = socket;
    this.#symmetric = symmetric;
    const p = this.#packet;
    p[0] = 0x80;
    p[1] = 0; // PCMU
    p.writeUInt32BE(index + 1, 8); // SSRC
    p.writeUInt32BE(MAGIC, HEADER);
    p.writeUInt32BE(index, HEADER + 4);
    socket.on('message', this.#onMessage);
    socket.on('error', () => {}); // ICMP unreachable etc. must not end the farm
  }

  send(): void {
    if (!this.target || this.sent >= MAX_COUNTER) return;
    const p = Buffer.allocUnsafe(HEADER + PAYLOAD);
    this.#packet.copy(p);
    const n = this.sent++;
    p[1] = n === 0 ? 0x80 : 0; // marker on the first packet
    p.writeUInt16BE(n & 0xffff, 2);
    p.writeUInt32BE((n * PAYLOAD) >>> 0, 4);
    p.writeUInt32BE(n, HEADER + 8);
    this.socket.send(p, this.target.port, this.target.address);
  }

  /** Distinct marked packets received from the peer whose counter is in [from, to). */
  receivedBetween(from: number, to: number): number {
    let n = 0;
    for (let c = from; c < to && c < MAX_COUNTER; c++) n += this.#seen[c]!;
    return n;
  }

  close(): void {
    try {
      this.socket.close();
    } catch {
      // already closed
    }
  }

  readonly #onMessage = (msg: Buffer, rinfo: dgram.RemoteInfo): void => {
    this.packetsReceived++;
    if (!this.target && this.#symmetric) this.target = { address: rinfo.address, port: rinfo.port };
    if (msg.length < HEADER + 12) return;
    const at = msg.length - PAYLOAD; // header length may differ from ours (CSRCs, extension)
    if (at < HEADER || msg.readUInt32BE(at) !== MAGIC || msg.readUInt32BE(at + 4) !== this.peerIndex) return;
    const c = msg.readUInt32BE(at + 8);
    if (c < MAX_COUNTER && this.#seen[c] === 0) {
      this.#seen[c] = 1;
      this.markedReceived++;
    }
  };
}
