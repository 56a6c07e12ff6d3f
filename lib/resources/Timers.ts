import type { Clock, Timer } from '../util/Clock.js';

/** A resource's named timers, so a state change can cancel one by name and release can cancel all. */
export class Timers<Name extends string> {
  readonly #timers = new Map<Name, Timer>();

  constructor(private readonly clock: Clock) {}

  start(name: Name, seconds: number, onExpiry: () => void): void {
    this.cancel(name);
    this.#timers.set(
      name,
      this.clock.setTimer(seconds * 1000, () => {
        this.#timers.delete(name);
        onExpiry();
      }),
    );
  }

  cancel(name: Name): void {
    this.#timers.get(name)?.cancel();
    this.#timers.delete(name);
  }

  cancelAll(): void {
    for (const timer of this.#timers.values()) timer.cancel();
    this.#timers.clear();
  }
}
