/**
 * The engine's one SIP user agent: npm `sip` (transactions, retransmission,
 * UDP and TCP transports) plus what it lacks — strong branch ids, a fixed
 * next hop per request, dispatch of incoming requests to dialogs by Call-ID,
 * bind checks, and closing the TCP connections it leaves open on destroy().
 * `sip` attaches no 'error' listener to its UDP socket or TCP server, and its
 * timers call our callbacks outside any try/catch: both are guarded here, so
 * a socket error or a bug in a handler is logged instead of ending the process.
 */
import dgram from 'node:dgram';
import dns from 'node:dns/promises';
import diagnostics from 'node:diagnostics_channel';
import net from 'node:net';
import sip from 'sip';
import type { Flow, Message, NameAddr, Stack, Via } from 'sip';
import type { Logger } from 'pino';
import type { GatewayTarget } from '../../telephony/TelephonyEngine.js';

/** Where a request physically goes, whatever its Request-URI says. */
export interface SipTarget {
  readonly protocol: 'UDP' | 'TCP';
  readonly address: string;
  readonly port: number;
}

export type InDialogHandler = (rq: Message) => void;

/** Told once when a listening socket of the stack died: no SIP traffic is possible any more. */
export type StackFailureHandler = (reason: string) => void;

export interface SipStackOptions {
  readonly host: string;
  readonly port: number;
  /** Host written into Via and Contact. */
  readonly publicHost: string;
}

export class SipStack {
  readonly #options: SipStackOptions;
  readonly #log: Logger;
  readonly #dialogs = new Map<string, InDialogHandler>();
  readonly #tcpSockets = new Set<net.Socket>();
  readonly #onFailure: StackFailureHandler;
  #stack: Stack | undefined;
  #failed = false;
  #failure = '';
  /** True only while `sip` runs synchronously on our behalf: client sockets opened then are ours. */
  #capturing = false;

  constructor(options: SipStackOptions, logger: Logger, onFailure: StackFailureHandler = () => {}) {
    this.#options = options;
    this.#log = logger;
    this.#onFailure = onFailure;
  }

  get running(): boolean {
    return this.#stack !== undefined;
  }

  /** Running and its sockets alive: new calls can be placed. */
  get usable(): boolean {
    return this.#stack !== undefined && !this.#failed;
  }

  get publicHost(): string {
    return this.#options.publicHost;
  }

  get port(): number {
    return this.#options.port;
  }

