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
  /** Optional: frees what the target shares between tests (e.g. servers it started); run once per test file. */
  dispose?(): Promise<void>;
}

export const isSkip = <T extends object>(x: T | Skip): x is Skip => 'skip' in x;

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

/**
 * Env vars of the drachtio target, as test/engines/drachtio/services.ts reads
 * them: DRACHTIO_HOST enables it; the others default (9022, cymru, 127.0.0.1,
 * 8021, ClueCon, 127.0.0.1).
 */
export const DRACHTIO_ENV = ['DRACHTIO_HOST', 'DRACHTIO_PORT', 'DRACHTIO_SECRET', 'FREESWITCH_HOST', 'FREESWITCH_PORT', 'FREESWITCH_SECRET', 'ESL_LISTEN_HOST'] as const;

const DRACHTIO_ENGINE_FILE = join(ROOT, 'lib', 'engines', 'drachtio', 'DrachtioEngine.ts');
const DRACHTIO_SERVICES_FILE = join(ROOT, 'test', 'engines', 'drachtio', 'services.ts');

type DrachtioEngineClass = new (config: DrachtioEngineConfig, log: Logger, dirs?: { mediaDir: string; recordingsDir: string }) => TelephonyEngine;
type ServicesOrSkip = { config: DrachtioEngineConfig; local?: { stop(): Promise<void> } } | { skip: string };

function drachtioUnavailable(): string | undefined {
  // DRACHTIO_LOCAL=1: let the drachtio tests' helper start drachtio + freeswitch found on PATH.
  if (!process.env.DRACHTIO_HOST && process.env.DRACHTIO_LOCAL !== '1') {
    return 'drachtio target: set DRACHTIO_HOST (+ DRACHTIO_PORT, DRACHTIO_SECRET, FREESWITCH_HOST, FREESWITCH_PORT, FREESWITCH_SECRET) to run it against a running drachtio-server + FreeSWITCH, or DRACHTIO_LOCAL=1 to start local ones';
  }
  if (!existsSync(DRACHTIO_ENGINE_FILE)) return `drachtio target: ${DRACHTIO_ENGINE_FILE} does not exist yet`;
  if (!existsSync(DRACHTIO_SERVICES_FILE)) return `drachtio target: ${DRACHTIO_SERVICES_FILE} does not exist yet`;
  return undefined;
}

/** Servers are found (or started) once per test file and shared by its tests. */
let drachtioServices: Promise<ServicesOrSkip> | undefined;

async function loadDrachtio(): Promise<{ Engine: DrachtioEngineClass; services: ServicesOrSkip } | Skip> {
  try {
    // Loaded at run time so this suite compiles and runs without that engine.
    const mod = (await import(pathToFileURL(DRACHTIO_ENGINE_FILE).href)) as { DrachtioEngine?: DrachtioEngineClass };
    if (!mod.DrachtioEngine) return { skip: 'drachtio target: DrachtioEngine.ts exports no DrachtioEngine' };
    const helper = (await import(pathToFileURL(DRACHTIO_SERVICES_FILE).href)) as { findServices?: () => Promise<ServicesOrSkip> };
    if (!helper.findServices) return { skip: 'drachtio target: services.ts exports no findServices' };
    drachtioServices ??= helper.findServices();
    return { Engine: mod.DrachtioEngine, services: await drachtioServices };
  } catch (err) {
    return { skip: `drachtio target: cannot load or start it: ${(err as Error).message}` };
  }
}

/** Resolves once the engine says it can place calls (it connects in the background). */
async function waitAvailable(engine: TelephonyEngine, ms: number): Promise<string | undefined> {
  const until = Date.now() + ms;
  while (!engine.available) {
    if (Date.now() > until) return `not available ${ms} ms after start`;
    await new Promise((r) => setTimeout(r, 50));
  }
  return undefined;
}

const drachtio: EngineTarget = {
  name: 'drachtio',
  unavailable: () => Promise.resolve(drachtioUnavailable()),
  async prepare(ctx) {
    const reason = drachtioUnavailable();
    if (reason) return { skip: reason };
    const loaded = await loadDrachtio();
    if (isSkip(loaded)) return loaded;
    if ('skip' in loaded.services) return { skip: `drachtio target: ${loaded.services.skip}` };
    const engine = new loaded.Engine(loaded.services.config, ctx.log, { mediaDir: ctx.mediaDir, recordingsDir: ctx.recordingsDir });
    await engine.start(); // CtiServer.start() calls it again (idempotent); calls need the connections up first
    const notReady = await waitAvailable(engine, 15_000);
    if (notReady) {
      await engine.stop();
      throw new Error(`drachtio engine ${notReady}`);
    }
    return { engine, env: {} };
  },
  async dispose() {
    const services = await drachtioServices;
    drachtioServices = undefined;
    if (services && 'local' in services) await services.local?.stop();
  },
};

export const TARGETS: readonly EngineTarget[] = [embedded, drachtio];

/** Targets to run: all, or those named in CONFORMANCE_TARGETS (comma-separated). */
export function selectedTargets(): EngineTarget[] {
  const only = process.env.CONFORMANCE_TARGETS?.split(',').map((s) => s.trim()).filter(Boolean);
  return TARGETS.filter((t) => !only || only.includes(t.name));
}

export const targetLogger = (): Logger => pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
