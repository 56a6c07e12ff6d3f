/** Builds the service layer over the scripted engine and a manual clock, for resource tests. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { ProgressEvent } from '../../lib/api/generated/types.js';
import { loadConfig } from '../../lib/config/loadConfig.js';
import type { ServerConfig } from '../../lib/config/ServerConfig.js';
import { FileFolder } from '../../lib/media/FileFolder.js';
import { ResourceRegistry, type ResourceEvent } from '../../lib/resources/ResourceRegistry.js';
import { GatewayRouter } from '../../lib/routing/GatewayRouter.js';
import { ConstructRate } from '../../lib/accounts/ConstructRate.js';
import { CallService, type ResourceOwner } from '../../lib/service/CallService.js';
import { MemoryAccountDirectory, NO_LIMITS } from './MemoryAccountDirectory.js';
import { ManualClock } from './ManualClock.js';
import { ScriptedTelephonyEngine } from './ScriptedTelephonyEngine.js';

export const GATEWAYS = [
  { name: 'gw1', host: '192.0.2.10', port: 5060, callerId: '075589877675', maxConcurrentCalls: 4 },
  { name: 'gw2', host: '192.0.2.20', port: 5080, transport: 'tcp', callerId: 'sip:4000@gw2.example', maxConcurrentCalls: 1 },
];

/** The account every harness resource belongs to, without limits. */
export const ACCOUNT_ID = 'acme';
export const OWNER: ResourceOwner = { sessionId: 'session-1', account: { accountId: ACCOUNT_ID, name: ACCOUNT_ID, enabled: true, limits: NO_LIMITS } };

export interface Harness {
  readonly config: ServerConfig;
  readonly service: CallService;
  readonly engine: ScriptedTelephonyEngine;
  readonly clock: ManualClock;
  readonly registry: ResourceRegistry;
  /** Holds OWNER's account; tests add accounts with limits. */
  readonly accounts: MemoryAccountDirectory;
  readonly events: ResourceEvent[];
  readonly mediaDir: string;
  readonly recordingsDir: string;
  /** Lets deferred work (resource start, promise callbacks) run. */
  tick(): Promise<void>;
  progress(resId: string): ProgressEvent[];
  released(resId: string): Array<Record<string, unknown>>;
}

export function serviceHarness(env: Record<string, string> = {}): Harness {
  const root = mkdtempSync(join(tmpdir(), 'cti-test-'));
  const config = loadConfig({
    env: {
      CTI_MEDIA_DIR: join(root, 'media'),
      CTI_RECORDINGS_DIR: join(root, 'recordings'),
      CTI_GATEWAYS: JSON.stringify(GATEWAYS),
      ...env,
    },
  });
  const media = new FileFolder(config.mediaDir, 'media');
  for (const name of ['ring.wav', 'prompt.wav', 'prompt2.wav', 'ringback.wav', 'countdown.wav']) writeFileSync(join(media.root, name), 'RIFF');
  const clock = new ManualClock();
  const engine = new ScriptedTelephonyEngine();
  const registry = new ResourceRegistry(config.nodeId, config.limits.maxResources, clock);
  const accounts = new MemoryAccountDirectory();
  accounts.add(ACCOUNT_ID);
  const events: ResourceEvent[] = [];
  registry.on('event', (e) => events.push(e));
  const service = new CallService({
    limits: config.limits,
    engine,
    router: new GatewayRouter(config.gateways, config.defaultGateway),
    media,
    recordings: new FileFolder(config.recordingsDir, 'recordings'),
    ringbackFile: join(media.root, 'ringback.wav'),
    countdownFile: join(media.root, 'countdown.wav'),
    registry,
    clock,
    log: pino({ level: 'silent' }),
    accounts,
    constructRate: new ConstructRate(),
  });
  return {
    config,
    service,
    engine,
    clock,
    registry,
    accounts,
    events,
    mediaDir: media.root,
    recordingsDir: config.recordingsDir,
    tick: async () => {
      for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
    },
    progress: (resId) =>
      events.filter((e) => e.resId === resId && e.name === 'on_progress').map((e) => e.params as ProgressEvent),
    released: (resId) =>
      events.filter((e) => e.resId === resId && e.name === 'on_released').map((e) => e.params as Record<string, unknown>),
  };
}
