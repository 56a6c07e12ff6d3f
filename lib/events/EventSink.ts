/** Somewhere events go: a WebSocket connection today, a customer's HTTP endpoint later. */
export interface EventSink {
  readonly id: string;
  /** The account whose events it may receive (fixed once set); null: none. */
  readonly accountId: string | null;
  /** Must not throw; a sink that cannot deliver logs and drops. */
  deliver(method: string, params: object): void;
  /**
   * The hub cannot keep this sink's events in order any more (its replay
   * failed or fell too far behind): the sink ends (a connection closes, so
   * its client reconnects and replays). Must not throw.
   */
  abandon(reason: string): void;
}
