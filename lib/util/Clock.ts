/** Time source and timers, injected so tests can drive time by hand. */
export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  setTimer(ms: number, callback: () => void): Timer;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(ms, callback) {
    const handle = setTimeout(callback, ms);
    return { cancel: () => clearTimeout(handle) };
  },
};

/** Integer Unix seconds, the unit of every time in the API. */
export const unixSeconds = (ms: number): number => Math.floor(ms / 1000);
