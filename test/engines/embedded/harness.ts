// Test harness of the embedded engine: a started engine, SIPp far ends and
// RTP "ears" (UDP sockets named in the far end's SDP), all torn down with the test.
import { spawn, spawnSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import dgram from 'node:dgram';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import type { EmbeddedEngineConfig } from '../../../lib/config/ServerConfig.js';
import type { Clock } from '../../../lib/util/Clock.js';
import type { DialRequest } from '../../../lib/telephony/TelephonyEngine.js';
import { EmbeddedEngine } from '../../../lib/engines/embedded/EmbeddedEngine.js';
import type { OutboundCall } from '../../../lib/engines/embedded/OutboundCall.js';
import type { CallLeg } from '../../../lib/telephony/TelephonyEngine.js';
import { freeSipPort, next, sleep } from '../../support/engineTestKit.js';
import { buildSipMessage, parseSipMessage, type SipMessage } from '../../support/sipp/sipMessage.js';

export { ended, next, sleep } from '../../support/engineTestKit.js';

export interface Teardown {
  teardown(fn: () => unknown): void;
}

export const ENGINE_HOST = '127.0.0.1';
export const FAR_HOST = '127.0.0.2';
export const EAR_HOST = '127.0.0.3';
export const SIPP_MISSING = 'install SIPp: apt-get install sip-tester';


export function sippInstalled(): boolean {
  return !spawnSync('sipp', ['-v']).error;
}

const logger = pino({ level: process.env.LOG_LEVEL ?? 'silent' });

/** A started engine on ENGINE_HOST; `clock` drives its session timers (default: the system clock). */
export async function startEngine(t: Teardown, config: Partial<EmbeddedEngineConfig> = {}, clock?: Clock): Promise<EmbeddedEngine> {
  const rtpBase = 20000 + 2 * randomInt(20000);
  const engine = new EmbeddedEngine(
    {
      type: 'embedded',
      sipHost: ENGINE_HOST,
      sipPort: await freeSipPort(ENGINE_HOST),
      rtpHost: ENGINE_HOST,
      rtpPortMin: rtpBase,
      rtpPortMax: rtpBase + 99,
      mediaTimeoutSeconds: 30,
      ...config,
    },
    logger,
    clock,
  );
  await engine.start();
  t.teardown(() => engine.stop());
  return engine;
}

export interface SippOptions {
  readonly transport?: 'udp' | 'tcp';
  /** Where the far end's SDP sends our RTP: a test ear, or SIPp's own echo port. */
  readonly mediaPort: number;
  readonly mediaHost?: string;
  /** A second media port for scenarios that move the far end's media (re-INVITE); defaults to mediaPort. */
  readonly mediaPort2?: number;
  readonly codec?: 'PCMU' | 'PCMA';
  readonly telephoneEventPt?: number;
  /** Makes SIPp echo RTP arriving on mediaPort (then mediaHost must be FAR_HOST). */
  readonly rtpEcho?: boolean;
  readonly timeoutSeconds?: number;
  /** More `-key name value` pairs for scenarios that need them. */
  readonly keys?: Readonly<Record<string, string>>;
}

export interface Sipp {
  readonly host: string;
  readonly port: number;
  /** SIPp's exit code (0: the call went through the scenario). */
  readonly exit: Promise<number | null>;
  /** SIPp's error log, for failure messages. */
  errors(): string;
  /** Every SIP message SIPp received, in order (from its message trace). */
  received(): string[];
}

const scenarioDir = join(fileURLToPath(new URL('.', import.meta.url)), 'sipp');

/** A DialRequest to a SIPp far end started by runSipp (the scenarios ignore the user part). */
export function requestTo(sipp: Pick<Sipp, 'host' | 'port'>, gateway: Partial<DialRequest['gateway']> = {}, label = 'test'): DialRequest {
  return {
    requestUri: `sip:13800000000@${FAR_HOST}:${sipp.port}`,
    fromUri: 'sip:075500000000@cti.test',
    gateway: { name: 'gw', host: sipp.host, port: sipp.port, transport: 'udp', ...gateway },
    label,
  };
}

/** Runs one call of a UAS scenario from ./sipp on FAR_HOST, killed with the test. */
export async function runSipp(t: Teardown, scenario: string, o: SippOptions): Promise<Sipp> {
  const port = await freeSipPort(FAR_HOST);
  const codec = o.codec ?? 'PCMU';
  const dir = mkdtempSync(join(tmpdir(), 'embedded-sipp-'));
  const args = [
    '-k', '2', String(o.timeoutSeconds ?? 30), 'sipp',
    '-sf', join(scenarioDir, `${scenario}.xml`),
    '-i', FAR_HOST, '-p', String(port), '-m', '1',
    '-t', o.transport === 'tcp' ? 't1' : 'u1',
    '-key', 'ear_ip', o.mediaHost ?? EAR_HOST,
    '-key', 'ear_port', String(o.mediaPort),
    '-key', 'ear_port2', String(o.mediaPort2 ?? o.mediaPort),
    '-key', 'codec', codec === 'PCMU' ? '0' : '8',
    '-key', 'codec_name', codec,
    '-key', 'te', String(o.telephoneEventPt ?? 101),
    ...Object.entries(o.keys ?? {}).flatMap(([name, value]) => ['-key', name, value]),
    '-nostdin', '-trace_err', '-trace_msg',
    ...(o.rtpEcho ? ['-rtp_echo', '-mi', FAR_HOST, '-mp', String(o.mediaPort)] : []),
  ];
  const child = spawn('timeout', args, { cwd: dir, stdio: 'ignore' });
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGTERM');
  });
  await waitUntilBound(FAR_HOST, port, o.transport ?? 'udp');
  const log = (suffix: string): string =>
    readdirSync(dir)
      .filter((f) => f.endsWith(suffix))
      .map((f) => readFileSync(join(dir, f), 'utf8'))
      .join('\n');
  return {
    host: FAR_HOST,
    port,
    exit,
    errors: () => log('errors.log'),
    // Each entry: a dashed timestamp line, "UDP message received [n] bytes :", a blank line, the message.
    received: () =>
      log('messages.log')
        .split(/^-{10,}.*$/m)
        .map((entry) => /message received \[\d+\] bytes :\s*\n\n([^]*)/.exec(entry)?.[1]?.trim())
        .filter((m): m is string => m !== undefined),
  };
}

