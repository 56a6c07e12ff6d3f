import { isIPv4, isIPv6 } from 'node:net';

/**
 * The SIP URIs and phone numbers clients give (`to*_uri`, `from*_uri`),
 * checked against RFC 3261 §25.1 before any of it can reach a SIP message.
 * Only printable ASCII passes; every `%` starts a valid escape; escapes of
 * control characters (`%0D%0A`, `%00`) are refused, so no client character
 * can become CR, LF or NUL on the wire, whatever the SIP layer's encoding.
 */
export interface SipUri {
  /** The user part with escapes canonical (unreserved characters decoded, hex upper case); null when absent. */
  readonly user: string | null;
  /** Lower case; an IPv6 reference keeps its brackets. */
  readonly host: string;
  readonly port: number | null;
  /** `;name[=value]` parameters exactly as given (grammar-checked), or ''. */
  readonly params: string;
}

/** A bare phone number: digits, `*`, `#`, optional leading `+` (as the schema's CallUri). */
export const PHONE_NUMBER = /^\+?[0-9*#]{1,32}$/;

const UNRESERVED = "A-Za-z0-9\\-_.!~*'()";
const ESCAPED = '%[0-9A-Fa-f]{2}';
const USER = new RegExp(`^(?:[${UNRESERVED}&=+$,;?/]|${ESCAPED})+$`);
const PARAM_CHARS = `(?:[${UNRESERVED}\\[\\]/:&+$]|${ESCAPED})+`;
const PARAMS = new RegExp(`^(?:;${PARAM_CHARS}(?:=${PARAM_CHARS})?)*$`);
const HOSTNAME = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)*[A-Za-z](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.?$/;
const PORT = /^[0-9]{1,5}$/;
const UNRESERVED_CHAR = new RegExp(`^[${UNRESERVED}]$`);

/** Why a client's URI is refused; the caller names the param. */
export class SipUriError extends Error {
  override name = 'SipUriError';
}

/**
 * Parses `sip:[user@]host[:port][;params]`.
 * @throws SipUriError naming the first rule broken: non-ASCII or control
 *   characters, a malformed or control-character escape, `sips:` (no TLS
 *   transport here), a password, URI headers (`?`), or bad user/host/port/params.
 */
export function parseSipUri(text: string): SipUri {
  const bad = /[^\x21-\x7e]/.exec(text);
  if (bad) {
    const code = bad[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0');
    throw new SipUriError(`must be printable ASCII without spaces (RFC 3261): U+${code} at position ${bad.index}`);
  }
  checkEscapes(text);
  const colon = text.indexOf(':');
  const scheme = text.slice(0, colon).toLowerCase();
  if (scheme === 'sips') throw new SipUriError('sips: needs TLS, which this server does not offer: use a sip: URI');
  if (colon < 0 || scheme !== 'sip') throw new SipUriError('must be a SIP URI (sip:user@host) or a phone number');
  const rest = text.slice(colon + 1);
  const parts = rest.split('@');
  if (parts.length > 2) throw new SipUriError("has more than one '@' (escape it as %40 in the user part)");
  const userinfo = parts.length === 2 ? parts[0]! : null;
  const hostpart = parts.at(-1)!;
  if (userinfo !== null) {
    if (userinfo.includes(':')) throw new SipUriError('must not carry a password (RFC 3261 §19.1.1)');
    if (!USER.test(userinfo)) throw new SipUriError(`has an invalid user part (RFC 3261 §25.1)`);
  }
  if (hostpart.includes('?')) throw new SipUriError('must not carry URI headers (?...)');
  const semi = hostpart.indexOf(';');
  const hostport = semi < 0 ? hostpart : hostpart.slice(0, semi);
  const params = semi < 0 ? '' : hostpart.slice(semi);
  if (!PARAMS.test(params)) throw new SipUriError('has invalid URI parameters (RFC 3261 §25.1)');
  const { host, port } = splitHostPort(hostport);
  return { user: userinfo === null ? null : canonicalEscapes(userinfo), host, port, params };
}

/** The user part a bare phone number dials: `#` is not allowed unescaped in a SIP URI user (RFC 3261 §19.1.2). */
export function phoneNumberUser(number: string): string {
  return number.replaceAll('#', '%23');
}

function splitHostPort(hostport: string): { host: string; port: number | null } {
  let host: string;
  let portText: string | null;
  if (hostport.startsWith('[')) {
    const end = hostport.indexOf(']');
    host = hostport.slice(0, end + 1);
    if (end < 0 || !isIPv6(host.slice(1, -1))) throw new SipUriError('has an invalid IPv6 reference');
    const after = hostport.slice(end + 1);
    if (after !== '' && !after.startsWith(':')) throw new SipUriError('has an invalid host');
    portText = after === '' ? null : after.slice(1);
  } else {
    const colon = hostport.indexOf(':');
    host = colon < 0 ? hostport : hostport.slice(0, colon);
    portText = colon < 0 ? null : hostport.slice(colon + 1);
    const ipv4Shaped = /^[0-9.]+$/.test(host);
    if (ipv4Shaped ? !isIPv4(host) : !HOSTNAME.test(host)) throw new SipUriError('has an invalid host');
  }
  if (portText === null) return { host: host.toLowerCase(), port: null };
  const port = Number(portText);
  if (!PORT.test(portText) || port < 1 || port > 65535) throw new SipUriError('has an invalid port (1-65535)');
  return { host: host.toLowerCase(), port };
}

/** Every `%` must start `%HH`, and no escape may encode a control character (C0 or DEL). */
function checkEscapes(text: string): void {
  for (let i = text.indexOf('%'); i >= 0; i = text.indexOf('%', i + 1)) {
    const hex = text.slice(i + 1, i + 3);
    if (!/^[0-9A-Fa-f]{2}$/.test(hex)) throw new SipUriError(`has an invalid percent escape at position ${i} (must be % and two hex digits)`);
    const byte = parseInt(hex, 16);
    if (byte < 0x20 || byte === 0x7f) throw new SipUriError(`must not encode a control character (%${hex} at position ${i})`);
  }
}

/** RFC 3261 §19.1.4: escaped unreserved characters equal their plain form; hex case does not matter. */
function canonicalEscapes(user: string): string {
  return user.replace(/%([0-9A-Fa-f]{2})/g, (_escape, hex: string) => {
    const char = String.fromCharCode(parseInt(hex, 16));
    return UNRESERVED_CHAR.test(char) ? char : `%${hex.toUpperCase()}`;
  });
}
