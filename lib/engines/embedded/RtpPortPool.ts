/** Hands out even RTP ports from the configured range, rotating so a just-freed port is reused last. */
export class RtpPortPool {
  readonly #min: number;
  readonly #max: number;
  readonly #inUse = new Set<number>();
  #next: number;

  constructor(min: number, max: number) {
    this.#min = min + (min & 1);
    this.#max = max;
    this.#next = this.#min;
    if (this.#min > this.#max) throw new Error(`empty RTP port range ${min}-${max}`);
  }

  get size(): number {
    return Math.floor((this.#max - this.#min) / 2) + 1;
  }

  /** Ports not taken now (admission control: a call needs one per leg). */
  get free(): number {
    return this.size - this.#inUse.size;
  }

  /** A free port, or undefined when every port is taken. */
  take(): number | undefined {
    for (let i = 0; i < this.size; i++) {
      const port = this.#next;
      this.#next = port + 2 > this.#max ? this.#min : port + 2;
      if (!this.#inUse.has(port)) {
        this.#inUse.add(port);
        return port;
      }
    }
    return undefined;
  }

  release(port: number): void {
    this.#inUse.delete(port);
  }
}
