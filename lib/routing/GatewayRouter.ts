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
   * @returns the caller id presented: the user part in canonical escaped form.
   * @throws ServiceError invalid_params naming `param`, also for a URI without a user part (it presents no caller id).
   */
  checkCaller(uri: string, param: string): string {
    if (PHONE_NUMBER.test(uri)) return phoneNumberUser(uri);
    const user = checked(() => parseSipUri(uri), param).user;
    if (user === null) throw ServiceError.invalidParams([{ param, message: 'must present a caller id: sip:<caller id>@<host>, or a number' }]);
    return user;
  }

  /**
   * Takes a slot on the first candidate's gateway with room; null when none
   * has. `from` must have passed `checkCaller`: only its caller id (user part)
   * is used, the From host is always the gateway's, so a client chooses the
   * number it presents but never the domain it claims to call from.
   */
  take(candidates: readonly DialTarget[], from: string | null): Route | null {
    const target = candidates.find((c) => this.#pool.hasCapacity(c.gateway));
    if (!target) return null;
    return {
      target,
      fromUri: from === null ? this.#gatewayFromUri(target.gateway) : `sip:${this.checkCaller(from, 'from')}@${target.gateway.host}`,
      release: this.#pool.take(target.gateway),
    };
  }

  #gatewayFor(host: string, port: number | null): GatewayConfig | undefined {
    return (
      this.#gateways.find((g) => g.name.toLowerCase() === host) ??
      this.#gateways.find((g) => g.host.toLowerCase() === host && (port === null || g.port === port))
    );
  }

  /** The operator's configured caller id: a full URI as written, or a number at the gateway's host. */
  #gatewayFromUri(gateway: GatewayConfig): string {
    const caller = gateway.callerId;
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
