import type { GatewayConfig } from '../config/ServerConfig.js';

/** Counts calls per gateway so none gets more than its `maxConcurrentCalls`. */
export class GatewayPool {
  readonly #inUse = new Map<string, number>();

  inUse(gateway: GatewayConfig): number {
    return this.#inUse.get(gateway.name) ?? 0;
  }

  hasCapacity(gateway: GatewayConfig): boolean {
    return this.inUse(gateway) < gateway.maxConcurrentCalls;
  }

  /** Takes one slot; the returned function gives it back (only once). */
  take(gateway: GatewayConfig): () => void {
    this.#inUse.set(gateway.name, this.inUse(gateway) + 1);
    let returned = false;
    return () => {
      if (returned) return;
      returned = true;
      this.#inUse.set(gateway.name, this.inUse(gateway) - 1);
    };
  }
}
