/** SIP INFO key presses (both engines receive them in the dialog, whatever carries the media). */
import { DTMF_KEYS, type DtmfKey } from '../telephony/TelephonyEngine.js';

/**
 * The key of a SIP INFO body, or undefined when it names no single valid key
 * (or is over 256 characters). `application/dtmf-relay` (the de-facto Cisco
 * form `Signal=5\r\nDuration=160`) and `application/dtmf` (the key alone)
 * are read; a dtmf-relay `Signal` of 10–15 is the RFC 4733 §3.2 event code (`*`,
 * `#`, A–D), which some phones send instead of the character.
 */
export function dtmfKeyOfInfo(contentType: string, body: string): DtmfKey | undefined {
  if (body.length > 256) return undefined;
  const type = contentType.split(';')[0]!.trim().toLowerCase();
  if (type === 'application/dtmf') return keyOf(body.trim());
  if (type !== 'application/dtmf-relay') return undefined;
  const signal = /^\s*signal\s*=\s*(\S+)\s*$/im.exec(body)?.[1];
  if (signal !== undefined && /^1[0-5]$/.test(signal)) return DTMF_KEYS[Number(signal)];
  return signal === undefined ? undefined : keyOf(signal);
}

function keyOf(value: string): DtmfKey | undefined {
  const key = value.toUpperCase();
  return key.length === 1 && DTMF_KEYS.includes(key) ? key : undefined;
}
