/**
 * The SIP transports (UDP and TCP, RFC 3261 §18) of the embedded engine, in
 * place of npm `sip`'s: bytes in and out through SipWire, and bounds on all
 * a stranger can make us hold —
 *
 * - a message (header block + body) is at most `maxMessageBytes`; a TCP
 *   connection buffers at most one such message;
 * - at most `maxTcpConnections` TCP connections in all (ours and accepted) and
 *   `maxTcpConnectionsPerSource` accepted ones per remote address: more are
 *   closed at once;
 * - a TCP connection no transaction uses is closed after `tcpIdleMs` without
 *   traffic;
 * - a malformed request is answered 400 (413 when too large) where it can be
 *   addressed, otherwise dropped; a stream that lost its framing is closed.
 *
 * Nothing here throws to a socket handler. `SipConnection` has the shape
 * `sip`'s transaction layer expects of a transport flow.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import sip from 'sip';
import type { Message } from 'sip';
import type { Logger } from 'pino';
import { SipStreamFramer, WireError, encodeMessage, parseDatagram, requestOf } from './SipWire.js';

export type SipProtocol = 'UDP' | 'TCP';

/** A remote transport address. */
export interface SipPeer {
  readonly protocol: SipProtocol;
  readonly address: string;
  readonly port: number;
}

/** Where a message goes: `sip`'s transaction layer calls send() per (re)transmission and release() when done. */
export interface SipConnection {
  readonly protocol: SipProtocol;
  send(m: Message): void;
  release(): void;
}

export interface SipTransportLimits {
  /** Largest SIP message accepted (header block + body), bytes. */
  readonly maxMessageBytes: number;
  /** TCP connections at once, in and out. */
  readonly maxTcpConnections: number;
  /** Accepted TCP connections at once from one remote address. */
  readonly maxTcpConnectionsPerSource: number;
  /** A TCP connection without traffic and without a transaction on it closes after this, ms. */
  readonly tcpIdleMs: number;
}

export interface SipTransportOptions {
  readonly host: string;
  readonly port: number;
  /** Host written into the Via of our requests. */
  readonly publicHost: string;
  readonly limits: SipTransportLimits;
}

/** A received message, the peer it came from, and the flow to answer it on (release it when done). */
export type InboundHandler = (m: Message, from: SipPeer, reply: () => SipConnection) => void;

export class SipTransport {
  readonly #options: SipTransportOptions;
  readonly #log: Logger;
  readonly #onMessage: InboundHandler;
  readonly #onFailure: (reason: string) => void;
  /** Every open TCP connection, by remote "address:port". */
  readonly #tcp = new Map<string, TcpFlow>();
  /** Accepted TCP connections per remote address. */
  readonly #perSource = new Map<string, number>();
  #udp: dgram.Socket | undefined;
  #server: net.Server | undefined;
  #closing = false;

  constructor(options: SipTransportOptions, log: Logger, onMessage: InboundHandler, onFailure: (reason: string) => void) {
    this.#options = options;
    this.#log = log;
    this.#onMessage = onMessage;
    this.#onFailure = onFailure;
  }

  /** Open TCP connections (for tests and metrics). */
  get tcpConnections(): number {
    return this.#tcp.size;
  }

