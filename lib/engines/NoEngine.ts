import type { CallLeg, EngineSaturation, MediaBridge, ReserveResult, TelephonyEngine, TelephonyEngineEvents } from '../telephony/TelephonyEngine.js';
import { TypedEventEmitter } from '../util/TypedEmitter.js';

/**
 * The engine of an API-only deployment (`engine.type: "none"`): never
 * available, so every construct is refused with the engine-unavailable
 * error. It never pretends a call happened.
 */
export class NoEngine extends TypedEventEmitter<TelephonyEngineEvents> implements TelephonyEngine {
  readonly name = 'none';
  readonly available = false;

  async start(): Promise<void> {}

  async stop(): Promise<void> {}

  dial(): CallLeg {
    throw new Error('engine "none" places no calls');
  }

  async reserve(): Promise<ReserveResult> {
    return { ok: false, reason: 'engine "none" places no calls' };
  }

  /** Never saturated: it is never available, which constructs are refused for first. */
  saturation(): EngineSaturation | undefined {
    return undefined;
  }

  bridge(): Promise<MediaBridge> {
    return Promise.reject(new Error('engine "none" bridges no calls'));
  }
}
