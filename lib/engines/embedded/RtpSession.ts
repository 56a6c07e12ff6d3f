/**
 * One leg's RTP endpoint: a UDP socket on an even port, the far end's address
 * (from SDP, then latched to where its RTP really comes from, under the rule
 * below), the negotiated codec, and our outgoing stream (one SSRC, continuous
 * sequence numbers and timestamps whether the audio comes from a player or
 * the bridge).
 *
 * Who may send us media: only the address and port we send to (the SDP's, or
 * the one latched). Latching (symmetric RTP through NAT) moves that address,
 * but only for a packet from the SDP's IP or the signalling peer's IP, and
 * only within `latchMs` after the far end's SDP was last applied (answer,
 * 18x, re-INVITE). Everything else is dropped before it is counted or
 * relayed: a stranger can neither take our stream nor keep a dead call alive.
 */
import dgram from 'node:dgram';
import { randomInt } from 'node:crypto';
import { PAYLOAD_TYPE, SILENCE, TRANSCODE, codecOfPayloadType, type G711Codec } from './G711.js';
import { RTP_HEADER_BYTES, SAMPLES_PER_FRAME, rtpHeaderLength, rtpPayloadType, rtpSsrc, rtpTimestamp, writeRtpHeader } from './Rtp.js';
import type { RtpPortPool } from './RtpPortPool.js';
import type { RemoteMedia } from './Sdp.js';
import { TelephoneEventDecoder } from './TelephoneEvents.js';
import type { DtmfKey } from '../../telephony/TelephonyEngine.js';

/** Receives every RTP packet of a session; `packet` may be rewritten and sent on, not kept. */
export type RtpSink = (packet: Buffer, headerLength: number, from: RtpSession) => void;

/**
 * Told the G.711 audio a session exchanges with its far end (a leg recording
 * listens); `packet` is only lent: decode from `offset` at once.
 */
export interface RtpTap {
  /** Audio the far end sent us (early media or voice), before any relay rewrites it. */
  received(codec: G711Codec, packet: Buffer, offset: number): void;
  /** Audio we sent the far end: a player's frame or the bridged party's relayed packet. */
  sent(codec: G711Codec, packet: Buffer, offset: number): void;
}

/** Told about the first failure while handling a received packet (later ones are only counted). */
export type RtpErrorHandler = (err: unknown) => void;

export interface RtpSessionOptions {
  /** IP the call's SIP goes to: its RTP may come from there (a media server beside the proxy). */
  readonly signallingAddress: string;
  /** How long after the far end's SDP a packet from an allowed IP may move where we send, ms (0: never). */
  readonly latchMs: number;
  readonly onError?: RtpErrorHandler;
}

export class RtpSession {
  readonly port: number;
  readonly #socket: dgram.Socket;
  readonly #pool: RtpPortPool;
  readonly #onError: RtpErrorHandler;
  readonly #signallingAddress: string;
  readonly #latchMs: number;
  #remoteAddress: string | undefined;
  #remotePort = 0;
  #latched = false;
  #latchedSsrc = -1;
  /** performance.now() until which latching is allowed. */
  #latchUntil = 0;
  /** Where the far end's SDP last put its media: a re-INVITE naming it again is no move. */
  #sdpAddress = '';
  #sdpPort = -1;
  /** The stream we were latched to before the far end moved: its late packets must not pull us back. */
  #stale: { address: string; port: number; ssrc: number } | undefined;
  /** False while the far end does not want our media (hold: its SDP says sendonly or inactive). */
  #sending = true;
  #remoteSends = true;
  #remoteHolds = false;
  #codec: G711Codec = 'PCMU';
  #telephoneEventPt: number | undefined;
  readonly #ssrc = randomInt(2 ** 32);
  #seq = randomInt(65536);
  #ts = randomInt(2 ** 32);
  /** Maps a relayed source's timestamps onto ours; re-anchored when the source changes. */
  #relaySsrc = -1;
  #relayOffset = 0;
  #closed = false;
  /** Counts received packets; the media watchdog compares it over time. */
  packetsReceived = 0;
  /** Received packets whose handling threw (a bug): counted, logged once. */
  packetErrors = 0;
  /** The bridge, when there is one. */
  sink: RtpSink | undefined;
  /** While a player sends, relayed audio is dropped: a prompt overrides the bridge. */
  playing = false;
  /** The leg's recording, when there is one. */
  tap: RtpTap | undefined;
  /** Told each new key press of the far end's RFC 4733 telephone-events (the events are still relayed). */
  onKey: ((key: DtmfKey) => void) | undefined;
  readonly #keys = new TelephoneEventDecoder();