async function waitUntilBound(host: string, port: number, transport: 'udp' | 'tcp'): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const busy = await new Promise<boolean>((resolve) => {
      if (transport === 'tcp') {
        const server = net.createServer();
        server.once('error', () => resolve(true));
        server.listen(port, host, () => server.close(() => resolve(false)));
      } else {
        const s = dgram.createSocket('udp4');
        s.once('error', () => resolve(true));
        s.bind(port, host, () => s.close(() => resolve(false)));
      }
    });
    if (busy) return;
    await sleep(20);
  }
  throw new Error(`SIPp did not bind ${host}:${port}`);
}

/** A UDP socket standing in for a phone's media port: records every packet it gets. */
export class Ear {
  readonly packets: { data: Buffer; at: number; from: dgram.RemoteInfo }[] = [];
  readonly #socket: dgram.Socket;

  private constructor(socket: dgram.Socket) {
    this.#socket = socket;
    socket.on('message', (data, from) => this.packets.push({ data, at: performance.now(), from }));
  }

  static async open(t: Teardown, host = EAR_HOST): Promise<Ear> {
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, host, resolve));
    const ear = new Ear(socket);
    t.teardown(() => ear.close());
    return ear;
  }

  get port(): number {
    return this.#socket.address().port;
  }

  send(packet: Buffer, port: number, host = ENGINE_HOST): Promise<void> {
    return new Promise((resolve, reject) => this.#socket.send(packet, port, host, (err) => (err ? reject(err) : resolve())));
  }

  /** Resolves once `n` packets arrived (or rejects after `ms`). */
  async waitFor(n: number, ms = 5000): Promise<void> {
    const until = performance.now() + ms;
    while (this.packets.length < n) {
      if (performance.now() > until) throw new Error(`ear got ${this.packets.length} of ${n} packets`);
      await sleep(10);
    }
  }

  close(): void {
    try {
      this.#socket.close();
    } catch {
      // already closed
    }
  }
}

