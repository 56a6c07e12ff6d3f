import type {
  Cdr,
  CollectDtmf,
  ConstructResult,
  EventNotification,
  ExtDuoCallbackConstructParams,
  ExtNotifyCallConstructParams,
  PlayContent,
  ResourceContext,
  SysEventsReplayResult,
  WebhookAttemptsPage,
} from '../api/generated/types.js';
import type { Account, AccountDirectory } from '../accounts/Account.js';
import type { ConstructRate } from '../accounts/ConstructRate.js';
import type { CdrPage, CdrStore } from '../cdr/CdrStore.js';
import type { LimitsConfig } from '../config/ServerConfig.js';
import type { EventLog, LoggedEvent } from '../events/EventLog.js';
import { attemptsPage, type WebhookStore } from '../events/webhooks/WebhookStore.js';
import { InvalidWebhookUrl, checkWebhookUrl, isPrivateHost } from '../events/webhooks/targetAddress.js';
import type { FileFolder } from '../media/FileFolder.js';
import { playContentFileNames } from '../media/playContent.js';
import { playSeconds } from '../media/playDuration.js';
import { DuoCallback, type DuoCallbackPlan, type RecordMode, type RingPlayMode } from '../resources/DuoCallback.js';
import { NotifyCall, type DtmfCollection } from '../resources/NotifyCall.js';
import { Party } from '../resources/Party.js';
import type { ResourceIdentity } from '../resources/Resource.js';
import type { ResourceRegistry } from '../resources/ResourceRegistry.js';
import type { DialTarget } from '../routing/DialTarget.js';
import type { GatewayRouter, Route } from '../routing/GatewayRouter.js';
import type { TelephonyEngine } from '../telephony/TelephonyEngine.js';
import type { Clock } from '../util/Clock.js';
import type { Logger } from '../util/logger.js';
import { ServiceError, type ParamProblem } from '../errors/ServiceError.js';
import { EngineAdmission } from './EngineAdmission.js';

export interface CallServiceDeps {
  readonly limits: LimitsConfig;
  readonly engine: TelephonyEngine;
  readonly router: GatewayRouter;
  readonly media: FileFolder;
  readonly recordings: FileFolder;
  /** Absolute path of the ring tone used when party 2 rings without early media. */
  readonly ringbackFile: string;
  /** Absolute path of the default countdown warning (duo_callback `countdown_seconds` without a file). */
  readonly countdownFile: string;
  readonly registry: ResourceRegistry;
  readonly clock: Clock;
  readonly log: Logger;
  /** Where an account's current state and limits are read at each construct. */
  readonly accounts: AccountDirectory;
  readonly constructRate: ConstructRate;
  /** Where events and resource rows are committed before anything is sent (issue 9); absent: nothing is stored. */
  readonly eventLog?: EventLog;
  /** Final records of released resources; absent without a store. */
  readonly cdrs?: CdrStore;
  /** Webhook targets and delivery attempts, and whether calls' status_url may name private addresses; absent without a store. */
  readonly webhooks?: { readonly store: WebhookStore; readonly allowPrivateTargets: boolean };
}

/** Who constructs: the connection whose events it gets, and its account as admitted by `admit`. */
export interface ResourceOwner {
  readonly sessionId: string;
  readonly account: Account;
}

/**
 * The operations on call resources, whatever carries them (WebSocket JSON-RPC
 * today, HTTP later). Params arrive schema-valid; this layer applies
 * defaults, checks what a schema cannot (limits, files, routes), and creates
 * the resources.
 */
export class CallService {
  /** Refuses constructs while the engine is saturated (issue 11, kind 8); its `refused` events feed the metrics. */
  readonly admission: EngineAdmission;

  constructor(private readonly deps: CallServiceDeps) {
    this.admission = new EngineAdmission(deps.engine, deps.log);
  }

