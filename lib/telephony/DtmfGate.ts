import type { Logger } from '../util/logger.js';
import { DTMF_KEYS, MAX_DTMF_PER_SECOND, type DtmfKey, type DtmfSource } from './TelephonyEngine.js';

/**
 * What every engine passes a far end's key press through before its leg
 * emits `dtmf`: the key must be one character of `0-9 * # A-D`, and at most
 * MAX_DTMF_PER_SECOND pass per one-second window (a far end flooding events
 * must not flood the resource or the client's event stream; the first drop
 * is logged).
 */
export class DtmfGate {
  readonly #log: Logger;
  readonly #emit: (key: DtmfKey, source: DtmfSource) => void;
  #windowStart = -Infinity;
  #inWindow = 0;
  #dropped = 0;

  constructor(log: Logger, emit: (key: DtmfKey, source: DtmfSource) => void) {
    this.#log = log;
    this.#emit = emit;
  }

  /** Emits `key` (upper-cased) unless it is invalid or over the rate. */
  pass(key: string, source: DtmfSource): void {
    const upper = key.toUpperCase();
    if (upper.length !== 1 || !DTMF_KEYS.includes(upper)) return;
    const now = performance.now();
    if (now - this.#windowStart >= 1000) {
      this.#windowStart = now;
      this.#inWindow = 0;
    }
    if (this.#inWindow >= MAX_DTMF_PER_SECOND) {
      if (this.#dropped++ === 0) this.#log.warn({ source }, 'DTMF flood: key presses over the rate are dropped');
      return;
    }
    this.#inWindow++;
    this.#log.info({ key: upper, source }, 'key pressed');
    this.#emit(upper, source);
  }
}
