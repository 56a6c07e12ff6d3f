/**
 * More than one port for FreeSWITCH's outbound event sockets (issue 11,
 * kind 8: the overload knee).
 *
 * Every endpoint's channel connects back to us (the `socket` application,
 * to the address drachtio-fsmrf puts in `X-esl-outbound`), and drachtio-fsmrf
 * listens on one port for all of them. Since libuv 1.45 (Node 20 has 1.46) a
 * listening socket accepts **one connection per event-loop turn**
 * (libuv/libuv#3696): a turn that also handles a burst of SIP messages and
 * commits events lasts milliseconds, so at 80 endpoints/s the connections
 * queued in the kernel's accept queue for up to 1.7 s (measured with
 * `ss -ltn`: 94 waiting on drachtio-fsmrf's port) while FreeSWITCH had
 * answered each INVITE within 150 ms, and endpoint creation, not
 * FreeSWITCH, set the CTI server's knee (docs/performance.md).
 *
 * This class opens `count - 1` more listeners on the same address, hands
 * each connection they accept to drachtio-fsmrf's own listener (the
 * `connection` event its event-socket server handles), and before each
 * creation advertises the next port in turn: N listeners accept N
 * connections per turn. It relies on two drachtio-fsmrf 4.x internals
 * (`advertisedPort`, read when the INVITE is built, and `_server.server`,
 * the net.Server it listens with); when they are missing, {@link attach}
 * logs it and the one listener of drachtio-fsmrf is used as before.
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import type Mrf from 'drachtio-fsmrf';

/** The drachtio-fsmrf 4.x MediaServer fields this class uses. */
interface MediaServerInternals {
  listenAddress: string;
  advertisedPort: number;
  readonly _server: { readonly server: Server };
}

function internalsOf(server: Mrf.MediaServer): MediaServerInternals | undefined {
  const s = server as unknown as Partial<MediaServerInternals>;
  const listener = s._server?.server;
  if (typeof s.listenAddress !== 'string' || typeof s.advertisedPort !== 'number' || !listener || typeof listener.emit !== 'function') return undefined;
  return s as MediaServerInternals;
}

export class OutboundListeners {
  /** Advertised ports, drachtio-fsmrf's own first. */
  readonly ports: readonly number[];
  readonly #internals: MediaServerInternals;
  readonly #servers: readonly Server[];
  /** Connections each port accepted (tests, and the log at close). */
  readonly accepted: number[];
  #next = 0;

  private constructor(internals: MediaServerInternals, servers: readonly Server[], ports: readonly number[]) {
    this.#internals = internals;
    this.#servers = servers;
    this.ports = ports;
    this.accepted = ports.map(() => 0);
    const forwarded = new WeakSet<Socket>();
    internals._server.server.on('connection', (socket: Socket) => {
      if (!forwarded.has(socket)) this.accepted[0]!++;
    });
    servers.forEach((server, i) =>
      server.on('connection', (socket: Socket) => {
        this.accepted[i + 1]!++;
        forwarded.add(socket);
        // To drachtio-fsmrf, this is a connection to its own listener.
        internals._server.server.emit('connection', socket);
      }),
    );
  }

  /**
   * Opens `count - 1` listeners beside `server`'s. Resolves to null (logged)
   * when drachtio-fsmrf's internals are not as expected or a listener
   * cannot be opened; nothing is left open then.
   */
  static async attach(server: Mrf.MediaServer, count: number, log: Logger): Promise<OutboundListeners | null> {
    const internals = internalsOf(server);
    if (!internals) {
      log.warn('drachtio-fsmrf internals not found: FreeSWITCH connects back to one port only');
      return null;
    }
    const servers: Server[] = [];
    try {
      for (let i = 1; i < count; i++) servers.push(await listen(internals.listenAddress));
    } catch (err) {
      for (const s of servers) s.close();
      log.warn({ err: (err as Error).message }, 'cannot open more outbound event socket listeners: FreeSWITCH connects back to one port only');
      return null;
    }
    const ports = [internals.advertisedPort, ...servers.map((s) => (s.address() as { port: number }).port)];
    return new OutboundListeners(internals, servers, ports);
  }

  /** Makes the next endpoint's INVITE name the next port in turn; call right before `createEndpoint`. */
  useNext(): void {
    this.#internals.advertisedPort = this.ports[this.#next]!;
    this.#next = (this.#next + 1) % this.ports.length;
  }

  /** Closes the extra listeners (drachtio-fsmrf closes its own at disconnect); connections already accepted stay. */
  close(): void {
    for (const s of this.#servers) s.close();
  }
}

function listen(address: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, address, () => {
      server.off('error', reject);
      // A failed accept on an extra port is dropped, never thrown at the process.
      server.on('error', () => undefined);
      resolve(server);
    });
  });
}
