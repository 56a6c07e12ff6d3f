// The engines the conformance suite runs against. Each target either starts an
// engine wired to the carrier's gateways or says why it cannot run here; the
// suite then runs every flow of shared/spec/API.md against each target.
//
// Adding an engine = adding one entry to TARGETS.
import { existsSync } from 'node:fs';
import { randomInt } from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { pino, type Logger } from 'pino';
import { EmbeddedEngine } from '../../lib/engines/embedded/EmbeddedEngine.js';
import type { DrachtioEngineConfig, GatewayConfig } from '../../lib/config/ServerConfig.js';
import type { TelephonyEngine } from '../../lib/telephony/TelephonyEngine.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** What a target is given: the gateways (pointing at the SIPp carriers) and the server's folders. */
export interface TargetContext {
  readonly gateways: readonly GatewayConfig[];
  readonly mediaDir: string;
  readonly recordingsDir: string;
  readonly log: Logger;
}

/** A started engine plus the server config overrides (startTestServer env) it needs. */
export interface StartedTarget {
  readonly engine: TelephonyEngine;
  readonly env: Record<string, string>;
}

export interface Skip {
  readonly skip: string;
}

export interface EngineTarget {
  readonly name: string;
  /**
   * Starts the engine (not yet started by the caller: CtiServer.start() starts it)
   * or gives the reason this target cannot run here. Cheap checks first, so a
   * skipped target costs nothing.
   */
  prepare(ctx: TargetContext): Promise<StartedTarget | Skip>;
  /** Optional cheap check before any far end is started: a skip reason, or undefined to go on. */
  unavailable?(): Promise<string | undefined>;
}

export const isSkip = (x: StartedTarget | Skip): x is Skip => 'skip' in x;

/** A port free for both UDP and TCP on host (the embedded engine binds both). */
export async function freeSipPort(host: string): Promise<number> {
  for (;;) {
    const port = 20000 + randomInt(40000);
    const ok = await new Promise<boolean>((resolve) => {
      const s = dgram.createSocket('udp4');
      s.once('error', () => resolve(false));
      s.bind(port, host, () => {
        const server = net.createServer();
        server.once('error', () => s.close(() => resolve(false)));
        server.listen(port, host, () => server.close(() => s.close(() => resolve(true))));
      });
    });
    if (ok) return port;
  }
}

const embedded: EngineTarget = {
  name: 'embedded',
  async prepare(ctx) {
    // Random RTP range per server so parallel test files do not fight over ports.
    const rtpBase = 30000 + 2 * randomInt(10000);
    const engine = new EmbeddedEngine(
      {
        type: 'embedded',
        sipHost: '127.0.0.1',
        sipPort: await freeSipPort('127.0.0.1'),
        rtpHost: '127.0.0.1',
        rtpPortMin: rtpBase,
        rtpPortMax: rtpBase + 199,
        mediaTimeoutSeconds: 30,
      },
      ctx.log,
    );
    return { engine, env: {} };
  },
};

/** Env vars that point the drachtio target at a running drachtio-server and FreeSWITCH. */
export const DRACHTIO_ENV = ['DRACHTIO_HOST', 'DRACHTIO_PORT', 'DRACHTIO_SECRET', 'FREESWITCH_HOST', 'FREESWITCH_PORT', 'FREESWITCH_SECRET'] as const;

const DRACHTIO_FILE = join(ROOT, 'lib', 'engines', 'drachtio', 'DrachtioEngine.ts');

function drachtioUnavailable(): string | undefined {
  const missing = DRACHTIO_ENV.filter((k) => !process.env[k]);
  if (missing.length) return `drachtio target needs ${missing.join(', ')} (a running drachtio-server + FreeSWITCH)`;
  if (!existsSync(DRACHTIO_FILE)) return `drachtio target: ${DRACHTIO_FILE} does not exist yet`;
  return undefined;
}

const drachtio: EngineTarget = {
  name: 'drachtio',
  unavailable: () => Promise.resolve(drachtioUnavailable()),
  async prepare(ctx) {
    const reason = drachtioUnavailable();
    if (reason) return { skip: reason };
    const file = DRACHTIO_FILE;
    let Engine: new (config: DrachtioEngineConfig, log: Logger) => TelephonyEngine;
    try {
      // Loaded at run time so this suite compiles before (and without) that engine.
      const mod = (await import(pathToFileURL(file).href)) as { DrachtioEngine?: typeof Engine };
      if (!mod.DrachtioEngine) return { skip: 'drachtio target: DrachtioEngine.ts exports no DrachtioEngine' };
      Engine = mod.DrachtioEngine;
    } catch (err) {
      return { skip: `drachtio target: cannot load DrachtioEngine.ts: ${(err as Error).message}` };
    }
    const config: DrachtioEngineConfig = {
      type: 'drachtio',
      drachtio: { host: process.env.DRACHTIO_HOST!, port: Number(process.env.DRACHTIO_PORT), secret: process.env.DRACHTIO_SECRET! },
      freeswitch: [{ host: process.env.FREESWITCH_HOST!, port: Number(process.env.FREESWITCH_PORT), secret: process.env.FREESWITCH_SECRET! }],
      eslListenHost: process.env.ESL_LISTEN_HOST ?? '127.0.0.1',
      ...(process.env.FREESWITCH_MEDIA_DIR ? { freeswitchMediaDir: process.env.FREESWITCH_MEDIA_DIR } : {}),
      ...(process.env.FREESWITCH_RECORDINGS_DIR ? { freeswitchRecordingsDir: process.env.FREESWITCH_RECORDINGS_DIR } : {}),
    };
    return { engine: new Engine(config, ctx.log), env: {} };
  },
};

export const TARGETS: readonly EngineTarget[] = [embedded, drachtio];

/** Targets to run: all, or those named in CONFORMANCE_TARGETS (comma-separated). */
export function selectedTargets(): EngineTarget[] {
  const only = process.env.CONFORMANCE_TARGETS?.split(',').map((s) => s.trim()).filter(Boolean);
  return TARGETS.filter((t) => !only || only.includes(t.name));
}

export const targetLogger = (): Logger => pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
