/**
 * One timer for every answered leg: ends a leg whose far end sent no RTP for
 * the configured time, unless its SDP said it sends none (recvonly, inactive)
 * or holds the call (sendonly, inactive, c=0.0.0.0): the timeout pauses while
 * held and starts over when the far end takes the call off hold (issue 11).
 */
import { performance } from 'node:perf_hooks';
import type { RtpSession } from './RtpSession.js';

interface Watched {
  readonly onTimeout: () => void;
  count: number;
  since: number;
}

export class MediaWatchdog {
  readonly #timeoutMs: number;
  readonly #watched = new Map<RtpSession, Watched>();
  #timer: NodeJS.Timeout | undefined;

  constructor(timeoutSeconds: number) {
    this.#timeoutMs = timeoutSeconds * 1000;
  }

  watch(session: RtpSession, onTimeout: () => void): void {
    if (this.#timeoutMs <= 0) return;
    this.#watched.set(session, { onTimeout, count: session.packetsReceived, since: performance.now() });
    // Checking 4 times per timeout bounds the lateness to a quarter of it, at most 1 s.
    this.#timer ??= setInterval(this.#check, Math.min(1000, this.#timeoutMs / 4)).unref();
  }

  unwatch(session: RtpSession): void {
    this.#watched.delete(session);
    if (this.#watched.size === 0 && this.#timer !== undefined) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  readonly #check = (): void => {
    const now = performance.now();
    for (const [session, w] of this.#watched) {
      if (session.packetsReceived !== w.count || !session.remoteSends || session.remoteHolds) {
        w.count = session.packetsReceived;
        w.since = now;
      } else if (now - w.since >= this.#timeoutMs) {
        this.unwatch(session);
        w.onTimeout();
      }
    }
  };
}
