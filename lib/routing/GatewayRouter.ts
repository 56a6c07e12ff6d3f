import type { GatewayConfig } from '../config/ServerConfig.js';
import { ServiceError } from '../errors/ServiceError.js';
import { GatewayPool } from './GatewayPool.js';
import { parseCallUri, requestUriFor, type DialTarget } from './DialTarget.js';
import { parseSipUri, PHONE_NUMBER, phoneNumberUser, SipUriError } from './SipUri.js';

/** A dial target with a gateway slot taken; `release()` gives the slot back. */
export interface Route {
  readonly target: DialTarget;
  readonly fromUri: string;
  readonly release: () => void;
}

/**
 * Turns the URIs and numbers clients give into gateway routes. Only configured
 * gateways are dialled: a URI whose host is not a gateway's name or address is
 * refused, so the server can never be used to reach arbitrary SIP hosts.
 */
export class GatewayRouter {
  readonly #gateways: readonly GatewayConfig[];
  readonly #default: GatewayConfig | undefined;
  readonly #pool = new GatewayPool();

  constructor(gateways: readonly GatewayConfig[], defaultGateway?: string) {
    this.#gateways = gateways;
    this.#default = defaultGateway ? gateways.find((g) => g.name === defaultGateway) : gateways[0];
  }

  /**
   * Resolves one callee; `param` names the client's param in the error.
   * @throws ServiceError invalid_params when `uri` breaks RFC 3261's grammar, has no user or names no gateway.
   */
  resolve(uri: string, param: string): DialTarget {
    const parsed = checked(() => parseCallUri(uri), param);
    if (!parsed.user) throw ServiceError.invalidParams([{ param, message: 'has no user part to dial' }]);
    const gateway = parsed.host === null ? this.#default : this.#gatewayFor(parsed.host, parsed.port);
    if (!gateway) {
      const message = parsed.host === null
        ? 'cannot be dialled: no gateway is configured'
        : `host '${parsed.host}' is not a configured gateway (known: ${this.#gateways.map((g) => g.name).join(', ') || 'none'})`;
      throw ServiceError.invalidParams([{ param, message }]);
    }
    return { user: parsed.user, gateway, requestUri: requestUriFor(parsed.user, gateway) };
  }

  /**
   * Checks a client's caller id (`from*_uri`) at construct: a phone number or
   * an RFC 3261 sip: URI, as `resolve` checks callees.
   * @returns the caller id presented: the user part in canonical escaped form, null when the URI has none.
   * @throws ServiceError invalid_params naming `param`.
   */
  checkCaller(uri: string, param: string): string | null {
    return PHONE_NUMBER.test(uri) ? phoneNumberUser(uri) : checked(() => parseSipUri(uri), param).user;
  }

  /** Takes a slot on the first candidate's gateway with room; null when none has. `from` must have passed `checkCaller`. */
  take(candidates: readonly DialTarget[], from: string | null): Route | null {
    const target = candidates.find((c) => this.#pool.hasCapacity(c.gateway));
    if (!target) return null;
    return { target, fromUri: this.#fromUri(from ?? target.gateway.callerId, target.gateway), release: this.#pool.take(target.gateway) };
  }

  #gatewayFor(host: string, port: number | null): GatewayConfig | undefined {
    return (
      this.#gateways.find((g) => g.name.toLowerCase() === host) ??
      this.#gateways.find((g) => g.host.toLowerCase() === host && (port === null || g.port === port))
    );
  }

  #fromUri(caller: string, gateway: GatewayConfig): string {
    return caller.includes(':') ? caller : `sip:${phoneNumberUser(caller)}@${gateway.host}`;
  }
}

function checked<T>(parse: () => T, param: string): T {
  try {
    return parse();
  } catch (err) {
    if (err instanceof SipUriError) throw ServiceError.invalidParams([{ param, message: err.message }]);
    throw err;
  }
}