  /** Binds UDP and TCP on host:port; rejects (and holds nothing) when either cannot be bound. */
  async start(): Promise<void> {
    const { host, port } = this.#options;
    this.#closing = false;
    const udp = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
    const server = net.createServer((socket) => this.#accept(socket));
    try {
      await new Promise<void>((resolve, reject) => {
        udp.once('error', reject);
        udp.bind(port, host, () => {
          udp.off('error', reject);
          resolve();
        });
      });
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      udp.close();
      server.close();
      throw new Error(`SIP port ${host}:${port} (UDP or TCP) cannot be bound: ${(err as Error).message}`, { cause: err });
    }
    udp.on('message', (data, rinfo) => this.#onDatagram(data, rinfo));
    udp.on('error', (err) => this.#log.warn({ err }, 'SIP UDP socket error'));
    udp.on('close', () => {
      this.#udp = undefined; // closing it again would throw
      this.#died('SIP UDP socket closed');
    });
    server.on('error', (err) => this.#log.error({ err }, 'SIP TCP listener error'));
    server.on('close', () => this.#died('SIP TCP listener closed'));
    this.#udp = udp;
    this.#server = server;
  }

  stop(): void {
    this.#closing = true;
    this.#udp?.close();
    this.#server?.close();
    this.#udp = undefined;
    this.#server = undefined;
    for (const flow of this.#tcp.values()) flow.socket.destroy();
    this.#tcp.clear();
    this.#perSource.clear();
  }

  /**
   * A flow to `peer` for a new client transaction or an ACK: UDP from our
   * socket; TCP over an open connection to that address and port, or a new
   * one. `onError` is told when a TCP connection fails or closes while the
   * flow is held (the transaction then fails with 503).
   */
  open(peer: SipPeer, onError: (err: Error) => void): SipConnection {
    if (peer.protocol === 'UDP') return this.#udpFlow(peer.address, peer.port);
    let flow = this.#tcp.get(key(peer.address, peer.port));
    if (!flow) {
      if (this.#tcp.size >= this.#options.limits.maxTcpConnections) {
        setImmediate(onError, new Error('too many TCP connections'));
        return this.#deadFlow();
      }
      const socket = net.connect({ host: peer.address, port: peer.port });
      flow = this.#track(socket, peer.address, peer.port, false);
    }
    return flow.hold(onError);
  }

  /** Sends `m` once over a new or open flow to `peer` (an ACK for a 2xx, a stateless response). */
  sendOnce(peer: SipPeer, m: Message): void {
    const flow = this.open(peer, (err) => this.#log.debug({ err }, 'TCP flow failed after a one-off send'));
    flow.send(m);
    flow.release();
  }

  /** Stamps our sent-by on a request's top Via (RFC 3261 §18.1.1), then writes it. */
  #encode(m: Message, protocol: SipProtocol): Buffer | undefined {
    if (m.method) {
      const via = m.headers.via?.[0];
      if (via) {
        via.host = this.#options.publicHost;
        via.port = this.#options.port;
        via.protocol = protocol;
        if (protocol === 'UDP') via.params.rport = null;
      }
    }
    try {
      return encodeMessage(m);
    } catch (err) {
      this.#log.error({ err, method: m.method, status: m.status }, 'refused to send an unsafe SIP message');
      return undefined;
    }
  }

  #udpFlow(address: string, port: number): SipConnection {
    return {
      protocol: 'UDP',
      send: (m) => {
        const bytes = this.#encode(m, 'UDP');
        const udp = this.#udp;
        if (!bytes || !udp) return;
        try {
          udp.send(bytes, port, address, (err) => {
            if (err) this.#log.warn({ err, address, port }, 'SIP UDP send failed');
          });
        } catch (err) {
          this.#log.warn({ err, address, port }, 'SIP UDP send failed'); // the socket died under us
        }
      },
      release: () => {},
    };
  }

  #deadFlow(): SipConnection {
    return { protocol: 'TCP', send: () => {}, release: () => {} };
  }

  #onDatagram(data: Buffer, rinfo: dgram.RemoteInfo): void {
    const peer: SipPeer = { protocol: 'UDP', address: rinfo.address, port: rinfo.port };
    let m: Message;
    try {
      m = parseDatagram(data, this.#options.limits.maxMessageBytes);
    } catch (err) {
      if (!(err instanceof WireError)) throw err;
      this.#malformed(err, requestOf(datagramHead(data)), () => this.#udpFlow(rinfo.address, rinfo.port), peer);
      return;
    }
    this.#deliver(m, peer, () => this.#udpFlow(rinfo.address, rinfo.port));
  }

  /** RFC 3261 §18.2.1: note where a request really came from, for responses and rport. */
  #deliver(m: Message, peer: SipPeer, reply: () => SipConnection): void {
    if (m.method) {
      const via = m.headers.via![0]!;
      via.params.received = peer.address;
      if (peer.protocol === 'UDP' && Object.hasOwn(via.params, 'rport')) via.params.rport = String(peer.port);
    }
    try {
      this.#onMessage(m, peer, reply);
    } catch (err) {
      this.#log.error({ err, method: m.method, status: m.status }, 'handling a SIP message failed');
    }
  }

  #malformed(err: WireError, rq: Message | undefined, reply: () => SipConnection, peer: SipPeer): void {
    this.#log.debug({ reason: err.message, address: peer.address, port: peer.port }, 'malformed SIP message');
    if (!rq || rq.method === 'ACK') return;
    const flow = reply();
    flow.send(sip.makeResponse(rq, err.status, err.status === 413 ? 'Message Too Large' : `Bad Request (${err.message})`));
    flow.release();
  }

  #accept(socket: net.Socket): void {
    const address = socket.remoteAddress;
    const port = socket.remotePort;
    const { maxTcpConnections, maxTcpConnectionsPerSource } = this.#options.limits;
    const fromSource = this.#perSource.get(address ?? '') ?? 0;
    if (!address || port === undefined || this.#closing || this.#tcp.size >= maxTcpConnections || fromSource >= maxTcpConnectionsPerSource) {
      this.#log.warn({ address, connections: this.#tcp.size, fromSource }, 'SIP TCP connection refused (limit)');
      socket.on('error', () => {});
      socket.destroy();
      return;
    }
    this.#perSource.set(address, fromSource + 1);
    socket.once('close', () => {
      const n = (this.#perSource.get(address) ?? 1) - 1;
      if (n > 0) this.#perSource.set(address, n);
      else this.#perSource.delete(address);
    });
    this.#track(socket, address, port, true);
  }

  #track(socket: net.Socket, address: string, port: number, inbound: boolean): TcpFlow {
    const id = key(address, port);
    const flow = new TcpFlow(socket, (m) => this.#encode(m, 'TCP'));
    const peer: SipPeer = { protocol: 'TCP', address, port };
    const framer = new SipStreamFramer(this.#options.limits.maxMessageBytes, {
      message: (m) => this.#deliver(m, peer, () => flow.hold(() => {})),
      malformed: (err, head) => {
        this.#malformed(err, requestOf(head), () => flow.hold(() => {}), peer);
        if (framer.failed) socket.end(); // the stream lost its framing: nothing after this can be read
      },
    });
    this.#tcp.set(id, flow);
    socket.on('data', (chunk: Buffer) => framer.push(chunk));
    socket.on('error', (err) => this.#log.debug({ err, address, port, inbound }, 'SIP TCP connection error'));
    const idleMs = this.#options.limits.tcpIdleMs;
    socket.setTimeout(idleMs);
    socket.on('timeout', () => {
      if (!flow.held) socket.destroy();
      else socket.setTimeout(idleMs); // a transaction still waits on it: look again after another period
    });
    socket.once('close', () => {
      if (this.#tcp.get(id) === flow) this.#tcp.delete(id);
      flow.closed();
    });
    return flow;
  }

  #died(reason: string): void {
    if (this.#closing) return;
    this.#log.error({ reason }, 'SIP transport failed');
    this.#onFailure(reason);
  }
}

/** One TCP connection: reference-counted by the transactions using it, like `sip`'s stream flows. */
class TcpFlow {
  readonly socket: net.Socket;
  readonly #encode: (m: Message) => Buffer | undefined;
  readonly #holders = new Set<(err: Error) => void>();

  constructor(socket: net.Socket, encode: (m: Message) => Buffer | undefined) {
    this.socket = socket;
    this.#encode = encode;
  }

  get held(): boolean {
    return this.#holders.size > 0;
  }

  hold(onError: (err: Error) => void): SipConnection {
    // One holder entry per hold, even for the same callback.
    const holder = (err: Error): void => onError(err);
    this.#holders.add(holder);
    if (this.socket.destroyed) setImmediate(() => this.closed());
    return {
      protocol: 'TCP',
      send: (m) => {
        const bytes = this.#encode(m);
        if (bytes && !this.socket.destroyed) this.socket.write(bytes);
      },
      release: () => void this.#holders.delete(holder),
    };
  }

  /** Tells every holder the connection is gone (their transactions fail with 503). */
  closed(): void {
    const holders = [...this.#holders];
    this.#holders.clear();
    for (const holder of holders) holder(new Error('TCP connection closed'));
  }
}

function key(address: string, port: number): string {
  return `${address}:${port}`;
}

/** The header block of a datagram, when it has one (to answer a malformed request 400). */
function datagramHead(data: Buffer): Buffer | undefined {
  const end = data.indexOf('\r\n\r\n');
  return end < 0 ? undefined : data.subarray(0, end);
}