  /**
   * Admits one construct of an authenticated connection: reads the account as
   * stored now (limits may have changed, the account may be disabled) and
   * takes one construct from its rate.
   * @throws ServiceError unauthorized (account disabled or gone), rate_limited (`data.retry_after_ms`).
   */
  async admit(sessionId: string, accountId: string): Promise<ResourceOwner> {
    const account = await this.deps.accounts.get(accountId);
    if (!account?.enabled) throw new ServiceError('unauthorized', `account ${accountId} is disabled`);
    const rate = account.limits.constructsPerSecond;
    const retryAfterMs = await this.deps.constructRate.take(accountId, rate);
    if (retryAfterMs !== null) {
      throw new ServiceError('rate_limited', `account ${accountId} may construct ${rate} resources per second`, {
        retry_after_ms: retryAfterMs,
      });
    }
    return { sessionId, account };
  }

  constructDuoCallback(params: ExtDuoCallbackConstructParams, owner: ResourceOwner): ConstructResult {
    const { limits, router, media } = this.deps;
    const problems: ParamProblem[] = [];
    const check = <T>(fn: () => T): T | undefined => collect(problems, fn);

    const target1 = check(() => allowedGateway(router.resolve(params.to1_uri, 'to1_uri'), 'to1_uri', owner.account));
    const target2 = check(() => allowedGateway(router.resolve(params.to2_uri, 'to2_uri'), 'to2_uri', owner.account));
    this.#checkCaller(params.from1_uri, 'from1_uri', owner.account, problems);
    this.#checkCaller(params.from2_uri, 'from2_uri', owner.account, problems);
    if (target1 && target2 && target1.user === target2.user) {
      problems.push({ param: 'to2_uri', message: `must not be the same number as to1_uri (${target1.user})` });
    }
    const maxAnswerSeconds = atMost(problems, 'max_answer_seconds', params.max_answer_seconds ?? limits.defaultMaxAnswerSeconds, limits.maxAnswerSecondsCap);
    const maxRingSeconds = atMost(problems, 'max_ring_seconds', params.max_ring_seconds ?? limits.duoRingSeconds, limits.ringSecondsCap);
    const ringPlayFile = params.ring_play_file ? check(() => media.existingFile(params.ring_play_file!, 'ring_play_file')) : null;
    const countdown = this.#countdown(params, maxAnswerSeconds, problems);
    const recordName = params.record_file || null;
    // Each account records in its own folder: the same record_file of two accounts is two files.
    const recordings = recordName ? this.deps.recordings.subfolder(owner.account.accountId) : null;
    const recordPath = recordName && recordings ? check(() => recordings.newFile(recordName, 'record_file')) : null;
    const statusUrl = this.#statusUrl(params.status_url, problems);
    if (problems.length) throw ServiceError.invalidParams(problems);

    const routes = this.#takeRoutes(owner.account, [[target1!], [target2!]], [params.from1_uri ?? null, params.from2_uri ?? null]);
    // Only an accepted request creates folders: a refused one leaves the file system as it was.
    if (recordName && recordPath && recordings) this.#accepted(routes, () => recordings.createFolders(recordPath, recordName, 'record_file'));
    const [route1, route2] = routes;
    const identity = this.#identity('ext.duo_callback', owner, params.user_data);
    const log = this.deps.log.child({ res_id: identity.resId });
    const resource = new DuoCallback(
      identity,
      this.#party(1, route1!, identity),
      this.#party(2, route2!, identity),
      {
        maxAnswerSeconds,
        maxRingSeconds,
        ringPlayFile: ringPlayFile ?? null,
        ringPlayMode: (params.ring_play_mode ?? 3) as RingPlayMode,
        ringbackFile: this.deps.ringbackFile,
        countdown,
        record: recordName && recordPath ? { path: recordPath, name: recordName, mode: (params.record_mode ?? 0) as RecordMode } : null,
      },
      this.deps.engine,
      this.deps.clock,
      log,
    );
    log.info({ to1: route1!.target.requestUri, to2: route2!.target.requestUri, account: owner.account.accountId, owner: owner.sessionId }, 'constructed');
    return this.#launch(resource, statusUrl);
  }

