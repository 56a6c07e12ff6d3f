/**
 * An RTP port taken for a leg before the leg is dialled
 * (TelephonyEngine.reserve, issue 11 kind 8): an OutboundCall binds it
 * first (and from then on its RtpSession gives it back), or release() gives
 * it back to the pool.
 */
import type { MediaReservation } from '../../telephony/TelephonyEngine.js';
import type { RtpPortPool } from './RtpPortPool.js';

export class PortReservation implements MediaReservation {
  readonly #pool: RtpPortPool;
  readonly #port: number;
  #held = true;

  constructor(pool: RtpPortPool, port: number) {
    this.#pool = pool;
    this.#port = port;
  }

  /** The port for a leg, which then owns it; undefined once taken or released. */
  take(pool: RtpPortPool): number | undefined {
    if (!this.#held || pool !== this.#pool) return undefined;
    this.#held = false;
    return this.#port;
  }

  release(): void {
    if (!this.#held) return;
    this.#held = false;
    this.#pool.release(this.#port);
  }
}
