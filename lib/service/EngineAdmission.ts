/**
 * Admission control at construct (issue 11, kind 8): work is refused while
 * the telephony engine is saturated, before a gateway slot is taken or
 * anyone is called, with -32006 (`rate_limited`) and `retry_after_ms` from
 * the engine's own measure (TelephonyEngine.saturation). Each refusal is
 * counted by cause for GET /metrics.
 */
import { ServiceError } from '../errors/ServiceError.js';
import type { SaturationCause, TelephonyEngine } from '../telephony/TelephonyEngine.js';
import { TypedEventEmitter } from '../util/TypedEmitter.js';
import type { Logger } from '../util/logger.js';

export type EngineAdmissionEvents = {
  /** A construct was refused because the engine is saturated. */
  refused: (cause: SaturationCause) => void;
};

/** A refusal is logged at most this often (a refusing server refuses a lot). */
const LOG_EVERY_MS = 1000;

export class EngineAdmission extends TypedEventEmitter<EngineAdmissionEvents> {
  readonly #engine: TelephonyEngine;
  readonly #log: Logger;
  #loggedAt = -Infinity;

  constructor(engine: TelephonyEngine, log: Logger) {
    super();
    this.#engine = engine;
    this.#log = log;
  }

  /**
   * Admits a new call of `legs` legs.
   * @throws ServiceError rate_limited, `data`: `{ retry_after_ms, reason, cause }` (`cause`: a SaturationCause).
   */
  admit(legs: number): void {
    const saturation = this.#engine.saturation(legs);
    if (!saturation) return;
    this.emit('refused', saturation.cause);
    const now = performance.now();
    if (now - this.#loggedAt >= LOG_EVERY_MS) {
      this.#loggedAt = now;
      this.#log.warn({ cause: saturation.cause, retryAfterMs: saturation.retryAfterMs }, `refusing constructs: ${saturation.message}`);
    }
    throw new ServiceError('rate_limited', `the ${this.#engine.name} engine is saturated: ${saturation.message}`, {
      retry_after_ms: Math.max(1, Math.ceil(saturation.retryAfterMs)),
      reason: saturation.message,
      cause: saturation.cause,
    });
  }
}
