/** SIP INFO key presses (both engines receive them in the dialog, whatever carries the media). */
import { DTMF_KEYS, type DtmfKey } from '../telephony/TelephonyEngine.js';

/**
 * The key of a SIP INFO body, or undefined when it names no single valid key
 * (or is over 256 characters). `application/dtmf-relay` (the de-facto Cisco
 * form `Signal=5\r\nDuration=160`) and `application/dtmf` (the key alone)
 * are read; a numeric 10–15 is the RFC 4733 §3.2 event code (`*`, `#`, A–D),
 * which some phones send instead of the character.
 */
export function dtmfKeyOfInfo(contentType: string, body: string): DtmfKey | undefined {
  if (body.length > 256) return undefined;
  const type = contentType.split(';')[0]!.trim().toLowerCase();
  let value: string | undefined;
  if (type === 'application/dtmf-relay') {
    value = /^\s*signal\s*=\s*(\S+)\s*$/im.exec(body)?.[1];
  } else if (type === 'application/dtmf') {
    value = body.trim();
  }
  if (value === undefined) return undefined;
  const key = value.toUpperCase();
  if (key.length === 1 && DTMF_KEYS.includes(key)) return key;
  if (/^1[0-5]$/.test(key)) return DTMF_KEYS[Number(key)];
  return undefined;
}
