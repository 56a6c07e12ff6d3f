/** The real server (`lib/main.ts`) as a child process, for crash (kill -9) and restart tests. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DrachtioEngineConfig, StoreConfig } from '../../lib/config/ServerConfig.js';
import { freeSipPort } from './engineTestKit.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface ServerProcess {
  readonly child: ChildProcess;
  /** ws://host:port from its `listening` log line. */
  readonly url: string;
  /** SIGKILL, resolves once it exited. */
  kill(): Promise<void>;
}

/** Settings every server process of these tests shares. */
export interface ServerEnvOptions {
  /** Gateway and server-wide call limit. */
  readonly maxCalls?: number;
  /** Fixed WebSocket port (a restarted server is where clients reconnect); default a free one. */
  readonly listenPort?: number;
  /** Default: SQLite in the temporary data folder. */
  readonly store?: StoreConfig;
  /** Digest credentials of the carrier gateway (answers to 401/407); default none. */
  readonly gatewayAuth?: { readonly username: string; readonly password: string };
}

/**
 * The CTI_* settings of a server in a fresh temporary folder, authentication
 * off, dialling one carrier over UDP, with `engine`'s CTI_ENGINE__* settings.
 */
function serverEnv(carrier: { readonly host: string; readonly port: number }, engine: NodeJS.ProcessEnv, o: ServerEnvOptions): NodeJS.ProcessEnv {
  const dir = mkdtempSync(join(tmpdir(), 'cti-process-'));
  return {
    CTI_LISTEN__HOST: '127.0.0.1',
    CTI_LISTEN__PORT: String(o.listenPort ?? 0),
    CTI_LOG_LEVEL: 'info',
    CTI_AUTH__MODE: 'none',
    ...engine,
    CTI_GATEWAYS: JSON.stringify([{ name: 'carrier', host: carrier.host, port: carrier.port, transport: 'udp', callerId: '1000', ...(o.maxCalls ? { maxConcurrentCalls: o.maxCalls } : {}), ...o.gatewayAuth }]),
    ...(o.maxCalls ? { CTI_LIMITS__MAX_RESOURCES: String(o.maxCalls) } : {}),
    ...(o.store ? { CTI_STORE: JSON.stringify(o.store) } : {}),
    CTI_MEDIA_DIR: join(dir, 'media'),
    CTI_RECORDINGS_DIR: join(dir, 'rec'),
    CTI_DATA_DIR: join(dir, 'data'),
  };
}

/** An embedded-engine server ({@link serverEnv}); `rtpPortMin` and `rtpPorts` keep parallel test files' RTP ranges apart. */
export async function embeddedServerEnv(
  carrier: { readonly host: string; readonly port: number },
  o: ServerEnvOptions & { readonly rtpPortMin: number; readonly rtpPorts: number },
): Promise<NodeJS.ProcessEnv> {
  const engine = {
    CTI_ENGINE__TYPE: 'embedded',
    CTI_ENGINE__SIP_HOST: '127.0.0.1',
    CTI_ENGINE__SIP_PORT: String(await freeSipPort('127.0.0.1')),
    CTI_ENGINE__RTP_HOST: '127.0.0.1',
    CTI_ENGINE__RTP_PORT_MIN: String(o.rtpPortMin),
    CTI_ENGINE__RTP_PORT_MAX: String(o.rtpPortMin + o.rtpPorts - 1),
  };
  return serverEnv(carrier, engine, o);
}

/** A drachtio-engine server ({@link serverEnv}) on the drachtio-server and FreeSWITCH of `config`. */
export function drachtioServerEnv(carrier: { readonly host: string; readonly port: number }, config: DrachtioEngineConfig, o: ServerEnvOptions = {}): NodeJS.ProcessEnv {
  const engine = {
    CTI_ENGINE__TYPE: 'drachtio',
    CTI_ENGINE__DRACHTIO: JSON.stringify(config.drachtio),
    CTI_ENGINE__FREESWITCH: JSON.stringify(config.freeswitch),
    CTI_ENGINE__ESL_LISTEN_HOST: config.eslListenHost,
  };
  return serverEnv(carrier, engine, o);
}

/** Starts `lib/main.ts` with `env` over this process's; resolves once it logs `listening` (CTI_LOG_LEVEL info or lower). */
export async function startServerProcess(env: NodeJS.ProcessEnv): Promise<ServerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'lib/main.ts'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const url = await new Promise<string>((resolve, reject) => {
    let buffered = '';
    const timer = setTimeout(() => reject(new Error(`server not listening after 20 s: ${buffered.slice(-2000)}`)), 20_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      buffered = (buffered + chunk.toString()).slice(-100_000);
      const line = buffered.split('\n').find((l) => l.includes('"listening"'));
      if (!line) return;
      clearTimeout(timer);
      resolve((JSON.parse(line) as { address: string }).address);
    });
    child.once('exit', (code) => reject(new Error(`server exited with ${code}: ${buffered.slice(-2000)}`)));
  });
  child.stdout!.removeAllListeners('data');
  child.stdout!.resume();
  child.stderr!.resume();
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    child,
    url,
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}
