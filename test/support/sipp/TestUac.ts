// A deliberately tiny SIP UAC (UDP or TCP) to drive the carrier in its
// self-tests: it records every response and request so tests can assert on
// codes, timing and headers. No retransmissions: it is meant for loopback.
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, type Socket as TcpSocket } from 'node:net';
import { SipCall } from './SipCall.js';
import { now, parseSipMessage, type SipMessage } from './sipMessage.js';

export interface TestUacOptions {
  transport?: 'udp' | 'tcp';
  /** Local address (default 127.0.0.1). */
  host?: string;
  /** Where every request goes (the carrier). */
  target: { host: string; port: number };
}

export interface InviteOptions {
  /** Our own RTP port offered in the SDP (where the carrier streams early media). */
  sdpPort?: number;
  /** Answer a 401/407 with digest credentials. */
  auth?: { user: string; password: string };
  /** Extra header lines, e.g. ['X-Test: 1']. */
  headers?: string[];
}

export class TestUac {
  private readonly calls = new Map<string, SipCall>();
  private udp: UdpSocket | undefined;
  private tcp: TcpSocket | undefined;
  private tcpBuffer = Buffer.alloc(0);
  /** Messages that matched no call (e.g. stray retransmissions). */
  readonly strays: SipMessage[] = [];

  private constructor(
    readonly transport: 'udp' | 'tcp',
    readonly host: string,
    public localPort: number,
    readonly target: { host: string; port: number },
  ) {}

  static async open(opts: TestUacOptions): Promise<TestUac> {
    const uac = new TestUac(opts.transport ?? 'udp', opts.host ?? '127.0.0.1', 0, opts.target);
    if (uac.transport === 'udp') {
      const sock = createSocket('udp4');
      await new Promise<void>((resolve, reject) => {
        sock.once('error', reject);
        sock.bind(0, uac.host, () => resolve());
      });
      sock.on('message', (msg) => uac.onData(msg));
      uac.udp = sock;
      uac.localPort = sock.address().port;
    } else {
      const sock = connect({ host: opts.target.host, port: opts.target.port, localAddress: uac.host });
      await new Promise<void>((resolve, reject) => {
        sock.once('error', reject);
        sock.once('connect', () => resolve());
      });
      sock.on('data', (chunk) => uac.onTcpData(chunk));
      sock.on('error', () => undefined); // the carrier going away ends the test anyway
      uac.tcp = sock;
      uac.localPort = sock.localPort ?? 0;
    }
    return uac;
  }

  get viaTransport(): string {
    return this.transport === 'tcp' ? 'TCP' : 'UDP';
  }

  get contact(): string {
    return `<sip:uac@${this.host}:${this.localPort}${this.transport === 'tcp' ? ';transport=tcp' : ''}>`;
  }

  /** Sends an INVITE to uri and returns the call that tracks it. */
  invite(uri: string, opts: InviteOptions = {}): SipCall {
    const call = new SipCall(this, uri, opts);
    this.calls.set(call.callId, call);
    call.sendInvite();
    return call;
  }

  send(text: string): void {
    const buf = Buffer.from(text);
    if (this.udp) this.udp.send(buf, this.target.port, this.target.host);
    else this.tcp?.write(buf);
  }

  private onTcpData(chunk: Buffer): void {
    this.tcpBuffer = Buffer.concat([this.tcpBuffer, chunk]);
    // Frame by Content-Length: SIP over TCP is a byte stream.
    for (;;) {
      const end = this.tcpBuffer.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = this.tcpBuffer.subarray(0, end).toString();
      const len = Number(/^(?:content-length|l)\s*:\s*(\d+)/im.exec(head)?.[1] ?? 0);
      if (this.tcpBuffer.length < end + 4 + len) return;
      const msg = this.tcpBuffer.subarray(0, end + 4 + len);
      this.tcpBuffer = this.tcpBuffer.subarray(end + 4 + len);
      this.onData(msg);
    }
  }

  private onData(buf: Buffer): void {
    const text = buf.toString();
    if (text.trim() === '') return; // keep-alive CRLF
    let msg: SipMessage;
    try {
      msg = parseSipMessage(text, now());
    } catch {
      return;
    }
    const call = this.calls.get(msg.header('call-id') ?? '');
    if (call) call.onMessage(msg);
    else this.strays.push(msg);
  }

  async close(): Promise<void> {
    if (this.udp) {
      const sock = this.udp;
      this.udp = undefined;
      await new Promise<void>((resolve) => sock.close(() => resolve()));
    }
    if (this.tcp) {
      this.tcp.destroy();
      this.tcp = undefined;
    }
  }
}
