import type { GatewayConfig } from '../config/ServerConfig.js';
import { requestUriFor } from './DialTarget.js';
import { parseSipUri, SipUriError } from './SipUri.js';

/** Longest user part taken from a Contact: a phone number or account name is far shorter. */
const MAX_CONTACT_USER = 128;

/** Where a redirected party is dialled next, or why it is not. */
export type RedirectChoice =
  | { readonly requestUri: string; readonly user: string }
  | { readonly problem: string };

/**
 * Picks the target of a 3xx (RFC 3261 §8.1.3.4) under the rule that only
 * configured gateways are reached: the first Contact (they come in q order)
 * whose URI passes the client URI grammar (lib/routing/SipUri.ts) and has a
 * user part (at most 128 characters) not dialled yet gives `sip:<user>@<gateway>`, the same gateway
 * the redirected call went through. The Contact's host, port and parameters
 * are never used: a Contact naming another host (or another gateway) is
 * still dialled through this one.
 *
 * @param contacts Contact URIs of the 3xx, highest q first (LegEnd.redirectContacts).
 * @param tried user parts (canonical escapes) dialled so far for this party, the first one included.
 * @returns the new Request-URI and its user, or `problem`: `no usable Contact`
 *   (none passes the grammar or has a user part) or `redirect loop (<user>
 *   already dialled)` when every usable one was dialled before.
 */
export function chooseRedirect(contacts: readonly string[], gateway: GatewayConfig, tried: ReadonlySet<string>): RedirectChoice {
  let looped: string | undefined;
  for (const contact of contacts) {
    const user = contactUser(contact);
    if (user === undefined) continue;
    if (tried.has(user)) {
      looped ??= user;
      continue;
    }
    return { requestUri: requestUriFor(user, gateway), user };
  }
  return { problem: looped === undefined ? 'no usable Contact' : `redirect loop (${looped} already dialled)` };
}

/** The Contact's user part in canonical form, or undefined when it has none or breaks the grammar. */
function contactUser(contact: string): string | undefined {
  try {
    const user = parseSipUri(contact).user;
    return user !== null && user.length <= MAX_CONTACT_USER ? user : undefined;
  } catch (err) {
    if (err instanceof SipUriError) return undefined;
    throw err;
  }
}
