import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP } from 'node:net';

/** The longest event_url / status_url accepted, characters. */
export const MAX_WEBHOOK_URL_LENGTH = 2048;

/**
 * Addresses a webhook must not reach unless `webhooks.allowPrivateTargets`
 * (docs/security.md): unspecified, loopback, RFC 1918, CGNAT (RFC 6598),
 * link-local (RFC 3927, RFC 4291), multicast, ULA (RFC 4193), the IPv4-mapped
 * forms of those, and the reserved 240/4.
 */
const refused = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.168.0.0', 16],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  refused.addSubnet(net, bits, 'ipv4');
  refused.addSubnet(`::ffff:${net}`, 96 + bits, 'ipv6');
}
for (const [net, bits] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const) {
  refused.addSubnet(net, bits, 'ipv6');
}

/** True when `address` (an IP literal) is one a webhook must not reach by default. */
export function isPrivateAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return true;
  return refused.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

/**
 * True when a URL's host is known to be refused without a DNS lookup: an IP
 * literal (`[…]` for IPv6) that {@link isPrivateAddress}, or `localhost` and
 * its subdomains (RFC 6761 §6.3). Other names are checked at connect time.
 */
export function isPrivateHost(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '');
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  return isIP(host) !== 0 && isPrivateAddress(host);
}

/** A webhook URL that fails {@link checkWebhookUrl}; the message names the rule. */
export class InvalidWebhookUrl extends Error {
  override name = 'InvalidWebhookUrl';
}

/**
 * Checks a webhook URL's grammar: http or https, at most
 * {@link MAX_WEBHOOK_URL_LENGTH} characters, a host, no userinfo (a password
 * in a URL would end up in logs), no fragment. Addresses are checked at
 * connect time, not here (DNS can change). Throws {@link InvalidWebhookUrl}.
 */
export function checkWebhookUrl(text: string): URL {
  if (text.length > MAX_WEBHOOK_URL_LENGTH) throw new InvalidWebhookUrl(`webhook URL longer than ${MAX_WEBHOOK_URL_LENGTH} characters`);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new InvalidWebhookUrl('webhook URL is not an absolute URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new InvalidWebhookUrl('webhook URL must be http or https');
  if (url.username || url.password) throw new InvalidWebhookUrl('webhook URL must not carry a user name or password');
  if (!url.hostname) throw new InvalidWebhookUrl('webhook URL has no host');
  if (url.hash) throw new InvalidWebhookUrl('webhook URL must not have a fragment');
  return url;
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A `lookup` for http.request that resolves the name and refuses private
 * addresses (unless allowed): the address checked is the one connected to,
 * so DNS rebinding between a check and the connect cannot pass.
 */
export function guardedLookup(allowPrivate: boolean) {
  return (hostname: string, options: { all?: boolean }, callback: LookupCallback): void => {
    dnsLookup(hostname, { all: true }, (err, addresses) => {
      if (err) return callback(err, []);
      const ok = allowPrivate ? addresses : addresses.filter((a) => !isPrivateAddress(a.address));
      if (!ok.length) {
        const refusal = Object.assign(new Error(`refused: ${hostname} resolves only to private addresses`), { code: 'EPRIVATETARGET' });
        return callback(refusal, []);
      }
      if (options.all) return callback(null, ok);
      callback(null, ok[0]!.address, ok[0]!.family);
    });
  };
}
