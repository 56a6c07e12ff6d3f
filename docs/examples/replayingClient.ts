/**
 * An application server's event loop that never misses an event (issue 9):
 * it remembers the highest event_id it processed, reconnects after a drop,
 * resumes with `sys.subscribe {from_event_id}` and drops duplicates by
 * event_id (delivery is at least once).
 *
 *   npx tsx docs/examples/replayingClient.ts ws://127.0.0.1:8080 <api key>
 *
 * A real application keeps `lastEventId` in its own database, in the same
 * transaction as the effect of the event (billing row, CRM update), so a
 * crash of the application also resumes at the right place.
 */
import WebSocket from 'ws';

export interface ReplayingClientOptions {
  readonly url: string;
  /** null: a server with authentication off (loopback only). */
  readonly apiKey: string | null;
  /** Where to resume: the highest event_id already processed (0: everything the server still keeps). */
  readonly lastEventId: number;
  /** Called once per event, in event_id order. */
  readonly onEvent: (method: string, params: { event_id: number; res_id: string }) => void;
}

/** Connects, resumes after `lastEventId`, and reconnects after every drop until `stop()`. */
export class ReplayingClient {
  lastEventId: number;
  #socket: WebSocket | null = null;
  #stopped = false;

  constructor(private readonly options: ReplayingClientOptions) {
    this.lastEventId = options.lastEventId;
  }

  /** Resolves once connected and subscribed; later drops reconnect on their own after 200 ms. */
  connect(): Promise<void> {
    return new Promise((resolve, reject) => {
      const { apiKey } = this.options;
      const socket = new WebSocket(this.options.url, { headers: apiKey === null ? {} : { authorization: `Bearer ${apiKey}` } });
      this.#socket = socket;
      socket.on('open', () => {
        // Everything after the last processed event, then live events: no gap.
        socket.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'sys.subscribe', params: { from_event_id: this.lastEventId } }));
      });
      socket.on('message', (data) => {
        const message = JSON.parse(data.toString()) as { id?: number; method?: string; params?: { event_id: number; res_id: string }; error?: unknown };
        if (message.id === 1) return message.error ? reject(new Error(JSON.stringify(message.error))) : resolve();
        if (!message.method || !message.params) return;
        // At least once: an event can arrive live and again in a replay. Process each event_id once.
        if (message.params.event_id <= this.lastEventId) return;
        this.lastEventId = message.params.event_id;
        this.options.onEvent(message.method, message.params);
      });
      socket.on('error', reject);
      socket.on('close', () => {
        if (!this.#stopped) setTimeout(() => void this.connect().catch(() => undefined), 200);
      });
    });
  }

  /** Drops the connection without stopping (what a network blip does). */
  drop(): void {
    this.#socket?.terminate();
  }

  stop(): void {
    this.#stopped = true;
    this.#socket?.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [url, apiKey] = process.argv.slice(2);
  if (!url || !apiKey) {
    console.error('usage: replayingClient.ts <ws url> <api key>');
    process.exit(2);
  }
  const client = new ReplayingClient({
    url,
    apiKey,
    lastEventId: 0,
    onEvent: (method, params) => console.log(params.event_id, method, params.res_id),
  });
  await client.connect();
}