  private constructor(socket: dgram.Socket, port: number, pool: RtpPortPool, options: RtpSessionOptions) {
    this.#socket = socket;
    this.port = port;
    this.#pool = pool;
    this.#onError = options.onError ?? (() => {});
    this.#signallingAddress = options.signallingAddress;
    this.#latchMs = options.latchMs;
    socket.on('message', this.#onMessage);
    socket.on('error', () => {}); // send errors (e.g. unreachable) must not crash the engine; media just stops
  }

  /**
   * Binds a socket on an even port of `pool`, skipping ports other programs
   * hold: `reservedPort` (already taken from it, see PortReservation) first,
   * else the pool's next free ones.
   * @throws Error `no free RTP port` when none can be bound.
   */
  static async open(pool: RtpPortPool, host: string, options: RtpSessionOptions, reservedPort?: number): Promise<RtpSession> {
    for (let attempt = 0; attempt < pool.size; attempt++) {
      const port = attempt === 0 && reservedPort !== undefined ? reservedPort : pool.take();
      if (port === undefined) break;
      const socket = dgram.createSocket('udp4');
      const bound = await new Promise<boolean>((resolve) => {
        socket.once('error', () => resolve(false));
        socket.bind(port, host, () => resolve(true));
      });
      if (bound) return new RtpSession(socket, port, pool, options);
      socket.close();
      pool.release(port);
    }
    throw new Error('no free RTP port');
  }

  get codec(): G711Codec {
    return this.#codec;
  }

  get closed(): boolean {
    return this.#closed;
  }

  get telephoneEventPt(): number | undefined {
    return this.#telephoneEventPt;
  }

  /** True unless the far end said it sends nothing (recvonly, inactive): silence is then no timeout. */
  get remoteSends(): boolean {
    return this.#remoteSends;
  }

  /**
   * The far end holds the call (RFC 6337 §5.3: sendonly or inactive; RFC 2543:
   * c=0.0.0.0). A holder may send music or nothing at all, so its silence is
   * no media timeout either.
   */
  get remoteHolds(): boolean {
    return this.#remoteHolds;
  }

  /**
   * Applies the far end's SDP. When it names a new address or port (a move,
   * e.g. a re-INVITE), we send there and latching starts over; the same
   * address again keeps the latch (a NATed phone's re-INVITE must not undo
   * it). Port 0 (a rejected stream), an out-of-range port or 0.0.0.0 (old-style
   * hold) is no destination: `send` would throw or loop back; we wait for the
   * far end's RTP instead. Every SDP opens the latch window again.
   */
  setRemote(media: RemoteMedia): void {
    this.#latchUntil = performance.now() + this.#latchMs;
    if (media.address !== this.#sdpAddress || media.port !== this.#sdpPort) {
      const usable = Number.isInteger(media.port) && media.port > 0 && media.port <= 65535 && media.address !== '0.0.0.0';
      this.#stale = this.#latched ? { address: this.#remoteAddress ?? '', port: this.#remotePort, ssrc: this.#latchedSsrc } : undefined;
      this.#sdpAddress = media.address;
      this.#sdpPort = media.port;
      this.#remoteAddress = usable ? media.address : undefined;
      this.#remotePort = media.port;
      this.#latched = false;
    }
    this.#sending = media.direction === 'sendrecv' || media.direction === 'recvonly';
    this.#remoteSends = media.direction === 'sendrecv' || media.direction === 'sendonly';
    this.#remoteHolds = media.direction === 'sendonly' || media.direction === 'inactive' || media.address === '0.0.0.0';
    this.#codec = media.codec;
    this.#telephoneEventPt = media.telephoneEventPt;
  }

  /** Sends 20 ms of our codec from `audio` at `offset`, padding a short tail with silence. */
  sendFrame(audio: Buffer, offset: number): void {
    if (this.#remoteAddress === undefined || this.#closed || !this.#sending) return;
    const packet = Buffer.allocUnsafe(RTP_HEADER_BYTES + SAMPLES_PER_FRAME);
    const copied = audio.copy(packet, RTP_HEADER_BYTES, offset, offset + SAMPLES_PER_FRAME);
    if (copied < SAMPLES_PER_FRAME) packet.fill(SILENCE[this.#codec], RTP_HEADER_BYTES + copied);
    this.#ts = (this.#ts + SAMPLES_PER_FRAME) >>> 0;
    const marker = this.#relaySsrc !== -1; // first packet after relayed audio starts a new talkspurt
    this.#relaySsrc = -1;
    writeRtpHeader(packet, 0, PAYLOAD_TYPE[this.#codec], marker, this.#seq++, this.#ts, this.#ssrc);
    this.#socket.send(packet, this.#remotePort, this.#remoteAddress);
    this.tap?.sent(this.#codec, packet, RTP_HEADER_BYTES);
  }

  /**
   * Sends a packet received on another session as ours, rewritten in place:
   * our SSRC, sequence and a timestamp offset kept per source, G.711 payload
   * transcoded to our codec, telephone-event mapped to our payload type.
   */
  relay(packet: Buffer, headerLength: number, sourceEventPt: number | undefined): void {
    if (this.#remoteAddress === undefined || this.#closed || this.playing || !this.#sending) return;
    const pt = packet[1]! & 0x7f;
    let outPt: number;
    const codec = codecOfPayloadType(pt);
    if (codec !== undefined) {
      outPt = PAYLOAD_TYPE[this.#codec];
      if (codec !== this.#codec) {
        const table = TRANSCODE[codec][this.#codec];
        for (let i = headerLength; i < packet.length; i++) packet[i] = table[packet[i]!]!;
      }
    } else if (pt === sourceEventPt && this.#telephoneEventPt !== undefined) {
      outPt = this.#telephoneEventPt;
    } else {
      return; // comfort noise and anything unnegotiated
    }
    const ssrc = rtpSsrc(packet);
    const ts = rtpTimestamp(packet);
    const newSource = ssrc !== this.#relaySsrc;
    if (newSource) {
      this.#relaySsrc = ssrc;
      this.#relayOffset = (this.#ts + SAMPLES_PER_FRAME - ts) >>> 0;
    }
    this.#ts = (ts + this.#relayOffset) >>> 0;
    const start = headerLength - RTP_HEADER_BYTES; // drop CSRCs/extension by writing our header just before the payload
    const marker = newSource || (packet[1]! & 0x80) !== 0;
    writeRtpHeader(packet, start, outPt, marker, this.#seq++, this.#ts, this.#ssrc);
    this.#socket.send(packet, start, packet.length - start, this.#remotePort, this.#remoteAddress);
    if (codec !== undefined) this.tap?.sent(this.#codec, packet, headerLength);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.sink = undefined;
    this.tap = undefined;
    this.#socket.close();
    this.#pool.release(this.port);
  }

  /**
   * Whether a packet from `rinfo` is the far end's. From where we send: yes.
   * From elsewhere: only within the latch window and from the SDP's or the
   * signalling peer's IP; then we send there from now on (symmetric RTP). A
   * packet of the stream we were latched to before the far end's SDP moved
   * is refused (it used to pull our RTP back), and the stream we are latched
   * to does not move by a stray packet of its own from elsewhere.
   */
  #admit(packet: Buffer, rinfo: dgram.RemoteInfo): boolean {
    if (rinfo.port === this.#remotePort && rinfo.address === this.#remoteAddress) {
      if (!this.#latched) this.#latchTo(rtpSsrc(packet), rinfo); // remembered: its late packets must not follow a move
      return true;
    }
    if (performance.now() > this.#latchUntil) return false;
    if (rinfo.address !== this.#sdpAddress && rinfo.address !== this.#signallingAddress) return false;
    const ssrc = rtpSsrc(packet);
    const stale = this.#stale;
    if (stale && ssrc === stale.ssrc && rinfo.port === stale.port && rinfo.address === stale.address) return false;
    if (this.#latched && ssrc === this.#latchedSsrc) return true;
    this.#latchTo(ssrc, rinfo);
    return true;
  }

  #latchTo(ssrc: number, rinfo: dgram.RemoteInfo): void {
    this.#latched = true;
    this.#latchedSsrc = ssrc;
    this.#remoteAddress = rinfo.address;
    this.#remotePort = rinfo.port;
  }

  readonly #onMessage = (packet: Buffer, rinfo: dgram.RemoteInfo): void => {
    const headerLength = rtpHeaderLength(packet, packet.length);
    if (headerLength === 0 || !this.#admit(packet, rinfo)) return; // RTCP, junk, or not the far end
    this.packetsReceived++;
    try {
      if (this.onKey && rtpPayloadType(packet) === this.#telephoneEventPt) {
        const key = this.#keys.decode(packet, headerLength);
        if (key !== undefined) this.onKey(key);
      }
      if (this.tap) {
        const codec = codecOfPayloadType(rtpPayloadType(packet));
        if (codec !== undefined) this.tap.received(codec, packet, headerLength);
      }
      this.sink?.(packet, headerLength, this);
    } catch (err) {
      // A throw here would leave the socket's event handler: the process would end.
      if (this.packetErrors++ === 0) this.#onError(err);
    }
  };
}
