/** The SDP this engine offers and the little it needs from an answer (RFC 4566 / 3264 subset). */
import { isUsableRtpDestination } from '../sipChecks.js';
import { PAYLOAD_TYPE, type G711Codec } from './G711.js';

/** The telephone-event payload type we offer. */
export const OUR_TELEPHONE_EVENT_PT = 101;

export type SdpDirection = 'sendrecv' | 'sendonly' | 'recvonly' | 'inactive';

/** RFC 3264 §6.1: the direction that answers an offered one (hold: sendonly → recvonly). */
export const ANSWER_DIRECTION: Readonly<Record<SdpDirection, SdpDirection>> = {
  sendrecv: 'sendrecv',
  sendonly: 'recvonly',
  recvonly: 'sendonly',
  inactive: 'inactive',
};

export interface SdpOfferParams {
  readonly sessionId: number;
  readonly version: number;
  readonly address: string;
  readonly port: number;
  /** Codecs in preference order; an answer lists only the negotiated one. */
  readonly codecs: readonly G711Codec[];
  /** Payload type of telephone-event, or undefined to leave it out. */
  readonly telephoneEventPt: number | undefined;
  readonly direction: SdpDirection;
}

export function buildSdp(p: SdpOfferParams): string {
  const pts = p.codecs.map((c) => PAYLOAD_TYPE[c]);
  if (p.telephoneEventPt !== undefined) pts.push(p.telephoneEventPt);
  const lines = [
    'v=0',
    `o=- ${p.sessionId} ${p.version} IN IP4 ${p.address}`,
    's=cti',
    `c=IN IP4 ${p.address}`,
    't=0 0',
    `m=audio ${p.port} RTP/AVP ${pts.join(' ')}`,
    ...p.codecs.map((c) => `a=rtpmap:${PAYLOAD_TYPE[c]} ${c}/8000`),
  ];
  if (p.telephoneEventPt !== undefined) {
    lines.push(`a=rtpmap:${p.telephoneEventPt} telephone-event/8000`, `a=fmtp:${p.telephoneEventPt} 0-16`);
  }
  lines.push('a=ptime:20', `a=${p.direction}`);
  return lines.join('\r\n') + '\r\n';
}

/** What the media path needs from the far end's SDP. */
export interface RemoteMedia {
  readonly address: string;
  readonly port: number;
  /** The far end's first G.711 codec: what it answered, or prefers in an offer. */
  readonly codec: G711Codec;
  /** Every G.711 codec listed, in the far end's order. */
  readonly codecs: readonly G711Codec[];
  readonly telephoneEventPt: number | undefined;
  /** The far end's direction for the stream (media level wins over session level). */
  readonly direction: SdpDirection;
}

/**
 * Reads the first audio stream: its address (media-level c= wins), port, the
 * first G.711 format in the answerer's order, the telephone-event type and
 * the direction.
 * Returns an error string when nothing usable is there.
 */
export function parseSdp(sdp: string): RemoteMedia | string {
  let sessionAddress: string | undefined;
  let mediaAddress: string | undefined;
  let port: number | undefined;
  let formats: number[] = [];
  const rtpmap = new Map<number, string>();
  let sessionDirection: SdpDirection | undefined;
  let mediaDirection: SdpDirection | undefined;
  let inAudio = false;
  for (const raw of sdp.split(/\r?\n/)) {
    const line = raw.trim();
    if (line.startsWith('m=')) {
      if (port !== undefined) break; // only the first audio stream
      const m = /^m=audio (\d+)(?:\/\d+)? RTP\/S?AVPF? ([\d ]+)/.exec(line);
      inAudio = m !== null;
      if (m) {
        port = Number(m[1]);
        formats = m[2]!.trim().split(/\s+/).map(Number);
      }
    } else if (line.startsWith('c=')) {
      const address = /^c=IN IP[46] ([^\s/]+)/.exec(line)?.[1];
      if (port === undefined && !inAudio) sessionAddress = address;
      else if (inAudio) mediaAddress = address;
    } else if (/^a=(sendrecv|sendonly|recvonly|inactive)$/.test(line)) {
      const direction = line.slice(2) as SdpDirection;
      if (port === undefined && !inAudio) sessionDirection = direction;
      else if (inAudio) mediaDirection = direction;
    } else if (inAudio && line.startsWith('a=rtpmap:')) {
      const m = /^a=rtpmap:(\d+) ([^/\s]+)/.exec(line);
      if (m) rtpmap.set(Number(m[1]), m[2]!.toLowerCase());
    }
  }
  const address = mediaAddress ?? sessionAddress;
  if (port === undefined) return 'no audio stream';
  if (!address) return 'no connection address';
  const codecs = formats.map((pt) => g711Of(pt, rtpmap.get(pt))).filter((c): c is G711Codec => c !== undefined);
  if (codecs.length === 0) return 'no common codec (need PCMU or PCMA)';
  const te = formats.find((pt) => rtpmap.get(pt) === 'telephone-event');
  return { address, port, codec: codecs[0]!, codecs, telephoneEventPt: te, direction: mediaDirection ?? sessionDirection ?? 'sendrecv' };
}

/** Whether we can send media to what the far end's SDP names (see isUsableRtpDestination). */
export function isUsableMedia(media: RemoteMedia): boolean {
  return isUsableRtpDestination(media.address, media.port);
}

function g711Of(pt: number, encoding: string | undefined): G711Codec | undefined {
  if (pt === 0 || encoding === 'pcmu') return 'PCMU';
  if (pt === 8 || encoding === 'pcma') return 'PCMA';
  return undefined;
}