/** An RTP packet: 12-byte header (version 2, `pt`, `seq`, timestamp seq·160, `ssrc`) and 160 bytes of `byte`. */
export function rtp(pt: number, seq: number, byte: number, ssrc = 0x1234): Buffer {
  const p = Buffer.alloc(172, byte);
  p[0] = 0x80;
  p[1] = pt;
  p.writeUInt16BE(seq, 2);
  p.writeUInt32BE(seq * 160, 4);
  p.writeUInt32BE(ssrc, 8);
  return p;
}

/** A leg answered by SIPp's `answer` scenario whose SDP names `ear`. */
export async function answeredLeg(t: Teardown, engine: EmbeddedEngine, ear: Ear, o: Partial<SippOptions> = {}): Promise<CallLeg> {
  const sipp = await runSipp(t, 'answer', { mediaPort: ear.port, ...o });
  const leg = engine.dial(requestTo(sipp, {}, 'media'));
  await next(leg, 'answered');
  return leg;
}

/** The engine's RTP port of a leg (where the far end sends). */
export async function rtpPort(leg: CallLeg): Promise<number> {
  const session = await (leg as OutboundCall).media();
  if (!session) throw new Error('leg has no media');
  return session.port;
}

/**
 * A carrier played by the test itself over UDP on `host`: it keeps every
 * message the engine sends and sends whatever the test writes, so a test
 * can fork an INVITE, forge tags or answer a refresh with any status.
 */
export class ScriptedCarrier {
  readonly messages: SipMessage[] = [];
  readonly host: string;
  readonly #socket: dgram.Socket;
  readonly #enginePort: number;

  private constructor(socket: dgram.Socket, host: string, enginePort: number) {
    this.#socket = socket;
    this.host = host;
    this.#enginePort = enginePort;
    socket.on('message', (m) => this.messages.push(parseSipMessage(m.toString('utf8'), performance.now())));
  }

  static async open(t: Teardown, host: string, enginePort: number): Promise<ScriptedCarrier> {
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, host, resolve));
    t.teardown(() => socket.close());
    return new ScriptedCarrier(socket, host, enginePort);
  }

  get port(): number {
    return this.#socket.address().port;
  }

  send(text: string): Promise<void> {
    return new Promise((resolve, reject) => this.#socket.send(Buffer.from(text), this.#enginePort, ENGINE_HOST, (e) => (e ? reject(e) : resolve())));
  }

  /** The first message `match` accepts, waiting up to `ms` for it; undefined when none came. */
  async waitFor(match: (m: SipMessage) => boolean, ms = 3000): Promise<SipMessage | undefined> {
    const until = performance.now() + ms;
    for (;;) {
      const found = this.messages.find(match);
      if (found || performance.now() > until) return found;
      await sleep(10);
    }
  }

  /** Answers the request `rq` with `status` ("200 OK"): its Via, From, Call-ID and CSeq, its To with `toTag` when it has none. */
  reply(rq: SipMessage, status: string, toTag: string, headers: readonly string[] = [], body = ''): Promise<void> {
    const to = rq.header('to') ?? '';
    return this.send(buildSipMessage(`SIP/2.0 ${status}`, [
      ...rq.headers.filter(([name]) => name === 'via').map(([, value]) => `Via: ${value}`),
      `From: ${rq.header('from') ?? ''}`,
      `To: ${/;tag=/.test(to) ? to : `${to};tag=${toTag}`}`,
      `Call-ID: ${rq.header('call-id') ?? ''}`,
      `CSeq: ${rq.header('cseq') ?? ''}`,
      `Contact: <sip:far@${this.host}:${this.port}>`,
      ...headers,
      ...(body ? ['Content-Type: application/sdp'] : []),
    ], body));
  }
}

/** A far end's SDP offering PCMU (and telephone-event 101) on `ear`. */
export function earSdp(ear: Ear): string {
  return ['v=0', `o=- 1 1 IN IP4 ${EAR_HOST}`, 's=-', `c=IN IP4 ${EAR_HOST}`, 't=0 0', `m=audio ${ear.port} RTP/AVP 0 101`, 'a=rtpmap:0 PCMU/8000', 'a=rtpmap:101 telephone-event/8000', ''].join('\r\n');
}
