/**
 * Checks both engines make before SIP leaves this process and when an answer
 * comes back (issue 7). The service validates client URIs first; these are
 * the defence in depth at the last layer that writes SIP.
 */
import { isIPv4 } from 'node:net';
import sip from 'sip';

/** The one error message for an answer we cannot send media to (the wording; details go to the log). */
export const NO_USABLE_MEDIA = 'no usable media in the answer';

/** The one error message for a far end that stopped refreshing the session (RFC 4028 §10; docs/errors.md). */
export const SESSION_EXPIRED = 'session timer expired: the far end did not refresh the session (RFC 4028)';

/** Printable ASCII without spaces: what a SIP URI may hold once escaped (RFC 3261 §25.1). */
const URI_CHARS = /^[\x21-\x7e]+$/;

/**
 * Why `uri` must not be dialled, or undefined when it may: a control, space
 * or non-ASCII character (it could split a header line), a scheme other than
 * `sip:` (no TLS, so no `sips:`), or anything that is not a SIP URI.
 * `what` names the URI in the message, e.g. `request URI`.
 */
export function dialUriProblem(uri: string, what: string): string | undefined {
  if (!URI_CHARS.test(uri)) return `invalid ${what}: control, space or non-ASCII character`;
  const parsed = sip.parseUri(uri);
  if (!parsed) return `invalid ${what}`;
  if (parsed.schema !== 'sip') return `unsupported ${what} scheme "${parsed.schema ?? ''}:" (only sip:; this engine has no TLS)`;
  return undefined;
}

/**
 * Whether RTP can be sent to `address`:`port` as an SDP names them: an IPv4
 * unicast address (both engines' media is IPv4 only) other than 0.0.0.0
 * (RFC 3264 §8.4 hold) and a port 1–65535 (port 0 rejects the stream,
 * RFC 3264 §6).
 */
export function isUsableRtpDestination(address: string, port: number): boolean {
  return isIPv4(address) && address !== '0.0.0.0' && Number.isInteger(port) && port > 0 && port <= 65535;
}

/**
 * Whether an SDP answer names media we can send to: its first audio stream's
 * port and connection address (media level over session level), whatever
 * the codecs (the media server negotiates those). False without SDP.
 */
export function answerHasUsableAudio(sdp: string | undefined): boolean {
  if (!sdp) return false;
  let sessionAddress: string | undefined;
  let mediaAddress: string | undefined;
  let port: number | undefined;
  for (const raw of sdp.split(/\r?\n/)) {
    const line = raw.trim();
    if (line.startsWith('m=')) {
      if (port !== undefined) break; // only the first audio stream
      const m = /^m=audio (\d+)/.exec(line);
      if (m) port = Number(m[1]);
    } else if (line.startsWith('c=')) {
      const address = /^c=IN IP4 ([^\s/]+)/.exec(line)?.[1] ?? '';
      if (port === undefined) sessionAddress = address;
      else mediaAddress = address;
    }
  }
  return port !== undefined && isUsableRtpDestination(mediaAddress ?? sessionAddress ?? '', port);
}
