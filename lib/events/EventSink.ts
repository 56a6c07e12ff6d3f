/** Somewhere events go: a WebSocket connection today, a customer's HTTP endpoint later. */
export interface EventSink {
  readonly id: string;
  /** Must not throw; a sink that cannot deliver logs and drops. */
  deliver(method: string, params: object): void;
}
