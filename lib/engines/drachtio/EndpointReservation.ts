/**
 * A FreeSWITCH endpoint obtained for a leg before the leg is dialled
 * (TelephonyEngine.reserve, issue 11 kind 8): creation starts at once; a
 * DrachtioLeg takes it (and from then on hangs it up), or release() hangs it
 * up. Every leg gets its endpoint through one of these, reserved ahead or
 * when it is dialled.
 */
import type { Logger } from 'pino';
import type Mrf from 'drachtio-fsmrf';
import type { MediaReservation } from '../../telephony/TelephonyEngine.js';
import type { FreeswitchLink } from './FreeswitchLink.js';
import { withTimeout } from './withTimeout.js';

const TEARDOWN_TIMEOUT_MS = 3000;

export class EndpointReservation implements MediaReservation {
  readonly link: FreeswitchLink;
  readonly group: string | undefined;
  /** The endpoint, or why it could not be had; never rejects. */
  readonly endpoint: Promise<Mrf.Endpoint | Error>;
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
