/**
 * Relays RTP both ways between two legs' sessions and, when asked, records
 * what each party hears: left what b hears (a's voice, or a file played to
 * b), right what a hears (b's voice, or a file played to a). A file played to
 * a leg replaces the other party's voice for that leg (relay is dropped while
 * it plays), so the recording takes the file instead, e.g. the duo_callback
 * countdown warning.
 */
import type { MediaBridge } from '../../telephony/TelephonyEngine.js';
import { codecOfPayloadType } from './G711.js';
import type { Pacer } from './Pacer.js';
import type { RtpSession } from './RtpSession.js';
import { StereoRecorder } from './StereoRecorder.js';

export class RtpBridge implements MediaBridge {
  readonly #a: RtpSession;
  readonly #b: RtpSession;
  readonly #pacer: Pacer;
  readonly #onClose: () => void;
  #recorder: StereoRecorder | undefined;
  #closed = false;

  /** `onClose` lets the legs forget the bridge. */
  constructor(a: RtpSession, b: RtpSession, pacer: Pacer, onClose: () => void) {
    this.#a = a;
    this.#b = b;
    this.#pacer = pacer;
    this.#onClose = onClose;
    a.sink = (packet, headerLength) => {
      if (!b.playing) this.#record(0, packet, headerLength);
      b.relay(packet, headerLength, a.telephoneEventPt);
    };
    b.sink = (packet, headerLength) => {
      if (!a.playing) this.#record(1, packet, headerLength);
      a.relay(packet, headerLength, b.telephoneEventPt);
    };
    a.onSentFrame = (packet, headerLength) => this.#record(1, packet, headerLength);
    b.onSentFrame = (packet, headerLength) => this.#record(0, packet, headerLength);
  }

  async record(path: string): Promise<void> {
    if (this.#closed) throw new Error('bridge is closed');
    if (this.#recorder) throw new Error('bridge is already recording');
    const recorder = await StereoRecorder.open(path, this.#pacer);
    if (this.#closed) {
      await recorder.close();
      throw new Error('bridge closed while the recording started');
    }
    this.#recorder = recorder;
  }

  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#a.sink = undefined;
      this.#b.sink = undefined;
      this.#a.onSentFrame = undefined;
      this.#b.onSentFrame = undefined;
      this.#onClose();
    }
    await this.#recorder?.close();
  }

  // Recording decodes before relay rewrites the packet in place.
  #record(channel: 0 | 1, packet: Buffer, headerLength: number): void {
    const recorder = this.#recorder;
    const codec = recorder && codecOfPayloadType(packet[1]! & 0x7f);
    if (codec) recorder.push(channel, codec, packet, headerLength);
  }
}
