/** RTP (RFC 3550) header access in place: the media path reads and rewrites packets without copying. */
export const RTP_HEADER_BYTES = 12;
/** 20 ms of 8 kHz G.711: the packet size we send and the pacing period. */
export const SAMPLES_PER_FRAME = 160;
export const FRAME_MS = 20;

/** Header length including CSRCs and extension, or 0 when `buf` is not plausible RTP. */
export function rtpHeaderLength(buf: Buffer, length: number): number {
  if (length < RTP_HEADER_BYTES || (buf[0]! & 0xc0) !== 0x80) return 0;
  let n = RTP_HEADER_BYTES + (buf[0]! & 0x0f) * 4;
  if (buf[0]! & 0x10) {
    if (length < n + 4) return 0;
    n += 4 + buf.readUInt16BE(n + 2) * 4;
  }
  return n <= length ? n : 0;
}

export function rtpPayloadType(buf: Buffer): number {
  return buf[1]! & 0x7f;
}

export function rtpSequence(buf: Buffer): number {
  return buf.readUInt16BE(2);
}

export function rtpTimestamp(buf: Buffer): number {
  return buf.readUInt32BE(4);
}

export function rtpSsrc(buf: Buffer): number {
  return buf.readUInt32BE(8);
}

/** Writes a 12-byte header (no CSRC, no extension) at `offset` of `buf`. */
export function writeRtpHeader(buf: Buffer, offset: number, pt: number, marker: boolean, seq: number, ts: number, ssrc: number): void {
  buf[offset] = 0x80;
  buf[offset + 1] = (marker ? 0x80 : 0) | (pt & 0x7f);
  buf.writeUInt16BE(seq & 0xffff, offset + 2);
  buf.writeUInt32BE(ts >>> 0, offset + 4);
  buf.writeUInt32BE(ssrc >>> 0, offset + 8);
}
