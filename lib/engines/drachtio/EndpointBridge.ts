/**
 * Two legs' FreeSWITCH endpoints joined by uuid_bridge. The stereo recording
 * is a uuid_record on a's channel with RECORD_STEREO: FreeSWITCH writes what
 * it reads from a (party a) left and what it writes to a (party b) right.
 */
import type { Logger } from 'pino';
import type { MediaBridge } from '../../telephony/TelephonyEngine.js';
import type { DrachtioLeg, LegMedia } from './DrachtioLeg.js';

export class EndpointBridge implements MediaBridge {
  readonly #a: DrachtioLeg;
  readonly #b: DrachtioLeg;
  readonly #mediaA: LegMedia;
  readonly #log: Logger;
  readonly #mediaPath: (path: string) => string;
  #recording: string | undefined;
  #closing: Promise<void> | undefined;

  private constructor(a: DrachtioLeg, b: DrachtioLeg, mediaA: LegMedia, mediaPath: (path: string) => string, log: Logger) {
    this.#a = a;
    this.#b = b;
    this.#mediaA = mediaA;
    this.#mediaPath = mediaPath;
    this.#log = log;
    a.once('ended', this.#onLegEnded);
    b.once('ended', this.#onLegEnded);
  }

  static async open(a: DrachtioLeg, b: DrachtioLeg, mediaPath: (path: string) => string, log: Logger): Promise<EndpointBridge> {
    const [mediaA, mediaB] = await Promise.all([a.media(), b.media()]);
    if (!mediaA || !mediaB) throw new Error('cannot bridge a leg that has ended');
    if (mediaA.link !== mediaB.link) throw new Error('cannot bridge legs on different media servers');
    // Without this, the channel left when the other hangs up falls off the end of
    // its dialplan (the fsmrf socket app) and FreeSWITCH hangs it up too.
    await Promise.all([
      a.api(`uuid_setvar ${mediaA.endpoint.uuid} park_after_bridge true`),
      b.api(`uuid_setvar ${mediaB.endpoint.uuid} park_after_bridge true`),
    ]);
    await mediaA.endpoint.bridge(mediaB.endpoint);
    if (a.ended || b.ended) throw new Error('a leg ended while it was being bridged');
    log.info({ a: mediaA.endpoint.uuid, b: mediaB.endpoint.uuid }, 'bridged');
    return new EndpointBridge(a, b, mediaA, mediaPath, log);
  }

  async record(path: string): Promise<void> {
    if (this.#closing) throw new Error('bridge is closed');
    if (this.#recording) throw new Error('bridge is already recording');
    const uuid = this.#mediaA.endpoint.uuid;
    const file = this.#mediaPath(path);
    await this.#api(`uuid_setvar ${uuid} RECORD_STEREO true`);
    await this.#api(`uuid_record ${uuid} start ${file}`);
    this.#recording = file;
    this.#log.info({ path }, 'recording');
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#a.off('ended', this.#onLegEnded);
    this.#b.off('ended', this.#onLegEnded);
    const uuid = this.#mediaA.endpoint.uuid;
    // Stopping closes the file (WAV header written) before the call goes on or ends.
    if (this.#recording && !this.#a.ended) await this.#api(`uuid_record ${uuid} stop ${this.#recording}`).catch(() => undefined);
    if (!this.#a.ended && !this.#b.ended) {
      await this.#mediaA.endpoint.unbridge().catch((err: unknown) => this.#log.warn({ err: (err as Error).message }, 'unbridge failed'));
    }
    this.#log.info('bridge closed');
  }

  readonly #onLegEnded = (): void => {
    void this.close();
  };

  async #api(command: string): Promise<void> {
    const reply = await this.#a.api(command);
    if (!reply.startsWith('+OK')) throw new Error(`FreeSWITCH refused ${command.split(' ')[0]}: ${reply.trim() || 'no reply'}`);
  }
}
