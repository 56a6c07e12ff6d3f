// Runs test/sipp/carrier.xml: one SIPp UAS that plays every far-end phone,
// chosen by the Request-URI user part (grammar in test/sipp/README.md).
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, readlink } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { toneSamples, writeUlawRaw } from '../audio/signal.js';

export type SipTransport = 'udp' | 'tcp';

export interface SippCarrierOptions {
  /** Loopback address to listen on (default 127.0.0.2, away from the server's 127.0.0.1). */
  host?: string;
  /** SIP port; 0 or omitted = a free one. */
  port?: number;
  transport?: SipTransport;
  /** Address put in answer SDPs next to the <ear> port (default 127.0.0.1). */
  earHost?: string;
  /** Credentials that auth-<ear> accepts. */
  authUser?: string;
  authPassword?: string;
  /** Frequency of the early-media tone (default 440 Hz). */
  earlyToneHz?: number;
  /** SIPp media port for early media; omitted = SIPp picks from 6000 upwards. */
  mediaPort?: number;
  /** Record every SIP message to messages.log (default true; turn off under load). */
  traceMessages?: boolean;
  /** More SIPp arguments, e.g. ['-buff_size', '1048576']. */
  extraArgs?: string[];
  /** Give up if SIPp is not listening after this long (default 5000 ms). */
  startTimeoutMs?: number;
  /** Hard cap on the SIPp process lifetime in seconds (default 600), like timeout(1). */
  maxLifetimeSec?: number;
  sippPath?: string;
}

/** Cumulative counters from SIPp's -trace_stat CSV. */
export interface CarrierStats {
  totalCalls: number;
  currentCalls: number;
  successfulCalls: number;
  failedCalls: number;
  failedUnexpectedMessage: number;
  failedMaxUdpRetrans: number;
  /** Every column of the last CSV row, by header name. */
  raw: Record<string, string>;
}

export interface StopResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** True when SIGTERM was not enough and SIGKILL was needed. */
  killed: boolean;
}

const HERE = dirname(fileURLToPath(import.meta.url));
/** Absolute path of the scenario, for tests that run SIPp themselves. */
export const CARRIER_SCENARIO = join(HERE, '..', '..', 'sipp', 'carrier.xml');

async function freePort(host: string, transport: SipTransport): Promise<number> {
  if (transport === 'tcp') {
    const srv = createServer();
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(0, host, () => resolve());
    });
    const addr = srv.address();
    await new Promise<void>((resolve) => srv.close(() => resolve()));
    if (addr === null || typeof addr === 'string') throw new Error('no TCP port');
    return addr.port;
  }
  const sock = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(0, host, () => resolve());
  });
  const port = sock.address().port;
  await new Promise<void>((resolve) => sock.close(() => resolve()));
  return port;
}

/**
 * Whether process `pid` has a socket bound/listening on host:port, from /proc
 * (Linux). The socket must be the process's own: with the port already taken
 * by another SIPp, that one's socket would otherwise pass for the new SIPp's
 * before the new one exits with its bind error.
 */
