// A drachtio-server and a FreeSWITCH started for one test run, on free loopback
// ports, from the config files in test/telephony-config/ (placeholders filled in),
// in a temporary run dir. Killed by stop(), and on process exit at the latest.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DrachtioEngineConfig } from '../../../lib/config/ServerConfig.js';

const CONFIG_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'telephony-config');
const START_TIMEOUT_MS = 20_000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function freeTcpPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no free port');
  return address.port;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Copies a config file with @NAME@ placeholders replaced. */
async function fillIn(name: string, to: string, values: Record<string, string | number>): Promise<void> {
  let text = await readFile(join(CONFIG_DIR, name), 'utf8');
  for (const [key, value] of Object.entries(values)) text = text.replaceAll(`@${key}@`, String(value));
  await writeFile(to, text);
}

function run(bin: string, args: string[], logFile: string): ChildProcess {
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const log = createWriteStream(logFile);
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  return child;
}

async function kill(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const force = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(force);
}

export class LocalServers {
  #drachtio: ChildProcess | undefined;
  #freeswitch: ChildProcess | undefined;
  readonly #killAll = (): void => {
    this.#drachtio?.kill('SIGKILL');
    this.#freeswitch?.kill('SIGKILL');
  };

  private constructor(
    /** Run dir: configs, logs, FreeSWITCH's db/run/tmp dirs. */
    readonly dir: string,
    readonly adminPort: number,
    readonly secret: string,
    readonly eslPort: number,
    readonly eslPassword: string,
  ) {
    process.once('exit', this.#killAll);
  }

  static async start(): Promise<LocalServers> {
    const dir = await mkdtemp(join(tmpdir(), 'drachtio-engine-test-'));
    const rtpStart = 16000 + 2 * randomInt(4000);
    const servers = new LocalServers(dir, await freeTcpPort(), randomBytes(6).toString('hex'), await freeTcpPort(), 'ClueCon');
    await fillIn('drachtio.conf.xml', join(dir, 'drachtio.conf.xml'), {
      ADMIN_PORT: servers.adminPort,
      SECRET: servers.secret,
      SIP_PORT: await freeTcpPort(),
    });
    await mkdir(join(dir, 'fs'), { recursive: true });
    for (const sub of ['log', 'db', 'run', 'tmp']) await mkdir(join(dir, 'fs', sub), { recursive: true });
    await fillIn('freeswitch.xml', join(dir, 'fs', 'freeswitch.xml'), {
      ESL_PORT: servers.eslPort,
      ESL_PASSWORD: servers.eslPassword,
      SIP_PORT: await freeTcpPort(),
      RTP_START: rtpStart,
      RTP_END: rtpStart + 999,
    });
    try {
      await Promise.all([servers.startDrachtio(), servers.startFreeswitch()]);
    } catch (err) {
      await servers.stop();
      throw err;
    }
    return servers;
  }

  engineConfig(): DrachtioEngineConfig {
    return {
      type: 'drachtio',
      drachtio: { host: '127.0.0.1', port: this.adminPort, secret: this.secret },
      freeswitch: [{ host: '127.0.0.1', port: this.eslPort, secret: this.eslPassword }],
      eslListenHost: '127.0.0.1',
    };
  }

  /** (Re)starts drachtio-server unless running, and waits for its admin port. */
  async startDrachtio(): Promise<void> {
    if (this.#drachtio) return;
    this.#drachtio = run('drachtio', ['-f', join(this.dir, 'drachtio.conf.xml')], join(this.dir, `drachtio-${Date.now()}.log`));
    await this.#waitFor(this.adminPort, () => this.#drachtio, 'drachtio');
  }

  async stopDrachtio(): Promise<void> {
    await kill(this.#drachtio);
    this.#drachtio = undefined;
  }

  /** (Re)starts FreeSWITCH unless running, and waits for its event socket. */
  async startFreeswitch(): Promise<void> {
    if (this.#freeswitch) return;
    const fs = join(this.dir, 'fs');
    const args = ['-nonat', '-nc', '-nf', '-conf', fs, '-log', join(fs, 'log'), '-db', join(fs, 'db'), '-run', join(fs, 'run'), '-temp', join(fs, 'tmp')];
    this.#freeswitch = run('freeswitch', args, join(fs, 'log', 'stdout.log'));
    await this.#waitFor(this.eslPort, () => this.#freeswitch, 'freeswitch');
  }

  /**
   * Freezes FreeSWITCH (SIGSTOP), so that whatever the engine asks of it
   * hangs, until the returned function resumes it (SIGCONT).
   */
  pauseFreeswitch(): () => void {
    const child = this.#freeswitch;
    if (!child) throw new Error('FreeSWITCH is not running');
    child.kill('SIGSTOP');
    return () => child.kill('SIGCONT');
  }

  async stopFreeswitch(): Promise<void> {
    await kill(this.#freeswitch);
    this.#freeswitch = undefined;
  }

  async stop(): Promise<void> {
    await Promise.all([kill(this.#freeswitch), kill(this.#drachtio)]);
    process.off('exit', this.#killAll);
  }

  async #waitFor(port: number, child: () => ChildProcess | undefined, name: string): Promise<void> {
    const until = Date.now() + START_TIMEOUT_MS;
    while (!(await accepts(port))) {
      const proc = child();
      if (!proc || proc.exitCode !== null) throw new Error(`${name} exited at start; see logs in ${this.dir}`);
      if (Date.now() > until) throw new Error(`${name} not listening on 127.0.0.1:${port} after ${START_TIMEOUT_MS} ms; see ${this.dir}`);
      await sleep(100);
    }
  }
}
