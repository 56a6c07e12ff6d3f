import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { AccountDirectory } from './accounts/Account.js';
import { Authenticator } from './accounts/Authenticator.js';
import { ConstructRate } from './accounts/ConstructRate.js';
import { DEFAULT_ACCOUNT, SingleAccountDirectory } from './accounts/SingleAccountDirectory.js';
import { RpcApi } from './api/RpcApi.js';
import { RpcContract } from './api/RpcContract.js';
import type { ServerConfig } from './config/ServerConfig.js';
import { EventHub } from './events/EventHub.js';
import { FileFolder } from './media/FileFolder.js';
import { ensureCountdownTone, ensureRingbackTone } from './media/toneFiles.js';
import { ResourceRegistry } from './resources/ResourceRegistry.js';
import { GatewayRouter } from './routing/GatewayRouter.js';
import { CallService } from './service/CallService.js';
import type { TelephonyEngine } from './telephony/TelephonyEngine.js';
import { WsServer } from './transport/WsServer.js';
import { systemClock, type Clock } from './util/Clock.js';
import type { Logger } from './util/logger.js';

export interface CtiServerDeps {
  readonly config: ServerConfig;
  readonly engine: TelephonyEngine;
  readonly log: Logger;
  readonly clock?: Clock;
  /** Where API keys and account limits live; required unless `auth.mode` is `none`. */
  readonly accounts?: AccountDirectory;
}

/** Composition root: wires the layers together, starts and stops them in order. */
export class CtiServer {
  readonly registry: ResourceRegistry;
  readonly service: CallService;
  readonly #config: ServerConfig;
  readonly #engine: TelephonyEngine;
  readonly #log: Logger;
  readonly #ws: WsServer;
  #stopping: Promise<void> | undefined;

  constructor({ config, engine, log, clock = systemClock, accounts }: CtiServerDeps) {
    const open = config.auth.mode === 'none';
    const directory = open ? new SingleAccountDirectory() : accounts;
    if (!directory) throw new Error('auth.mode "key" needs an account directory');
    this.#config = config;
    this.#engine = engine;
    this.#log = log;
    const media = new FileFolder(config.mediaDir, 'media');
    const ringbackFile = builtInTone(media, config.ringbackFile, 'ringbackFile', ensureRingbackTone);
    const countdownFile = builtInTone(media, config.countdownFile, 'countdownFile', ensureCountdownTone);
    this.registry = new ResourceRegistry(config.nodeId, config.limits.maxResources, clock);
    const hub = new EventHub(config.limits.maxSubscriptionsPerConnection);
    this.registry.on('event', (e) => hub.publish(e));
    this.service = new CallService({
      limits: config.limits,
      engine,
      router: new GatewayRouter(config.gateways, config.defaultGateway),
      media,
      recordings: new FileFolder(config.recordingsDir, 'recordings'),
      ringbackFile,
      countdownFile,
      registry: this.registry,
      clock,
      log: log.child({ layer: 'resources' }),
      accounts: directory,
      constructRate: new ConstructRate(),
    });
    const authenticator = new Authenticator(directory, config.auth);
    const api = new RpcApi(new RpcContract(), this.service, hub, authenticator, log.child({ layer: 'api' }), {
      maxBatchLength: config.listen.maxBatchLength,
    });
    this.#ws = new WsServer(
      config.listen,
      { authenticator, openAccount: open ? DEFAULT_ACCOUNT : null, timeoutSeconds: config.auth.timeoutSeconds },
      api,
      hub,
      log.child({ layer: 'transport' }),
    );
  }

  async start(): Promise<AddressInfo> {
    await this.#engine.start();
    const address = await this.#ws.listen();
    if (this.#config.gateways.length === 0) this.#log.warn('no gateways configured: every construct will be refused');
    this.#log.info(
      { address: `ws://${address.address}:${address.port}`, engine: this.#engine.name, node: this.#config.nodeId },
      'listening',
    );
    return address;
  }

  /**
   * Releases every live resource (each sends its on_released to connections
   * still open), then closes connections and the engine. Idempotent.
   */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      this.#log.info({ live: this.registry.size }, 'stopping: releasing live resources');
      const grace = new Promise<void>((resolve) => setTimeout(resolve, this.#config.shutdownGraceSeconds * 1000).unref());
      await Promise.race([this.registry.releaseAll('server shutting down'), grace]);
      await this.#ws.close();
      await this.#engine.stop();
      this.#log.info('stopped');
    })();
    return this.#stopping;
  }
}

/**
 * The path of one of the server's own tones in the media folder, written
 * there by `ensure` when missing; resolved inside the folder (links
 * included) before anything is written.
 */
function builtInTone(media: FileFolder, name: string, setting: string, ensure: (path: string) => void): string {
  const path = existsSync(join(media.root, name)) ? media.existingFile(name, setting) : media.newFile(name, setting);
  media.createFolders(path, name, setting);
  ensure(path);
  return path;
}