  /**
   * The countdown warning (seed 000 `countdown_time`/`countdown_voice`):
   * `countdown_seconds` must be below the talk limit; a `countdown_play_file`
   * must exist in the media folder even without `countdown_seconds` (a bad
   * name is always refused). Default file: the server's countdown tone. Null
   * without `countdown_seconds`.
   */
  #countdown(params: ExtDuoCallbackConstructParams, maxAnswerSeconds: number, problems: ParamProblem[]): DuoCallbackPlan['countdown'] {
    const name = params.countdown_play_file;
    const file = name ? collect(problems, () => this.deps.media.existingFile(name, 'countdown_play_file')) : this.deps.countdownFile;
    const seconds = params.countdown_seconds;
    if (seconds === null || seconds === undefined) return null;
    if (seconds >= maxAnswerSeconds) {
      problems.push({ param: 'countdown_seconds', message: `must be less than max_answer_seconds (${maxAnswerSeconds})` });
    }
    return file === undefined ? null : { seconds, file };
  }

  /**
   * Cancels a live resource of the given class and account (seed: `<class>.cancel`).
   * @throws ServiceError not_found when `resId` is not a live resource of that class and account;
   *   invalid_state from a duo_callback whose party 2 answered.
   */
  cancel(resId: string, resourceClass: 'ext.duo_callback' | 'ext.notify_call', accountId: string): void {
    const resource = this.#find(resId, accountId);
    if (resource.resourceClass !== resourceClass) {
      throw new ServiceError('not_found', `${resId} is not a live ${resourceClass}`, { res_id: resId });
    }
    resource.cancel();
  }

  constructNotifyCall(params: ExtNotifyCallConstructParams, owner: ResourceOwner): ConstructResult {
    const { limits, router } = this.deps;
    const problems: ParamProblem[] = [];
    const check = <T>(fn: () => T): T | undefined => collect(problems, fn);

    const uris = typeof params.to_uri === 'string' ? [params.to_uri] : params.to_uri;
    const targets = uris.map((uri, i) => {
      const param = typeof params.to_uri === 'string' ? 'to_uri' : `to_uri[${i}]`;
      return check(() => allowedGateway(router.resolve(uri, param), param, owner.account));
    });
    this.#checkCaller(params.from_uri, 'from_uri', owner.account, problems);
    const playRepeat = atMost(problems, 'play_repeat', params.play_repeat ?? 1, limits.playRepeatCap);
    const files = this.#promptFiles(params.play_content, playRepeat, problems);
    const maxRingSeconds = atMost(problems, 'max_ring_seconds', params.max_ring_seconds ?? limits.notifyRingSeconds, limits.ringSecondsCap);
    const collection = params.collect_dtmf ? this.#collection(params.collect_dtmf, problems) : null;
    const statusUrl = this.#statusUrl(params.status_url, problems);
    if (problems.length) throw ServiceError.invalidParams(problems);

    const [route] = this.#takeRoutes(owner.account, [targets as DialTarget[]], [params.from_uri ?? null]);
    const identity = this.#identity('ext.notify_call', owner, params.user_data);
    const log = this.deps.log.child({ res_id: identity.resId });
    const resource = new NotifyCall(
      identity,
      this.#party(1, route!, identity),
      { files, playRepeat, maxRingSeconds, dialTimeoutSeconds: limits.dialTimeoutSeconds, collect: collection },
      this.deps.clock,
      log,
    );
    log.info({ to: route!.target.requestUri, account: owner.account.accountId, owner: owner.sessionId }, 'constructed');
    return this.#launch(resource, statusUrl);
  }

  /**
   * The prompt's files (real paths, in play order), within the play limits:
   * at most `maxPlayFiles` names, and at most `maxPlaySeconds` of audio over
   * all `playRepeat + 1` plays. Each distinct name is resolved and measured once.
   */
  #promptFiles(content: PlayContent, playRepeat: number, problems: ParamProblem[]): string[] {
    const { limits, media } = this.deps;
    const names = collect(problems, () => playContentFileNames(content, 'play_content')) ?? [];
    if (names.length > limits.maxPlayFiles) {
      problems.push({ param: 'play_content', message: `names ${names.length} files; the limit is ${limits.maxPlayFiles}` });
      return [];
    }
    const byName = new Map<string, { path: string; seconds: number } | undefined>();
    for (const name of new Set(names)) {
      const path = collect(problems, () => media.existingFile(name, 'play_content'));
      byName.set(name, path === undefined ? undefined : { path, seconds: playSeconds(path) });
    }
    const resolved = names.map((name) => byName.get(name));
    if (resolved.some((f) => f === undefined)) return [];
    const once = resolved.reduce((sum, f) => sum + f!.seconds, 0);
    const total = once * (playRepeat + 1);
    if (total > limits.maxPlaySeconds) {
      const problem = `plays ${Math.ceil(once)} s × ${playRepeat + 1} = ${Math.ceil(total)} s, over this server's limit of ${limits.maxPlaySeconds} s`;
      problems.push({ param: 'play_content', message: problem });
      if (once <= limits.maxPlaySeconds) problems.push({ param: 'play_repeat', message: problem });
    }
    return resolved.map((f) => f!.path);
  }

  /**
   * `collect_dtmf` with its defaults (1 key, 5 s first, 3 s between, `#`,
   * barge-in) and each reply resolved in the media folder and within
   * `maxPlaySeconds` (the schema already bounds keys, counts and name lengths).
   */
  #collection(params: NonNullable<CollectDtmf>, problems: ParamProblem[]): DtmfCollection {
    const replies = new Map<string, string>();
    for (const [digits, name] of Object.entries(params.replies ?? {})) {
      const param = `collect_dtmf.replies.${digits}`;
      const path = name === undefined ? undefined : collect(problems, () => this.deps.media.existingFile(name, param));
      if (path === undefined) continue;
      if (playSeconds(path) > this.deps.limits.maxPlaySeconds) {
        problems.push({ param, message: `plays over this server's limit of ${this.deps.limits.maxPlaySeconds} s` });
      }
      replies.set(digits, path);
    }
    return {
      maxDigits: params.max_digits ?? 1,
      firstDigitSeconds: params.first_digit_timeout ?? 5,
      interDigitSeconds: params.inter_digit_timeout ?? 3,
      terminator: params.terminator === '' ? null : (params.terminator ?? '#'),
      bargeIn: params.barge_in ?? true,
      replies,
    };
  }

  /** A live resource of the account; another account's answers exactly as an unknown id. */
  getResource(resId: string, accountId: string): ResourceContext {
    return this.#find(resId, accountId).context();
  }

  /**
   * `sys.resource.get`: a live resource's context, or a released one's final
   * context while its CDR is retained (issue 9); another account's id
   * answers exactly as an unknown one.
   * @throws ServiceError not_found.
   */
  async resourceContext(resId: string, accountId: string): Promise<ResourceContext> {
    const live = this.deps.registry.get(resId, accountId);
    if (live) return live.context();
    return (await this.getCdr(resId, accountId)).context;
  }

  /**
   * Resolves once every resource row and event queued so far is committed:
   * a construct is answered only after its resource is stored, so a crash
   * right after the reply still ends in one on_released for it.
   */
  async durable(): Promise<void> {
    await this.deps.eventLog?.flush();
  }

  /**
   * The account's logged events after `afterEventId`, oldest first, at most
   * `limit` (issue 9: what a reconnecting client missed).
   */
  async replayEvents(accountId: string, afterEventId: number, limit: number): Promise<SysEventsReplayResult> {
    const log = this.deps.eventLog;
    if (!log) return { events: [], more: false };
    const page: LoggedEvent[] = await log.replay(accountId, afterEventId, limit + 1);
    // The log holds only notifications this server sent, which match the schema's events.
    const events = page.slice(0, limit).map((e) => ({ method: e.method, params: e.params }) as unknown as EventNotification);
    return { events, more: page.length > limit };
  }

  /** @throws ServiceError not_found when the account has no CDR of that id (live, unknown, pruned, another account's). */
  async getCdr(resId: string, accountId: string): Promise<Cdr> {
    const cdr = await this.deps.cdrs?.get(resId, accountId);
    if (!cdr) throw new ServiceError('not_found', `no resource ${resId}`, { res_id: resId });
    return cdr;
  }

  /** The account's CDRs, newest first; `since`/`until` in Unix seconds. */
  /** One page of the account's webhook attempts, newest event first (an empty page without a store). */
  async webhookAttempts(accountId: string, limit: number, before: number | undefined): Promise<WebhookAttemptsPage> {
    if (!this.deps.webhooks) return { attempts: [], next_before: null };
    return attemptsPage(this.deps.webhooks.store, accountId, limit, before);
  }

  async listCdrs(accountId: string, query: { since?: number; until?: number; cursor?: string; limit: number }): Promise<CdrPage> {
    if (!this.deps.cdrs) return { cdrs: [], next_cursor: null };
    return this.deps.cdrs.list(accountId, {
      ...(query.since !== undefined ? { sinceMs: query.since * 1000 } : {}),
      ...(query.until !== undefined ? { untilMs: query.until * 1000 } : {}),
      ...(query.cursor !== undefined ? { cursor: query.cursor } : {}),
      limit: query.limit,
    });
  }

  resourceExists(resId: string, accountId: string): boolean {
    return this.deps.registry.get(resId, accountId) !== undefined;
  }

  #find(resId: string, accountId: string): DuoCallback | NotifyCall {
    const resource = this.deps.registry.get(resId, accountId);
    if (!resource) throw new ServiceError('not_found', `no live resource ${resId}`, { res_id: resId });
    return resource as DuoCallback | NotifyCall;
  }

  /**
   * All routes or none: a request never holds half its gateway slots.
   * @throws ServiceError engine_unavailable, capacity_exceeded (server, account or gateway full),
   *   rate_limited (the engine is saturated: `data.retry_after_ms`).
   */
  #takeRoutes(account: Account, candidates: readonly (readonly DialTarget[])[], froms: readonly (string | null)[]): Route[] {
    if (!this.deps.engine.available) {
      throw new ServiceError('engine_unavailable', `the ${this.deps.engine.name} engine cannot place calls now`, {
        engine: this.deps.engine.name,
      });
    }
    this.deps.registry.assertRoom();
    this.deps.registry.assertAccountRoom(account.accountId, account.limits.maxLiveResources);
    // One leg per party: a duo_callback's two are started together, before anyone rings.
    this.admission.admit(candidates.length);
    const routes: Route[] = [];
    for (const [i, list] of candidates.entries()) {
      const route = this.deps.router.take(list, froms[i] ?? null);
      if (!route) {
        for (const r of routes) r.release();
        const gateways = [...new Set(list.map((t) => `${t.gateway.name} (${t.gateway.maxConcurrentCalls} calls)`))];
        throw new ServiceError('capacity_exceeded', `no free capacity on gateway ${gateways.join(', ')}`, {
          limit: `gateway ${gateways.join(', ')}`,
        });
      }
      routes.push(route);
    }
    return routes;
  }

  /**
   * A `from*_uri` must be well-formed (RFC 3261) and present one of the
   * account's caller ids: presenting numbers one does not own is how trunks
   * get blocked. Omitted, the gateway's own caller id is used, which is
   * always allowed.
   */
  #checkCaller(from: string | null | undefined, param: string, account: Account, problems: ParamProblem[]): void {
    if (!from) return;
    const callerId = collect(problems, () => this.deps.router.checkCaller(from, param));
    const allowed = account.limits.callerIds;
    if (callerId === undefined || allowed === null || allowed.includes(callerId)) return;
    problems.push({
      param,
      message: allowed.length
        ? `caller id is not one of this account's caller ids (${allowed.join(', ')})`
        : "must be omitted: this account presents only the gateway's caller id",
    });
  }

  /** Runs the last step of an accepted construct; if it fails, the routes are given back before the error goes out. */
  #accepted(routes: readonly Route[], step: () => void): void {
    try {
      step();
    } catch (err) {
      for (const r of routes) r.release();
      throw err;
    }
  }

  #identity(resourceClass: 'ext.duo_callback' | 'ext.notify_call', owner: ResourceOwner, userData: string | null | undefined): ResourceIdentity {
    return {
      ...this.deps.registry.nextIdentity(resourceClass),
      accountId: owner.account.accountId,
      ownerId: owner.sessionId,
      userData: userData ?? null,
    };
  }

  #party(number: 1 | 2, route: Route, identity: ResourceIdentity): Party {
    return new Party(number, route, this.deps.engine, this.deps.clock, identity.resId, this.deps.limits.maxRedirects);
  }

  /**
   * A construct's `status_url` (issue 10), checked like an event_url
   * (checkWebhookUrl) and, unless the operator allows private targets, not
   * naming a loopback/private/link-local address or `localhost` (names are
   * checked again at each connect, where DNS answers). Refused without a
   * durable event log (no store, `durableEvents: false`): nothing would
   * deliver it. Undefined: none.
   */
  #statusUrl(text: string | null | undefined, problems: ParamProblem[]): string | undefined {
    if (!text) return undefined;
    const webhooks = this.deps.webhooks;
    if (!webhooks || !this.deps.eventLog?.durable) {
      problems.push({ param: 'status_url', message: 'needs the server\'s store: webhooks are delivered from the durable event log' });
      return undefined;
    }
    try {
      const url = checkWebhookUrl(text);
      if (!webhooks.allowPrivateTargets && isPrivateHost(url.hostname)) {
        problems.push({ param: 'status_url', message: `${url.hostname} is a loopback, private or link-local address` });
        return undefined;
      }
      return url.href;
    } catch (err) {
      if (!(err instanceof InvalidWebhookUrl)) throw err;
      problems.push({ param: 'status_url', message: err.message });
      return undefined;
    }
  }

  #launch(resource: DuoCallback | NotifyCall, statusUrl: string | undefined): ConstructResult {
    const { registry, eventLog, clock } = this.deps;
    registry.add(resource);
    // Dial after the reply is on its way, so no event precedes the res_id it names.
    const start = (): void => void setImmediate(() => {
      if (!resource.released) resource.start();
    });
    if (!eventLog) start();
    else {
      // Nothing dials before its row is stored: a crash from then on finds it and releases it at restart.
      const { identity } = resource;
      void eventLog
        .constructed({
          resId: identity.resId,
          accountId: identity.accountId,
          nodeId: registry.nodeId,
          resourceClass: resource.resourceClass,
          processId: identity.processId,
          ownerId: identity.ownerId,
          userData: identity.userData,
          createdAt: clock.now(),
          ...(statusUrl ? { statusUrl } : {}),
        })
        .then(start);
    }
    return {
      res_id: resource.resId,
      user_data: resource.identity.userData,
      ipsc_info: { process_id: resource.identity.processId },
    };
  }
}

/** Runs a check, keeping its invalid-params problems so all of them are reported at once. */
function collect<T>(problems: ParamProblem[], fn: () => T): T | undefined {
  try {
    return fn();
  } catch (err) {
    if (err instanceof ServiceError && err.kind === 'invalid_params') {
      problems.push(...((err.data?.errors as ParamProblem[] | undefined) ?? []));
      return undefined;
    }
    throw err;
  }
}

/** The target, when its gateway is one the account may dial (AccountLimits.gateways). */
function allowedGateway(target: DialTarget, param: string, account: Account): DialTarget {
  const allowed = account.limits.gateways;
  if (allowed !== null && !allowed.includes(target.gateway.name)) {
    throw ServiceError.invalidParams([{ param, message: `gateway '${target.gateway.name}' is not allowed for this account` }]);
  }
  return target;
}

function atMost(problems: ParamProblem[], param: string, value: number, cap: number): number {
  if (value > cap) problems.push({ param, message: `must be at most ${cap} (this server's limit)` });
  return value;
}
