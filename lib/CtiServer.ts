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
import { CdrStore } from './cdr/CdrStore.js';
import { restartRelease } from './cdr/restartRelease.js';
import { EventHub } from './events/EventHub.js';
import { EventLog } from './events/EventLog.js';
import { WebhookDispatcher } from './events/webhooks/WebhookDispatcher.js';
import { WebhookStore } from './events/webhooks/WebhookStore.js';
import { WebhookTransport } from './events/webhooks/WebhookTransport.js';
import { FileFolder } from './media/FileFolder.js';
import { ensureCountdownTone, ensureRingbackTone } from './media/toneFiles.js';
import { ResourceRegistry } from './resources/ResourceRegistry.js';
import { GatewayRouter } from './routing/GatewayRouter.js';
import { CallService } from './service/CallService.js';
import type { Store } from './store/Store.js';
import type { TelephonyEngine } from './telephony/TelephonyEngine.js';
import { HttpContract } from './api/HttpContract.js';
import { HttpServer } from './transport/http/HttpServer.js';
import { ServerMetrics } from './transport/http/ServerMetrics.js';
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
  /**
   * Where events, resource rows and CDRs are committed (issue 9). Without
   * it events are numbered in memory, nothing survives a restart, and no CDR
   * is kept.
   */
  readonly store?: Store;
  /** The store `GET /readyz` checks (the account store); default: `store`. */
  readonly storeCheck?: { ping(): Promise<void> };
}

/** How often retention prunes old CDRs, events and webhook records. */
const PRUNE_INTERVAL_MS = 3_600_000;
const DAY_MS = 86_400_000;

/** Composition root: wires the layers together, starts and stops them in order. */
export class CtiServer {
  readonly registry: ResourceRegistry;
  readonly service: CallService;
  readonly #config: ServerConfig;
  readonly #engine: TelephonyEngine;
  readonly #log: Logger;
  readonly #ws: WsServer;
  readonly #eventLog: EventLog;
  readonly #cdrs: CdrStore | null;
  readonly #clock: Clock;
  #pruneTimer: NodeJS.Timeout | undefined;
  readonly #http: HttpServer | null;
  #stopping: Promise<void> | undefined;
  /** Webhook delivery (issue 10): only with a store, which holds targets, cursors and attempts. */
  readonly webhooks: WebhookDispatcher | null;
  readonly webhookStore: WebhookStore | null;

