import type { GatewayConfig } from '../config/ServerConfig.js';
import { parseSipUri, PHONE_NUMBER, phoneNumberUser } from './SipUri.js';

/** A callee resolved against the configured gateways, before capacity is taken. */
export interface DialTarget {
  /** The user part (the phone number) in canonical escaped form, compared to tell two parties apart. */
  readonly user: string;
  readonly gateway: GatewayConfig;
  readonly requestUri: string;
}

export interface ParsedUri {
  readonly user: string | null;
  readonly host: string | null;
  readonly port: number | null;
}

/**
 * A bare number has no host; a SIP URI may lack a user.
 * @throws SipUriError when `value` is neither a phone number nor an RFC 3261 sip: URI.
 */
export function parseCallUri(value: string): ParsedUri {
  if (PHONE_NUMBER.test(value)) return { user: phoneNumberUser(value), host: null, port: null };
  const { user, host, port } = parseSipUri(value);
  return { user, host, port };
}

export function requestUriFor(user: string, gateway: GatewayConfig): string {
  const transport = gateway.transport === 'tcp' ? ';transport=tcp' : '';
  return `sip:${user}@${gateway.host}:${gateway.port}${transport}`;
}
