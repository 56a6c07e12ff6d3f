/**
 * Event-loop lateness: a timer due every `periodMs` reports how late it
 * fired. A loop blocked (a long synchronous step, GC) or a process waiting
 * for its core shows as lateness; an idle, scheduled process stays near 0.
 */
export class LagSampler {
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly now: () => number,
    /** `cpuMs`: CPU time the process used since the previous sample (all threads): a late sample with
     * little CPU means the process waited (for its core, or in a blocking system call), not computed. */
    private readonly onSample: (at: number, lateMs: number, cpuMs: number) => void,
    private readonly periodMs = 10,
  ) {}

  start(): void {
    let due = this.now() + this.periodMs;
    let cpu = process.cpuUsage();
    const tick = (): void => {
      const at = this.now();
      // One call per sample: the probe's own cost stays out of what it measures.
      const total = process.cpuUsage();
      const usedUs = total.user - cpu.user + (total.system - cpu.system);
      cpu = total;
      this.onSample(at, Math.max(0, at - due), usedUs / 1000);
      due = at + this.periodMs;
      this.#timer = setTimeout(tick, this.periodMs);
      this.#timer.unref();
    };
    this.#timer = setTimeout(tick, this.periodMs);
    this.#timer.unref();
  }

  stop(): void {
    clearTimeout(this.#timer);
  }
}
