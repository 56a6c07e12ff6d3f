import { EventEmitter } from 'node:events';
import type * as typedEmitter from 'typed-emitter';

export type EventMap = typedEmitter.EventMap;

/** An EventEmitter whose event names and listener signatures are checked (typed-emitter). */
export type TypedEmitter<Events extends EventMap> = typedEmitter.default<Events>;

/** Base class for typed emitters: `class Leg extends TypedEventEmitter<LegEvents> {}`. */
export const TypedEventEmitter = EventEmitter as unknown as new <Events extends EventMap>() => TypedEmitter<Events>;
