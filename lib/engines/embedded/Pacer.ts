/**
 * One 20 ms ticker shared by every leg. Ticks are scheduled against the start
 * time on a monotonic clock (tick n is due at start + n·period), so timer
 * lateness never accumulates into drift. After a stall (a blocked event loop)
 * it runs at most `maxCatchUp` late ticks back to back and skips the rest, so
 * a receiver gets a short burst rather than seconds of queued audio.
 */
import { performance } from 'node:perf_hooks';

export type TickListener = () => void;

export interface PacerOptions {
  readonly periodMs: number;
  readonly maxCatchUp: number;
  readonly now?: () => number;
  /** A listener that throws is removed and reported here, so one bug cannot stop every leg's audio. */
  readonly onError?: (err: unknown) => void;
}

export class Pacer {
  readonly #periodMs: number;
  readonly #maxCatchUp: number;
  readonly #now: () => number;
  readonly #onError: (err: unknown) => void;
  readonly #listeners = new Set<TickListener>();
  #start = 0;
  #ticks = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: PacerOptions) {
    this.#periodMs = options.periodMs;
    this.#maxCatchUp = options.maxCatchUp;
    this.#now = options.now ?? (() => performance.now());
    this.#onError = options.onError ?? ((err) => console.error(err));
  }

  /** Starts the clock with the first listener; the first tick comes one period later. */
  add(listener: TickListener): void {
    this.#listeners.add(listener);
    if (this.#timer === undefined) {
      this.#start = this.#now();
      this.#ticks = 0;
      this.#schedule();
    }
  }

  /** Stops the clock with the last listener so an idle engine has no timer. */
  remove(listener: TickListener): void {
    this.#listeners.delete(listener);
    if (this.#listeners.size === 0 && this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
  }

  /** Runs the ticks that are due; public so tests can drive it with a fake clock. */
  runDue(): void {
    const due = Math.floor((this.#now() - this.#start) / this.#periodMs) - this.#ticks;
    const run = Math.min(due, this.#maxCatchUp);
    this.#ticks += due - run; // skipped ticks
    for (let i = 0; i < run; i++) {
      this.#ticks++;
      for (const listener of this.#listeners) {
        try {
          listener();
        } catch (err) {
          this.remove(listener);
          this.#onError(err);
        }
      }
    }
  }

  #schedule(): void {
    const next = this.#start + (this.#ticks + 1) * this.#periodMs;
    this.#timer = setTimeout(this.#fire, Math.max(0, next - this.#now()));
  }

  readonly #fire = (): void => {
    const firing = this.#timer;
    this.runDue();
    // A listener may have emptied and refilled the set, which already rescheduled.
    if (this.#timer === firing && this.#listeners.size > 0) this.#schedule();
  };
}
