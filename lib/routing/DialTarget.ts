import type { GatewayConfig } from '../config/ServerConfig.js';

/** A callee resolved against the configured gateways, before capacity is taken. */
export interface DialTarget {
  /** The user part (the phone number), compared to tell two parties apart. */
  readonly user: string;
  readonly gateway: GatewayConfig;
  readonly requestUri: string;
}

const PHONE = /^\+?[0-9*#]+$/;
const SIP_URI = /^sips?:(?:([^@;?]+)@)?([^:;?]+|\[[^\]]+\])(?::(\d+))?/i;

export interface ParsedUri {
  readonly user: string | null;
  readonly host: string | null;
  readonly port: number | null;
}

/** A bare number has no host; a SIP URI may lack a user. */
export function parseCallUri(value: string): ParsedUri | null {
  if (PHONE.test(value)) return { user: value, host: null, port: null };
  const m = SIP_URI.exec(value);
  if (!m) return null;
  return { user: m[1] ? decodeURIComponent(m[1]) : null, host: m[2]!.toLowerCase(), port: m[3] ? Number(m[3]) : null };
}

export function requestUriFor(user: string, gateway: GatewayConfig): string {
  const transport = gateway.transport === 'tcp' ? ';transport=tcp' : '';
  return `sip:${user}@${gateway.host}:${gateway.port}${transport}`;
}