  async start(): Promise<void> {
    const { host, port, publicHost } = this.#options;
    // A busy port is reported here with a clear message, before `sip` tries to bind.
    if (!(await portsFree(host, port))) throw new Error(`SIP port ${host}:${port} (UDP or TCP) is in use`);
    diagnostics.subscribe('net.client.socket', this.#onClientSocket);
    diagnostics.subscribe('net.server.socket', this.#onServerSocket);
    this.#failed = false;
    const { result, udp, servers } = captureSockets(() =>
      sip.create(
        { address: host, port, publicAddress: publicHost, logger: { error: (e) => this.#log.error({ err: e }, 'sip stack error') } },
        this.#onRequest,
      ),
    );
    this.#stack = result;
    for (const socket of udp) this.#guardUdp(socket, result);
    for (const server of servers) this.#guardTcpServer(server, result);
    // Binding is asynchronous inside `sip`; the port turning busy tells us it is done.
    for (let i = 0; i < 100 && !this.#failed && (await portsFree(host, port, 'any')); i++) await sleep(10);
    if (this.#failed) {
      const reason = this.#failure;
      this.stop();
      throw new Error(reason);
    }
  }

  /** Destroys the stack and every TCP connection it opened or accepted. */
  stop(): void {
    const stack = this.#stack;
    this.#stack = undefined; // first: the sockets' close events must not count as failures
    try {
      stack?.destroy();
    } catch (err) {
      this.#log.error({ err }, 'destroying the SIP stack failed');
    }
    diagnostics.unsubscribe('net.client.socket', this.#onClientSocket);
    diagnostics.unsubscribe('net.server.socket', this.#onServerSocket);
    for (const socket of this.#tcpSockets) socket.destroy();
    this.#tcpSockets.clear();
    this.#dialogs.clear();
  }

  async resolve(gateway: GatewayTarget): Promise<SipTarget> {
    const address = net.isIP(gateway.host) ? gateway.host : (await dns.lookup(gateway.host, { family: 4 })).address;
    return { protocol: gateway.transport === 'tcp' ? 'TCP' : 'UDP', address, port: gateway.port };
  }

  addDialog(callId: string, handler: InDialogHandler): void {
    this.#dialogs.set(callId, handler);
  }

  removeDialog(callId: string): void {
    this.#dialogs.delete(callId);
  }

  /**
   * Sends a request in a new client transaction to `target`. `sip` gives its
   * Via a branch below 1e6, which collides across calls at a busy far end, so
   * the Via list pins `branch` (sip.js is sloppy-mode code: its overwrite is
   * silently ignored). A CANCEL keeps the Via it is given, as RFC 3261 wants.
   */
  request(rq: Message, target: SipTarget, branch: string, onResponse: (rs: Message) => void): void {
    if (rq.method !== 'CANCEL') rq.headers.via = viaListWithBranch(branch);
    // `sip` calls this from its own timers too (Timer B/F), outside any try/catch.
    this.#send(rq, target, (rs) => {
      try {
        onResponse(rs);
      } catch (err) {
        this.#log.error({ err, method: rq.method, status: rs.status }, 'response handler failed');
      }
    });
  }

  /** Sends an ACK for a 2xx; it has no transaction, only a fresh branch. */
  ack(ack: Message, target: SipTarget, branch: string): void {
    ack.headers.via = [{ params: { branch } }];
    this.#send(ack, target);
  }

  respond(rs: Message): void {
    try {
      this.#stack?.send(rs);
    } catch (err) {
      this.#log.error({ err, status: rs.status }, 'cannot send response');
    }
  }

  /**
   * A flow URI naming our own host as the first Route makes `sip` pop it and
   * send straight to the flow's address: the next hop is the gateway, and no
   * Route header for it goes on the wire.
   */
  #send(m: Message, target: SipTarget, onResponse?: (rs: Message) => void): void {
    const stack = this.#stack;
    if (!stack) {
      onResponse?.(sip.makeResponse(m, 503, 'Service Unavailable'));
      return;
    }
    const flow: Flow = { ...target, local: { address: this.#options.host, port: this.#options.port } };
    const hop: NameAddr = { uri: stack.encodeFlowUri(flow), params: {} };
    m.headers.route = [hop, ...(m.headers.route ?? [])];
    this.#capturing = true;
    try {
      stack.send(m, onResponse);
    } catch (err) {
      // Nothing went out and no transaction will answer: fail the request like an unreachable hop.
      this.#log.error({ err, method: m.method }, 'cannot send request');
      if (onResponse) setImmediate(onResponse, sip.makeResponse(m, 503, 'Service Unavailable'));
    } finally {
      this.#capturing = false;
    }
  }

  /**
   * A send error (e.g. EMSGSIZE, or a name that does not resolve) is logged and
   * the socket keeps working; a socket that is no longer bound, or closes
   * while we run, fails the stack. `send` on a dead socket throws
   * synchronously from `sip`'s retransmission timers, so it is wrapped too.
   */
  #guardUdp(socket: dgram.Socket, owner: Stack): void {
    socket.on('error', (err) => {
      this.#log.error({ err }, 'SIP UDP socket error');
      if (!isBound(socket)) this.#fail(owner, `SIP UDP socket failed: ${err.message}`);
    });
    let closed = false;
    socket.on('close', () => {
      closed = true;
      this.#fail(owner, 'SIP UDP socket closed');
    });
    // `sip`'s destroy() closes it again, which throws on a socket that already died.
    const close = socket.close;
    (socket as unknown as { close: (...args: unknown[]) => void }).close = (...args: unknown[]): void => {
      if (closed) return;
      closed = true;
      Reflect.apply(close, socket, args);
    };
    const send = socket.send;
    (socket as unknown as { send: (...args: unknown[]) => void }).send = (...args: unknown[]): void => {
      try {
        Reflect.apply(send, socket, args);
      } catch (err) {
        this.#log.warn({ err }, 'SIP UDP send failed');
      }
    };
  }

  #guardTcpServer(server: net.Server, owner: Stack): void {
    server.on('error', (err) => {
      this.#log.error({ err }, 'SIP TCP server error');
      if (!server.listening) this.#fail(owner, `SIP TCP listener failed: ${err.message}`);
    });
  }

  /** Only for the stack that owns the socket, and not when we closed it ourselves. */
  #fail(owner: Stack, reason: string): void {
    if (this.#stack !== owner || this.#failed) return;
    this.#failed = true;
    this.#failure = reason;
    this.#log.error({ reason }, 'SIP stack failed');
    this.#onFailure(reason);
  }

  readonly #onRequest = (rq: Message): void => {
    const handler = this.#dialogs.get(rq.headers['call-id'] ?? '');
    if (handler) return handler(rq);
    if (rq.method === 'ACK') return;
    this.#log.debug({ method: rq.method }, 'request outside any dialog');
    this.respond(rq.method === 'OPTIONS' ? sip.makeResponse(rq, 200, 'OK') : sip.makeResponse(rq, 481, 'Call/Transaction Does Not Exist'));
  };

  readonly #onClientSocket = (message: unknown): void => {
    if (this.#capturing) this.#track((message as { socket: net.Socket }).socket);
  };

  readonly #onServerSocket = (message: unknown): void => {
    const socket = (message as { socket: net.Socket }).socket;
    const { host, port } = this.#options;
    if (socket.localPort === port && (host === '0.0.0.0' || socket.localAddress === host)) this.#track(socket);
  };

  #track(socket: net.Socket): void {
    this.#tcpSockets.add(socket);
    socket.once('close', () => this.#tcpSockets.delete(socket));
  }
}

/** Runs `create` and returns the UDP sockets and TCP servers it made (`sip` does not expose them). */
function captureSockets<T>(create: () => T): { result: T; udp: dgram.Socket[]; servers: net.Server[] } {
  const udp: dgram.Socket[] = [];
  const servers: net.Server[] = [];
  const mutableDgram = dgram as { createSocket: typeof dgram.createSocket };
  const mutableNet = net as { createServer: typeof net.createServer };
  const { createSocket } = mutableDgram;
  const { createServer } = mutableNet;
  mutableDgram.createSocket = ((...args: Parameters<typeof createSocket>) => {
    const socket = createSocket(...args);
    udp.push(socket);
    return socket;
  }) as typeof createSocket;
  mutableNet.createServer = ((...args: Parameters<typeof createServer>) => {
    const server = createServer(...args);
    servers.push(server);
    return server;
  }) as typeof createServer;
  try {
    return { result: create(), udp, servers };
  } finally {
    mutableDgram.createSocket = createSocket;
    mutableNet.createServer = createServer;
  }
}

/** A socket whose bind failed still has a handle, at port 0. */
function isBound(socket: dgram.Socket): boolean {
  try {
    return socket.address().port !== 0;
  } catch {
    return false;
  }
}

function viaListWithBranch(branch: string): Via[] {
  const vias: Via[] = [];
  Object.defineProperty(vias, 'unshift', {
    value: (...items: Via[]): number => {
      for (const via of items) Object.defineProperty(via.params, 'branch', { value: branch, enumerable: true });
      return Array.prototype.unshift.apply(vias, items);
    },
  });
  return vias;
}

/** True when both UDP and TCP `port` are free ('all'), or when either is ('any'). */
async function portsFree(host: string, port: number, mode: 'all' | 'any' = 'all'): Promise<boolean> {
  const [udp, tcp] = await Promise.all([udpFree(host, port), tcpFree(host, port)]);
  return mode === 'all' ? udp && tcp : udp || tcp;
}

function udpFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
    socket.once('error', () => {
      socket.close(); // a failed bind keeps its handle open
      resolve(false);
    });
    socket.bind(port, host, () => socket.close(() => resolve(true)));
  });
}

function tcpFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