  constructor({ config, engine, log, clock = systemClock, accounts, store, storeCheck = store }: CtiServerDeps) {
    const open = config.auth.mode === 'none';
    const directory = open ? new SingleAccountDirectory() : accounts;
    if (!directory) throw new Error('auth.mode "key" needs an account directory');
    this.#config = config;
    this.#engine = engine;
    this.#log = log;
    const media = new FileFolder(config.mediaDir, 'media');
    const ringbackFile = builtInTone(media, config.ringbackFile, 'ringbackFile', ensureRingbackTone);
    const countdownFile = builtInTone(media, config.countdownFile, 'countdownFile', ensureCountdownTone);
    this.#clock = clock;
    this.registry = new ResourceRegistry(config.nodeId, config.limits.maxResources, clock);
    this.#eventLog = new EventLog(store ?? null, { clock, log: log.child({ layer: 'events' }) });
    this.#cdrs = store ? new CdrStore(store) : null;
    const hub = new EventHub({
      maxPerSink: config.limits.maxSubscriptionsPerConnection,
      replay: (accountId, after, limit) => this.#eventLog.replay(accountId, after, limit),
    });
    // Committed first, sent after: a client never sees an event a crash could take back.
    this.registry.on('event', (e) => this.#eventLog.append(e));
    this.#eventLog.on('committed', (e) => hub.publish(e));
    engine.on('dialog', (group, legId, state) => this.#eventLog.saveDialog(group, legId, state));
    if (store) engine.dialogsDurable = () => this.#eventLog.flush();
    this.webhookStore = store ? new WebhookStore(store) : null;
    this.webhooks = this.webhookStore
      ? new WebhookDispatcher({
          store: this.webhookStore,
          eventLog: this.#eventLog,
          transport: new WebhookTransport({
            timeoutMs: config.webhooks.requestTimeoutSeconds * 1000,
            allowPrivateTargets: config.webhooks.allowPrivateTargets,
          }),
          clock,
          log: log.child({ layer: 'webhooks' }),
          maxConcurrent: config.webhooks.maxConcurrent,
          schedule: {
            firstDelayMs: config.webhooks.firstRetrySeconds * 1000,
            maxDelayMs: config.webhooks.maxRetryDelaySeconds * 1000,
            retryForMs: config.webhooks.retryForHours * 3_600_000,
          },
        })
      : null;
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
      eventLog: this.#eventLog,
      ...(this.#cdrs ? { cdrs: this.#cdrs } : {}),
      ...(this.webhookStore ? { webhooks: { store: this.webhookStore, allowPrivateTargets: config.webhooks.allowPrivateTargets } } : {}),
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
    const metrics = new ServerMetrics({
      registry: this.registry,
      engine,
      admission: this.service.admission,
      wsConnections: () => this.#ws.sessionCount,
      ...(this.webhooks ? { webhooks: this.webhooks } : {}),
    });
    this.#http = config.http.enabled
      ? new HttpServer({
          config: config.http,
          contract: new HttpContract(),
          service: this.service,
          authenticator,
          directory,
          openAccount: open ? DEFAULT_ACCOUNT : null,
          metrics,
          readiness: { engine: () => engine.available, store: async () => (storeCheck ? storeCheck.ping().then(() => true) : true) },
          log: log.child({ layer: 'http' }),
        })
      : null;
  }

  /** The durable event log: committed events, replay (the HTTP transport's webhooks and event listing use it). */
  get eventLog(): EventLog {
    return this.#eventLog;
  }
  /** The HTTP API's address once started, or null when `http.enabled` is false. */
  httpAddress: AddressInfo | null = null;

  async start(): Promise<AddressInfo> {
    const stale = this.#cdrs ? await this.#recover(this.#cdrs) : [];
    await this.#engine.start();
    if (stale.length) this.#endStaleDialogs(stale);
    await this.webhooks?.start();
    const address = await this.#ws.listen();
    this.httpAddress = this.#http ? await this.#http.listen() : null;
    if (this.#config.gateways.length === 0) this.#log.warn('no gateways configured: every construct will be refused');
    this.#log.info(
      { address: `ws://${address.address}:${address.port}`, engine: this.#engine.name, node: this.#config.nodeId },
      'listening',
    );
    if (this.#cdrs) {
      const cdrs = this.#cdrs;
      const prune = (): void => void this.#prune(cdrs);
      prune();
      this.#pruneTimer = setInterval(prune, PRUNE_INTERVAL_MS).unref();
    }
    if (this.httpAddress) this.#log.info({ address: `http://${this.httpAddress.address}:${this.httpAddress.port}` }, 'HTTP API listening');
    return address;
  }

  /**
   * After a crash or power loss: ids continue above the last stored process
   * id, and every resource this node left live gets its one on_released
   * (`internal`, "server restarted"), committed like any other event.
   */
  async #recover(cdrs: CdrStore): Promise<string[]> {
    this.registry.resumeAfter(await cdrs.maxProcessId());
    const left = await cdrs.leftLive(this.#config.nodeId);
    if (!left.length) return [];
    this.#log.warn({ resources: left.length }, 'releasing the resources a previous run of this node left live');
    const end = this.#clock.now();
    for (const r of left) {
      if (r.resourceClass) this.#eventLog.append(restartRelease({ ...r, resourceClass: r.resourceClass }, end));
      // No event can name it (an edited row): it stays live for the operator; its calls are still ended below.
      else this.#log.error({ resId: r.resId }, 'a resource left live has no known class in its row or context: no on_released sent, row left live');
    }
    await this.#eventLog.flush();
    return left.flatMap((r) => r.dialogs);
  }

  /** Ends the calls a crashed run left up at the far ends, where the engine can (embedded: BYE). */
  #endStaleDialogs(states: readonly string[]): void {
    if (!this.#engine.endStaleDialogs) {
      this.#log.warn({ dialogs: states.length, engine: this.#engine.name }, 'this engine cannot end calls a previous run left up');
      return;
    }
    this.#engine.endStaleDialogs(states).then(
      (sent) => this.#log.info({ sent }, 'BYE or CANCEL sent for the calls a previous run left up'),
      (err: unknown) => this.#log.error({ err }, 'ending the calls a previous run left up failed'),
    );
  }

  async #prune(cdrs: CdrStore): Promise<void> {
    const now = this.#clock.now();
    try {
      const { retention } = this.#config;
      const removedCdrs = await cdrs.prune(now - retention.cdrDays * DAY_MS);
      const removedEvents = await this.#eventLog.prune(now - this.#keepMs(retention.eventDays));
      const webhooks = (await this.webhookStore?.prune(now - this.#keepMs(retention.webhookDays))) ?? { attempts: 0, callTargets: 0 };
      if (removedCdrs || removedEvents || webhooks.attempts || webhooks.callTargets) {
        this.#log.info({ cdrs: removedCdrs, events: removedEvents, webhookAttempts: webhooks.attempts, webhookCallTargets: webhooks.callTargets }, 'retention: pruned');
      }
    } catch (err) {
      this.#log.error({ err }, 'retention: pruning failed; next try in an hour');
    }
  }

  /**
   * How long events and webhook attempts are kept (ms): their `retention.*Days`,
   * but at least a delivery's whole retry window (`webhooks.retryForHours`
   * plus the longest retry delay, 1.5 × `maxRetryDelaySeconds`). A delivery
   * still retrying reads its events from the log, and the dispatcher times
   * its give-up from its first attempt's row: pruning that row made every
   * later attempt look like a first one, so it retried forever; pruning the
   * events would lose what it still has to deliver.
   */
  #keepMs(days: number): number {
    const { webhooks } = this.#config;
    return Math.max(days * DAY_MS, webhooks.retryForHours * 3_600_000 + 1.5 * webhooks.maxRetryDelaySeconds * 1000);
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
      clearInterval(this.#pruneTimer);
      // The on_released events of the release above go out before the connections close.
      await this.#eventLog.flush();
      await this.webhooks?.stop();
      await this.#http?.close();
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