async function isListening(host: string, port: number, transport: SipTransport, pid: number): Promise<boolean> {
  const hex = (n: number, width: number): string => n.toString(16).toUpperCase().padStart(width, '0');
  const ip = host.split('.').map(Number);
  const ipHex = hex((((ip[3] ?? 0) << 24) | ((ip[2] ?? 0) << 16) | ((ip[1] ?? 0) << 8) | (ip[0] ?? 0)) >>> 0, 8);
  const wanted = [`${ipHex}:${hex(port, 4)}`, `00000000:${hex(port, 4)}`];
  const table = await readFile(`/proc/net/${transport}`, 'utf8');
  const inodes = table.split('\n').flatMap((line) => {
    const cols = line.trim().split(/\s+/);
    const local = cols[1] ?? '';
    // TCP must be in LISTEN (0A); any bound UDP socket will do.
    return wanted.includes(local) && (transport === 'udp' || cols[3] === '0A') ? [`socket:[${cols[9]}]`] : [];
  });
  if (inodes.length === 0) return false;
  const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
  for (const fd of fds) {
    const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
    if (inodes.includes(target)) return true;
  }
  return false;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class SippCarrier {
  private exited: Promise<StopResult>;
  private exitInfo: StopResult | undefined;
  private stopping: Promise<StopResult> | undefined;

  private constructor(
    private readonly child: ChildProcess,
    readonly host: string,
    readonly port: number,
    readonly transport: SipTransport,
    /** Folder with sipp.out, errors.log, messages.log, stats.csv and the tone file. */
    readonly logDir: string,
    readonly authUser: string,
    readonly authPassword: string,
  ) {
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitInfo = { code, signal, killed: signal === 'SIGKILL' };
        resolve(this.exitInfo);
      });
    });
  }

  static async start(opts: SippCarrierOptions = {}): Promise<SippCarrier> {
    const host = opts.host ?? '127.0.0.2';
    const transport = opts.transport ?? 'udp';
    const port = opts.port || (await freePort(host, transport));
    const authUser = opts.authUser ?? 'carrier';
    const authPassword = opts.authPassword ?? 'secret';
    const logDir = await mkdtemp(join(tmpdir(), 'sipp-carrier-'));
    // The early-media tone is generated, not committed: 1 s of tone, looped by SIPp.
    const tonePath = join(logDir, 'early-tone.ulaw');
    await writeUlawRaw(tonePath, toneSamples(opts.earlyToneHz ?? 440, 1000));

    const args = [
      '-sf', CARRIER_SCENARIO,
      '-i', host,
      '-p', String(port),
      '-t', transport === 'tcp' ? 't1' : 'u1',
      '-nostdin',
      '-key', 'earhost', opts.earHost ?? '127.0.0.1',
      '-key', 'authuser', authUser,
      '-key', 'authpass', authPassword,
      '-key', 'rtpstream', `${tonePath},-1,0`,
      '-trace_err', '-error_file', join(logDir, 'errors.log'),
      '-trace_stat', '-stf', join(logDir, 'stats.csv'), '-fd', '1',
      '-f', '10',
    ];
    if (opts.mediaPort) args.push('-mi', host, '-mp', String(opts.mediaPort));
    if (opts.traceMessages ?? true) args.push('-trace_msg', '-message_file', join(logDir, 'messages.log'));
    args.push(...(opts.extraArgs ?? []));

    const child = spawn(opts.sippPath ?? 'sipp', args, { cwd: logDir, stdio: ['ignore', 'pipe', 'pipe'] });
    const out = createWriteStream(join(logDir, 'sipp.out'));
    // Two streams into one file: end it only when both are done.
    child.stdout?.pipe(out, { end: false });
    child.stderr?.pipe(out, { end: false });
    child.once('close', () => out.end());
    out.on('error', () => undefined);
    const carrier = new SippCarrier(child, host, port, transport, logDir, authUser, authPassword);
    // Like timeout(1): a forgotten carrier cannot outlive the test run.
    const lifetime = setTimeout(() => void carrier.stop(), (opts.maxLifetimeSec ?? 600) * 1000);
    lifetime.unref();
    void carrier.exited.then(() => clearTimeout(lifetime));

    const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
    const deadline = Date.now() + (opts.startTimeoutMs ?? 5000);
    for (;;) {
      const failed = await Promise.race([spawnError, sleep(50).then(() => undefined)]);
      if (failed) throw new Error(`cannot run SIPp: ${failed.message} (install sip-tester)`);
      if (carrier.exitInfo) {
        const log = await carrier.output();
        throw new Error(`SIPp exited at start (code ${carrier.exitInfo.code}); ${logDir}/sipp.out:\n${log.slice(-2000)}`);
      }
      if (child.pid !== undefined && (await isListening(host, port, transport, child.pid))) return carrier;
      if (Date.now() > deadline) {
        await carrier.stop();
        throw new Error(`SIPp not listening on ${host}:${port}/${transport} after start timeout; see ${logDir}`);
      }
    }
  }

  /** sip:<user>@<host>:<port>, with ;transport=tcp for the TCP variant. */
  uri(userPart: string): string {
    return `sip:${userPart}@${this.host}:${this.port}${this.transport === 'tcp' ? ';transport=tcp' : ''}`;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.exitInfo === undefined;
  }

  /** SIPp's screen output so far. */
  async output(): Promise<string> {
    const p = join(this.logDir, 'sipp.out');
    return existsSync(p) ? readFile(p, 'utf8') : '';
  }

  /** Unexpected messages and ontimeout jumps (the latter are normal). */
  async errors(): Promise<string> {
    const p = join(this.logDir, 'errors.log');
    return existsSync(p) ? readFile(p, 'utf8') : '';
  }

  /** All SIP messages SIPp sent and received (when traceMessages is on). */
  async messages(): Promise<string> {
    const p = join(this.logDir, 'messages.log');
    return existsSync(p) ? readFile(p, 'utf8') : '';
  }

  /**
   * Counters from the stats CSV. SIPp rewrites it every second and once more
   * on exit, so call after stop() for exact numbers.
   */
  async stats(): Promise<CarrierStats> {
    const p = join(this.logDir, 'stats.csv');
    const text = existsSync(p) ? await readFile(p, 'utf8') : '';
    const lines = text.split('\n').filter((l) => l.trim() !== '');
    const header = (lines[0] ?? '').split(';');
    const last = (lines.length > 1 ? lines[lines.length - 1] ?? '' : '').split(';');
    const raw: Record<string, string> = {};
    header.forEach((h, i) => (raw[h] = last[i] ?? ''));
    const n = (k: string): number => Number(raw[k] ?? 0) || 0;
    return {
      totalCalls: n('TotalCallCreated'),
      currentCalls: n('CurrentCall'),
      successfulCalls: n('SuccessfulCall(C)'),
      failedCalls: n('FailedCall(C)'),
      failedUnexpectedMessage: n('FailedUnexpectedMessage(C)'),
      failedMaxUdpRetrans: n('FailedMaxUDPRetrans(C)'),
      raw,
    };
  }

  /** SIGTERM (SIPp then writes final stats), SIGKILL after graceMs. Idempotent. */
  stop(graceMs = 3000): Promise<StopResult> {
    if (this.exitInfo) return Promise.resolve(this.exitInfo);
    this.stopping ??= (async () => {
      this.child.kill('SIGTERM');
      const t = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
      const r = await this.exited;
      clearTimeout(t);
      return r;
    })();
    return this.stopping;
  }
}
