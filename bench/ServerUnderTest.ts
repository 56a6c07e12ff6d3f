/**
 * The CTI server under test in its own process (`node --import tsx lib/main.ts`),
 * pinned to one core, configured through CTI_* variables: the embedded engine
 * and one gateway, the SIPp carrier, with limits high enough for the load.
 */
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { CpuMeter } from './CpuMeter.js';
import type { ProbeRecord } from './probe/serverProbe.js';
import type { ProcessGroup } from './ProcessGroup.js';
import { RpcClient } from './RpcClient.js';

export interface ServerOptions {
  readonly wsPort: number;
  /** The HTTP API's port (construct-path comparison). */
  readonly httpPort: number;
  readonly sipPort: number;
  readonly rtpPortMin: number;
  readonly rtpPortMax: number;
  readonly carrierHost: string;
  readonly carrierPort: number;
  /** Scratch folder: media, recordings, server.log, CPU profiles. */
  readonly dir: string;
  readonly cpu: string;
  /** Write a V8 CPU profile into `dir` on exit. */
  readonly cpuProfile: boolean;
  /** Extra V8/Node flags for the server process (`--node-flags`), to compare settings such as GC sizing. */
  readonly nodeFlags?: readonly string[];
  /** Events committed to the store (SQLite in `dir`) before they are sent, or numbered in memory only. */
  readonly durableEvents: boolean;
  /** A whole `engine` config (e.g. the drachtio engine's); absent: the embedded engine on sipPort and the RTP range. */
  readonly engine?: Readonly<Record<string, unknown>>;
}

export class ServerUnderTest {
  readonly #child: ChildProcess;
  readonly url: string;
  readonly httpUrl: string;
  readonly cpu: CpuMeter;
  readonly logPath: string;
  /** Where the probe loaded into the server writes its record when the server exits. */
  readonly #probePath: string;

  private constructor(child: ChildProcess, url: string, httpUrl: string, logPath: string, probePath: string) {
    this.#child = child;
    this.#probePath = probePath;
    this.url = url;
    this.httpUrl = httpUrl;
    this.cpu = new CpuMeter(child.pid ?? -1);
    this.logPath = logPath;
  }

  static async start(group: ProcessGroup, o: ServerOptions): Promise<ServerUnderTest> {
    const probePath = join(o.dir, o.durableEvents ? 'probe-durable.json' : 'probe-memory.json');
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      CTI_LOG_LEVEL: 'warn',
      CTI_LISTEN__HOST: '127.0.0.1',
      CTI_LISTEN__PORT: String(o.wsPort),
      CTI_HTTP__ENABLED: 'true',
      CTI_HTTP__PORT: String(o.httpPort),
      ...(o.engine
        ? { CTI_ENGINE: JSON.stringify(o.engine) }
        : {
            CTI_ENGINE__TYPE: 'embedded',
            CTI_ENGINE__SIP_HOST: '127.0.0.1',
            CTI_ENGINE__SIP_PORT: String(o.sipPort),
            CTI_ENGINE__RTP_HOST: '127.0.0.1',
            CTI_ENGINE__RTP_PORT_MIN: String(o.rtpPortMin),
            CTI_ENGINE__RTP_PORT_MAX: String(o.rtpPortMax),
          }),
      CTI_GATEWAYS: JSON.stringify([
        { name: 'carrier', host: o.carrierHost, port: o.carrierPort, transport: 'udp', maxConcurrentCalls: 10000, callerId: '1000' },
      ]),
      CTI_LIMITS__MAX_RESOURCES: '10000',
      // The bench measures the call path on loopback; authentication is off (docs/security.md).
      CTI_AUTH__MODE: 'none',
      CTI_MEDIA_DIR: join(o.dir, 'media'),
      CTI_RECORDINGS_DIR: join(o.dir, 'recordings'),
      CTI_DATA_DIR: join(o.dir, o.durableEvents ? 'data-durable' : 'data-memory'),
      CTI_DURABLE_EVENTS: String(o.durableEvents),
      BENCH_PROBE_FILE: probePath,
    };
    const nodeArgs = [...(o.nodeFlags ?? []), ...(o.cpuProfile ? ['--cpu-prof', `--cpu-prof-dir=${o.dir}`] : [])];
    const logPath = join(o.dir, o.durableEvents ? 'server.log' : 'server-memory-events.log');
    const log = createWriteStream(logPath);
    const child = group.spawn('taskset', ['-a', '-c', o.cpu, process.execPath, ...nodeArgs, '--import', 'tsx', '--import', './bench/probe/serverProbe.ts', 'lib/main.ts'], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.pipe(log);
    child.stderr?.pipe(log);
    const url = `ws://127.0.0.1:${o.wsPort}`;
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}; see ${logPath}`);
      try {
        (await RpcClient.connect(url)).close();
        break;
      } catch {
        if (Date.now() > deadline) throw new Error(`server not listening on ${url} after 20 s; see ${logPath}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    return new ServerUnderTest(child, url, `http://127.0.0.1:${o.httpPort}`, logPath, probePath);
  }

  /** What the server's probe recorded; null before the server exited or when it was killed (no record written). */
  probe(): ProbeRecord | null {
    return existsSync(this.#probePath) ? (JSON.parse(readFileSync(this.#probePath, 'utf8')) as ProbeRecord) : null;
  }

  get alive(): boolean {
    return this.#child.exitCode === null && this.#child.signalCode === null;
  }

  /** SIGTERM (the server's clean shutdown, which also writes a CPU profile), SIGKILL after `graceMs`. */
  async stop(graceMs = 15_000): Promise<void> {
    if (!this.alive) return;
    const exited = new Promise<void>((resolve) => this.#child.once('exit', () => resolve()));
    this.#child.kill('SIGTERM');
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }
}
