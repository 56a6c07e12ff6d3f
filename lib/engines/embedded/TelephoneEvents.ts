/**
 * Key presses from RFC 4733 telephone-events carried in RTP (§2.3 payload:
 * event, E bit, volume, duration; 4 bytes each). One key press is one event
 * timestamp: the sender repeats its packets while the key is held and sends
 * the end packet three times for redundancy (§2.5.1.4), so each key is
 * reported once — when its first packet arrives, so a lost start or lost end
 * packets still give it — and every later packet of that timestamp, or of an
 * older one (reordered), is ignored. RFC 2198 redundancy blocks are not
 * decoded: we do not offer `red`, so a far end must not send it (RFC 3264).
 *
 * Everything received is hostile: a payload that is not a whole number of
 * 4-byte events, an event code outside 0–15 (the DTMF range, §3.2), or a
 * malformed redundancy header yields nothing. Memory is fixed: one remembered
 * timestamp per decoder.
 */
import { DTMF_KEYS, type DtmfKey } from '../../telephony/TelephonyEngine.js';
import { rtpTimestamp } from './Rtp.js';

/** RFC 4733 payload of one event. */
const EVENT_BYTES = 4;

export class TelephoneEventDecoder {
  /** RTP timestamp of the last event reported; events at or before it within half the timestamp space are old. */
  #lastTimestamp: number | undefined;

  /**
   * Decodes one RTP packet whose payload type the SDP gave telephone-event,
   * payload from `headerLength` on. Returns the key of an event not seen
   * before, or undefined (a repeat, an end packet of a reported key, a
   * non-DTMF event, garbage).
   */
  decode(packet: Buffer, headerLength: number): DtmfKey | undefined {
    const length = packet.length - headerLength;
    if (length < EVENT_BYTES || length % EVENT_BYTES !== 0) return undefined;
    // §2.3: a block may hold several events (a segmented tone); a key is the first.
    const code = packet[headerLength]!;
    if (code >= DTMF_KEYS.length) return undefined; // tones, flash, or garbage: not a key
    const timestamp = rtpTimestamp(packet);
    if (!this.#isNew(timestamp)) return undefined;
    this.#lastTimestamp = timestamp;
    return DTMF_KEYS[code];
  }

  /** Serial-number comparison (RFC 1982 style) so the 32-bit timestamp may wrap. */
  #isNew(timestamp: number): boolean {
    if (this.#lastTimestamp === undefined) return true;
    const ahead = (timestamp - this.#lastTimestamp) >>> 0;
    return ahead !== 0 && ahead < 0x80000000;
  }
}
