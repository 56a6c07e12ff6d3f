/**
 * Two legs' FreeSWITCH endpoints joined by uuid_bridge. Recording is a leg's
 * own (DrachtioLeg.record: uuid_record on its channel), which goes on
 * through the bridge.
 */
import type { Logger } from 'pino';
import type { MediaBridge } from '../../telephony/TelephonyEngine.js';
import type { DrachtioLeg, LegMedia } from './DrachtioLeg.js';

export class EndpointBridge implements MediaBridge {
  readonly #a: DrachtioLeg;
  readonly #b: DrachtioLeg;
  readonly #mediaA: LegMedia;
  readonly #log: Logger;
  #closing: Promise<void> | undefined;

  private constructor(a: DrachtioLeg, b: DrachtioLeg, mediaA: LegMedia, log: Logger) {
    this.#a = a;
    this.#b = b;
    this.#mediaA = mediaA;
    this.#log = log;
    a.once('ended', this.#onLegEnded);
    b.once('ended', this.#onLegEnded);
  }

  static async open(a: DrachtioLeg, b: DrachtioLeg, log: Logger): Promise<EndpointBridge> {
    const [mediaA, mediaB] = await Promise.all([a.media(), b.media()]);
    if (!mediaA || !mediaB) throw new Error('cannot bridge a leg that has ended');
    if (mediaA.link !== mediaB.link) throw new Error('cannot bridge legs on different media servers');
    // Set when each endpoint was created (EndpointReservation): long done by now, as a rule.
    await Promise.all([mediaA.parked, mediaB.parked]);
    await mediaA.link.mediaRequests.time(mediaA.endpoint.bridge(mediaB.endpoint));
    if (a.ended || b.ended) throw new Error('a leg ended while it was being bridged');
    log.info({ a: mediaA.endpoint.uuid, b: mediaB.endpoint.uuid }, 'bridged');
    return new EndpointBridge(a, b, mediaA, log);
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#a.off('ended', this.#onLegEnded);
    this.#b.off('ended', this.#onLegEnded);
    if (!this.#a.ended && !this.#b.ended) {
      await this.#mediaA.endpoint.unbridge().catch((err: unknown) => this.#log.warn({ err: (err as Error).message }, 'unbridge failed'));
    }
    this.#log.info('bridge closed');
  }

  readonly #onLegEnded = (): void => {
    void this.close();
  };
}
