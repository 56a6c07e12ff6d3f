import type { CallLeg, TelephonyEngineEvents } from '../telephony/TelephonyEngine.js';
import type { TypedEmitter } from '../util/TypedEmitter.js';

/**
 * Emits `engine`'s `dialog` event for a leg of resource `group`: `state()`
 * (the engine's text, undefined: nothing to store) once the leg is
 * answered, null once it ended (answered or not: the engine may have
 * reported its pending INVITE). The server stores these so that a restart
 * after a crash can end the call (issue 9). Legs without a group are not
 * reported.
 */
export function reportDialog(engine: TypedEmitter<TelephonyEngineEvents>, leg: CallLeg, group: string | undefined, state: () => string | undefined): void {
  if (group === undefined) return;
  leg.once('answered', () => {
    const text = state();
    if (text !== undefined) engine.emit('dialog', group, leg.id, text);
  });
  leg.once('ended', () => engine.emit('dialog', group, leg.id, null));
}
