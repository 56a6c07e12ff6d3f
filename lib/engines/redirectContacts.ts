/**
 * What both engines pass up from a 3xx (RFC 3261 §8.1.3.4): the Contact URIs
 * of a redirect, bounded and in q order. Engines never dial them: the
 * routing layer turns one into a call through the same gateway, or refuses
 * (lib/routing/Redirect.ts, docs/errors.md "Redirects").
 */
import { MAX_REDIRECT_CONTACTS } from '../telephony/TelephonyEngine.js';

/**
 * The 3xx statuses whose Contact is offered for a new attempt. Not 305 Use
 * Proxy: it names a next hop (a proxy), and only configured gateways are
 * ever a next hop; not 380 Alternative Service: its Contact describes a
 * service, not a target (RFC 3261 §21.3.7). Those end the party like any
 * failure response.
 */
export const FOLLOWED_REDIRECT_STATUSES: ReadonlySet<number> = new Set([300, 301, 302]);

/** Contact entries looked at (before sorting): a far end may list thousands in one 64 KB message. */
const CONTACTS_SCANNED = 32;
/** Longest Contact URI passed on: a phone number's URI is far shorter. */
const CONTACT_URI_MAX = 256;
/** A q-value (RFC 3261 §25.1 `qvalue`). */
const QVALUE = /^(?:0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?)$/;

/** A Contact as the `sip` and drachtio-srf parsers give it: `{ uri, params }`. */
interface ParsedContact {
  readonly uri?: unknown;
  readonly params?: Readonly<Record<string, unknown>>;
}

/**
 * The Contact URIs of a followed 3xx, highest q first (ties keep the order
 * the far end wrote them; a missing q is 1.0, a malformed one sorts last),
 * at most MAX_REDIRECT_CONTACTS of the first CONTACTS_SCANNED entries.
 * Undefined for any other status, `*`, or no usable entry.
 */
export function redirectContacts(status: number, contacts: unknown): string[] | undefined {
  if (!FOLLOWED_REDIRECT_STATUSES.has(status) || !Array.isArray(contacts)) return undefined;
  const entries = (contacts as unknown[]).slice(0, CONTACTS_SCANNED).flatMap((entry, index) => {
    const { uri, params } = (entry ?? {}) as ParsedContact;
    if (typeof uri !== 'string' || uri.length === 0 || uri.length > CONTACT_URI_MAX) return [];
    return [{ uri, q: qValue(params?.q), index }];
  });
  entries.sort((a, b) => b.q - a.q || a.index - b.index);
  const uris = entries.slice(0, MAX_REDIRECT_CONTACTS).map((e) => e.uri);
  return uris.length > 0 ? uris : undefined;
}

function qValue(q: unknown): number {
  if (q === undefined) return 1;
  return typeof q === 'string' && QVALUE.test(q) ? Number(q) : -1;
}
