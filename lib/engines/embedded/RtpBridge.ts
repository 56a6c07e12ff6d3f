/**
 * Relays RTP both ways between two legs' sessions. A file played to a leg
 * replaces the other party's voice for that leg (relay is dropped while it
 * plays), e.g. the duo_callback countdown warning. Recording is a leg's own
 * (OutboundCall.record): it hears the relay like any other audio sent.
 */
import type { MediaBridge } from '../../telephony/TelephonyEngine.js';
import type { RtpSession } from './RtpSession.js';

export class RtpBridge implements MediaBridge {
  readonly #a: RtpSession;
  readonly #b: RtpSession;
  readonly #onClose: () => void;
  #closed = false;

  /** `onClose` lets the legs forget the bridge. */
  constructor(a: RtpSession, b: RtpSession, onClose: () => void) {
    this.#a = a;
    this.#b = b;
    this.#onClose = onClose;
    a.sink = (packet, headerLength) => b.relay(packet, headerLength, a.telephoneEventPt);
    b.sink = (packet, headerLength) => a.relay(packet, headerLength, b.telephoneEventPt);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#a.sink = undefined;
    this.#b.sink = undefined;
    this.#onClose();
  }
}
