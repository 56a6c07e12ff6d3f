// The engines the conformance suite runs against. Each target either starts an
// engine wired to the carrier's gateways or says why it cannot run here; the
// suite then runs every flow of shared/spec/API.md against each target.
//
// Adding an engine = adding one entry to TARGETS.
import { randomInt } from 'node:crypto';
import { pino, type Logger } from 'pino';
import { DrachtioEngine } from '../../lib/engines/drachtio/DrachtioEngine.js';
import { EmbeddedEngine } from '../../lib/engines/embedded/EmbeddedEngine.js';
import { freeSipPort, waitAvailable } from '../support/engineTestKit.js';
import { findServices, type ServicesOrSkip } from '../engines/drachtio/services.js';
import { eslApi } from '../engines/drachtio/eslApi.js';
import type { DrachtioEngineConfig, GatewayConfig } from '../../lib/config/ServerConfig.js';
import type { TelephonyEngine } from '../../lib/telephony/TelephonyEngine.js';

/** What a target is given: the gateways (pointing at the SIPp carriers) and the server's folders. */
export interface TargetContext {
  readonly gateways: readonly GatewayConfig[];
  readonly mediaDir: string;
  readonly recordingsDir: string;
  readonly log: Logger;
  readonly tuning?: EngineTuning;
}

/** Engine settings a flow needs beyond a target's defaults (the overload flows: tiny capacity). */
export interface EngineTuning {
  /** embedded: even RTP ports in the range (default 100). */
  readonly rtpPorts?: number;
  /** drachtio: admission control settings. */
  readonly drachtioAdmission?: DrachtioEngineConfig['admission'];
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
  /**
   * Optional: an API command on the target's own media server (drachtio:
   * FreeSWITCH over a fresh event socket), so a flow can check what that
   * server really holds. Only while the target is prepared.
   */
  mediaServerApi?(command: string): Promise<string>;
  /** Optional: frees what the target shares between tests (e.g. servers it started); run once per test file. */
  dispose?(): Promise<void>;
}

export const isSkip = <T extends object>(x: T | Skip): x is Skip => 'skip' in x;


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
        rtpPortMax: rtpBase + 2 * (ctx.tuning?.rtpPorts ?? 100) - 1,
        mediaTimeoutSeconds: 30,
      },
      ctx.log,
    );
    return { engine, env: {} };
  },
};

/** Servers are found (or started) once per test file and shared by its tests. */
let drachtioServices: Promise<ServicesOrSkip> | undefined;


// Same rules as the drachtio engine tests (test/engines/drachtio/services.ts):
// DRACHTIO_HOST names running servers; else binaries on PATH are started here; else skipped.
const drachtio: EngineTarget = {
  name: 'drachtio',
  async prepare(ctx) {
    drachtioServices ??= findServices();
    const services = await drachtioServices;
    if ('skip' in services) return { skip: `drachtio target: ${services.skip}` };
    const admission = ctx.tuning?.drachtioAdmission;
    const config = admission ? { ...services.config, admission } : services.config;
    const engine = new DrachtioEngine(config, ctx.log, { mediaDir: ctx.mediaDir, recordingsDir: ctx.recordingsDir });
    await engine.start(); // CtiServer.start() calls it again (idempotent); calls need the connections up first
    await waitAvailable(engine).catch(async (err: unknown) => {
      await engine.stop();
      throw err;
    });
    return { engine, env: {} };
  },
  async mediaServerApi(command) {
    const services = await drachtioServices;
    const fs = services && !('skip' in services) ? services.config.freeswitch[0] : undefined;
    if (!fs) throw new Error('drachtio target not prepared');
    return eslApi(fs, command);
  },
  async dispose() {
    const services = await drachtioServices;
    drachtioServices = undefined;
    if (services && !('skip' in services)) await services.local?.stop();
  },
};

export const TARGETS: readonly EngineTarget[] = [embedded, drachtio];

/** Targets to run: all, or those named in CONFORMANCE_TARGETS (comma-separated). */
export function selectedTargets(): EngineTarget[] {
  const only = process.env.CONFORMANCE_TARGETS?.split(',').map((s) => s.trim()).filter(Boolean);
  return TARGETS.filter((t) => !only || only.includes(t.name));
}

export const targetLogger = (): Logger => pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
