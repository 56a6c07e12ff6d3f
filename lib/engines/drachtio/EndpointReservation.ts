/**
 * A FreeSWITCH endpoint obtained for a leg before the leg is dialled
 * (TelephonyEngine.reserve, issue 11 kind 8): creation starts at once; a
 * DrachtioLeg takes it (and from then on hangs it up), or release() hangs it
 * up. Every leg gets its endpoint through one of these, reserved ahead or
 * when it is dialled.
 *
 * Each endpoint gets `park_after_bridge` as soon as it exists, while its
 * party is still being dialled (or, for party 2, while party 1 rings): set
 * before the bridge instead, the two commands' round trip to a busy
 * FreeSWITCH delayed every call's bridge (issue 11 kind 8,
 * docs/performance.md).
 */
import type { Logger } from 'pino';
import type Mrf from 'drachtio-fsmrf';
import type { MediaReservation } from '../../telephony/TelephonyEngine.js';
import type { FreeswitchLink } from './FreeswitchLink.js';
import { withTimeout } from './withTimeout.js';

const TEARDOWN_TIMEOUT_MS = 3000;
const API_TIMEOUT_MS = 3000;

export class EndpointReservation implements MediaReservation {
  readonly link: FreeswitchLink;
  readonly group: string | undefined;
  /** The endpoint, or why it could not be had; never rejects. */
  readonly endpoint: Promise<Mrf.Endpoint | Error>;
  /**
   * Settles once the endpoint's channel has `park_after_bridge` set (or
   * setting it failed, logged): EndpointBridge waits for it. Never rejects.
   */
  readonly parked: Promise<void>;
  /** Resolves when a leg took it or it was released. */
  readonly done: Promise<void>;
  #state: 'held' | 'taken' | 'released' = 'held';
  #resolveDone!: () => void;

  constructor(link: FreeswitchLink, group: string | undefined, log: Logger) {
    this.link = link;
    this.group = group;
    this.done = new Promise((resolve) => (this.#resolveDone = resolve));
    link.endpoints++;
    this.endpoint = link.createEndpoint().catch((err: unknown) => {
      link.endpoints--;
      const error = err instanceof Error ? err : new Error(String(err));
      log.error({ err: error.message, freeswitch: link.name }, 'cannot create media endpoint');
      return error;
    });
    this.parked = this.endpoint.then((endpoint) => (endpoint instanceof Error ? undefined : parkAfterBridge(endpoint, log)));
  }

  get held(): boolean {
    return this.#state === 'held';
  }

  /** Hands the endpoint to a leg, which then hangs it up (and counts it off the link); undefined once taken or released. */
  take(): Promise<Mrf.Endpoint | Error> | undefined {
    if (this.#state !== 'held') return undefined;
    this.#state = 'taken';
    this.#resolveDone();
    return this.endpoint;
  }

  release(): void {
    if (this.#state !== 'held') return;
    this.#state = 'released';
    this.#resolveDone();
    void this.endpoint.then(async (endpoint) => {
      if (endpoint instanceof Error) return;
      await withTimeout(endpoint.destroy(), TEARDOWN_TIMEOUT_MS, 'timed out').catch(() => this.link.server?.api(`uuid_kill ${endpoint.uuid}`));
      this.link.endpoints--;
    });
  }
}

/**
 * Without `park_after_bridge`, the channel left when the other hangs up
 * falls off the end of its dialplan (drachtio-fsmrf's socket app) and
 * FreeSWITCH hangs it up too. Sent over the endpoint's own outbound event
 * socket (DrachtioLeg.api says why).
 */
async function parkAfterBridge(endpoint: Mrf.Endpoint, log: Logger): Promise<void> {
  try {
    const reply = await withTimeout(endpoint.api('uuid_setvar', `${endpoint.uuid} park_after_bridge true`), API_TIMEOUT_MS, 'no reply');
    const body = reply.getBody();
    if (!body.startsWith('+OK')) log.warn({ uuid: endpoint.uuid, reply: body.trim() }, 'FreeSWITCH refused park_after_bridge');
  } catch (err) {
    log.warn({ uuid: endpoint.uuid, err: (err as Error).message }, 'cannot set park_after_bridge');
  }
}
