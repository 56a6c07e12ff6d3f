/**
 * G.711 µ-law / A-law codecs as lookup tables, built once: encoding is one
 * array read per sample and µ↔A transcoding one read per byte, so the media
 * path never computes segments per packet.
 */
export type G711Codec = 'PCMU' | 'PCMA';

/** Static RTP payload types (RFC 3551). */
export const PAYLOAD_TYPE: Record<G711Codec, number> = { PCMU: 0, PCMA: 8 };
/** The byte that decodes to (near) zero, used to pad and to fill gaps. */
export const SILENCE: Record<G711Codec, number> = { PCMU: 0xff, PCMA: 0xd5 };

function ulawToLinear(u: number): number {
  const v = ~u & 0xff;
  const t = (((v & 0x0f) << 3) + 0x84) << ((v & 0x70) >> 4);
  return v & 0x80 ? 0x84 - t : t - 0x84;
}

function alawToLinear(a: number): number {
  const v = a ^ 0x55;
  const seg = (v & 0x70) >> 4;
  let t = (v & 0x0f) << 4;
  t += seg === 0 ? 8 : 0x108;
  if (seg > 1) t <<= seg - 1;
  return v & 0x80 ? t : -t;
}

function linearToUlaw(sample: number): number {
  let s = sample;
  const sign = s < 0 ? 0x80 : 0;
  if (sign) s = -s;
  if (s > 32635) s = 32635;
  s += 0x84;
  let exponent = 7;
  for (let mask = 0x4000; (s & mask) === 0 && exponent > 0; mask >>= 1) exponent--;
  const mantissa = (s >> (exponent + 3)) & 0x0f;
  return ~(sign | (exponent << 4) | mantissa) & 0xff;
}

const ALAW_SEGMENT_END = [0x1f, 0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff];

function linearToAlaw(sample: number): number {
  let pcm = sample >> 3;
  let mask = 0xd5;
  if (pcm < 0) {
    mask = 0x55;
    pcm = -pcm - 1;
  }
  let seg = 0;
  while (seg < 8 && pcm > ALAW_SEGMENT_END[seg]!) seg++;
  if (seg >= 8) return 0x7f ^ mask;
  const aval = (seg << 4) | ((seg < 2 ? pcm >> 1 : pcm >> seg) & 0x0f);
  return aval ^ mask;
}

function decodeTable(decode: (b: number) => number): Int16Array {
  const table = new Int16Array(256);
  for (let b = 0; b < 256; b++) table[b] = decode(b);
  return table;
}

/** Indexed by the 16-bit sample as unsigned (sample & 0xffff). */
function encodeTable(encode: (s: number) => number): Uint8Array {
  const table = new Uint8Array(65536);
  for (let i = 0; i < 65536; i++) table[i] = encode((i << 16) >> 16);
  return table;
}

export const DECODE: Record<G711Codec, Int16Array> = {
  PCMU: decodeTable(ulawToLinear),
  PCMA: decodeTable(alawToLinear),
};
export const ENCODE: Record<G711Codec, Uint8Array> = {
  PCMU: encodeTable(linearToUlaw),
  PCMA: encodeTable(linearToAlaw),
};

function transcodeTable(from: G711Codec, to: G711Codec): Uint8Array {
  const table = new Uint8Array(256);
  for (let b = 0; b < 256; b++) table[b] = ENCODE[to][DECODE[from][b]! & 0xffff]!;
  return table;
}

/** TRANSCODE[from][to][byte]: µ-law ↔ A-law without going through a buffer. */
export const TRANSCODE: Record<G711Codec, Record<G711Codec, Uint8Array>> = {
  PCMU: { PCMU: transcodeTable('PCMU', 'PCMU'), PCMA: transcodeTable('PCMU', 'PCMA') },
  PCMA: { PCMU: transcodeTable('PCMA', 'PCMU'), PCMA: transcodeTable('PCMA', 'PCMA') },
};

export function codecOfPayloadType(pt: number): G711Codec | undefined {
  return pt === 0 ? 'PCMU' : pt === 8 ? 'PCMA' : undefined;
}
