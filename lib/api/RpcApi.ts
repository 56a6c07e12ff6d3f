import {
  createJSONRPCErrorResponse,
  JSONRPCErrorException,
  JSONRPCServer,
  type JSONRPCID,
  type JSONRPCRequest,
  type JSONRPCResponse,
} from 'json-rpc-2.0';
import type { Account } from '../accounts/Account.js';
import type { Authenticator } from '../accounts/Authenticator.js';
import type { EventHub } from '../events/EventHub.js';
import type { CallService } from '../service/CallService.js';
import { ServiceError, type ServiceErrorKind } from '../errors/ServiceError.js';
import type { Logger } from '../util/logger.js';
import type { RpcMethods } from './generated/types.js';
import { envelopeProblem } from './JsonRpcEnvelope.js';
import { RpcErrorCode } from './RpcErrorCode.js';
import type { RpcContract } from './RpcContract.js';

/** Who is calling: the session whose id owns resources and subscriptions, and its account once known. */
export interface RpcCaller {
  readonly sessionId: string;
  /** The client's address: failed authentication attempts are counted per source. */
  readonly peer: string;
  /** null until the connection authenticated (Bearer header at the upgrade or sys.authenticate). */
  readonly accountId: string | null;
  /** Binds the connection to an account for its lifetime; called at most once. */
  authenticated(account: Account): void;
}

/** What an unauthenticated connection may call (issue 8); everything else is -32004. */
const OPEN_METHODS: ReadonlySet<string> = new Set(['rpc.discover', 'sys.authenticate']);

/** One handler per schema method, typed by the generated params and result. */
type Handlers = {
  readonly [M in keyof RpcMethods]: (params: RpcMethods[M]['params'], caller: RpcCaller) => RpcMethods[M]['result'] | Promise<RpcMethods[M]['result']>;
};
/** A handler once its params passed validation against the same schema. */
type Handler = (params: Record<string, unknown>, caller: RpcCaller) => unknown;

const CODE_FOR: Readonly<Record<ServiceErrorKind, number>> = {
  invalid_params: RpcErrorCode.InvalidParams,
  not_found: RpcErrorCode.ResourceNotFound,
  invalid_state: RpcErrorCode.InvalidState,
  capacity_exceeded: RpcErrorCode.CapacityExceeded,
  engine_unavailable: RpcErrorCode.EngineUnavailable,
  unauthorized: RpcErrorCode.Unauthorized,
  rate_limited: RpcErrorCode.RateLimited,
};

const MESSAGE_FOR: Readonly<Record<ServiceErrorKind, string>> = {
  invalid_params: 'Invalid params',
  not_found: 'Resource not found',
  invalid_state: 'Invalid state',
  capacity_exceeded: 'Capacity exceeded',
  engine_unavailable: 'Engine unavailable',
  unauthorized: 'Unauthorized',
  rate_limited: 'Rate limited',
};

export interface RpcApiOptions {
  /** Most requests in one batch; a longer batch gets one -32600 naming the limit. */
  readonly maxBatchLength: number;
}

/** The caller's account; the gate in #invoke has already refused callers without one. */
function accountOf(caller: RpcCaller): string {
  if (caller.accountId === null) throw new ServiceError('unauthorized', 'not authenticated');
  return caller.accountId;
}

/** A construct's result, answered once its resource is stored (CallService.durable). */
async function durably<T>(service: CallService, result: T): Promise<T> {
  await service.durable();
  return result;
}

/**
 * The JSON-RPC methods: each validates its params against the contract,
 * then calls the service. The envelope (parse errors, invalid requests,
 * batches) is checked here against JSON-RPC 2.0 §4-6 before json-rpc-2.0
 * sees a request, because the library answers several cases differently
 * (bare object for a one-reply batch, methods run with an object id, ...);
 * the library then dispatches well-formed requests and answers unknown
 * methods.
 */
export class RpcApi {
  // Every error is logged once by #invoke, as JSON; the library's console.warn would repeat it as text.
  readonly #server = new JSONRPCServer<RpcCaller>({ errorListener: () => undefined });

  constructor(
    private readonly contract: RpcContract,
    service: CallService,
    hub: EventHub,
    authenticator: Authenticator,
    private readonly log: Logger,
    private readonly options: RpcApiOptions,
  ) {
    const handlers: Handlers = {
      'ext.duo_callback.construct': async (p, c) => durably(service, service.constructDuoCallback(p, await service.admit(c.sessionId, accountOf(c)))),
      'ext.duo_callback.cancel': (p, c) => {
        service.cancel(p.res_id, 'ext.duo_callback', accountOf(c));
        return null;
      },
      'ext.notify_call.construct': async (p, c) => durably(service, service.constructNotifyCall(p, await service.admit(c.sessionId, accountOf(c)))),
      'ext.notify_call.cancel': (p, c) => {
        service.cancel(p.res_id, 'ext.notify_call', accountOf(c));
        return null;
      },
      'sys.resource.get': (p, c) => service.resourceContext(p.res_id, accountOf(c)),
      'sys.resource.exists': (p, c) => service.resourceExists(p.res_id, accountOf(c)),
      'sys.subscribe': (p, c) => ({
        subscription_id: hub.subscribe(
          c.sessionId,
          {
            ...(p.class ? { resourceClass: p.class } : {}),
            ...(p.event ? { event: p.event } : {}),
            ...(p.res_id ? { resId: p.res_id } : {}),
          },
          p.from_event_id ?? undefined,
        ),
      }),
      'sys.events.replay': (p, c) => service.replayEvents(accountOf(c), p.after_event_id, p.limit ?? 100),
      'sys.cdr.get': (p, c) => service.getCdr(p.res_id, accountOf(c)),
      'sys.cdr.list': (p, c) =>
        service.listCdrs(accountOf(c), {
          ...(p.since != null ? { since: p.since } : {}),
          ...(p.until != null ? { until: p.until } : {}),
          ...(p.cursor != null ? { cursor: p.cursor } : {}),
          limit: p.limit ?? 50,
        }),
      'sys.webhooks.attempts': (p, c) => service.webhookAttempts(accountOf(c), p.limit ?? 50, p.before ?? undefined),
      'sys.unsubscribe': (p, c) => hub.unsubscribe(c.sessionId, p.subscription_id),
      'sys.authenticate': async (p, c) => {
        const outcome = await authenticator.authenticate(p.api_key, c.peer);
        if (outcome.kind === 'throttled') {
          throw new ServiceError('rate_limited', 'too many failed authentication attempts from this address', {
            retry_after_ms: outcome.retryAfterMs,
          });
        }
        if (outcome.kind === 'refused') throw new ServiceError('unauthorized', 'invalid API key');
        const accountId = outcome.account.accountId;
        if (c.accountId === null) c.authenticated(outcome.account);
        // A connection's account never changes: its resources and subscriptions stay in one account.
        else if (c.accountId !== accountId) throw new ServiceError('invalid_state', 'this connection is authenticated for another account');
        return { account_id: accountId };
      },
      'rpc.discover': () => contract.document,
    };
    const methods = contract.document.methods.map((m) => m.name);
    const unwired = methods.filter((m) => !(m in handlers));
    const extra = Object.keys(handlers).filter((m) => !methods.includes(m));
    if (unwired.length || extra.length) {
      throw new Error(`RPC handlers do not match rpc-schema: missing ${unwired.join(', ') || 'none'}, not in schema ${extra.join(', ') || 'none'}`);
    }
    for (const name of methods as Array<keyof RpcMethods>) {
      const handler = handlers[name] as Handler;
      this.#server.addMethod(name, (raw: unknown, caller: RpcCaller) => this.#invoke(name, handler, raw, caller));
    }
  }

  /**
   * Answers one text frame: the reply text, or null when nothing is due
   * (notifications only). A batch is always answered with an array; an empty
   * or over-long batch with one -32600 object (§6).
   */
  async handleText(text: string, caller: RpcCaller): Promise<string | null> {
    let message: unknown;
    try {
      message = JSON.parse(text);
    } catch (err) {
      return JSON.stringify(errorReply(null, RpcErrorCode.ParseError, 'Parse error', (err as Error).message));
    }
    if (!Array.isArray(message)) {
      const reply = await this.#answer(message, caller);
      return reply === null ? null : JSON.stringify(reply);
    }
    if (message.length === 0) return JSON.stringify(invalidRequest(null, 'an empty batch'));
    if (message.length > this.options.maxBatchLength) {
      return JSON.stringify(
        invalidRequest(null, `a batch of ${message.length} requests exceeds the limit of ${this.options.maxBatchLength}`),
      );
    }
    const replies = (await Promise.all(message.map((entry) => this.#answer(entry, caller)))).filter((r) => r !== null);
    return replies.length === 0 ? null : JSON.stringify(replies);
  }

  async #answer(entry: unknown, caller: RpcCaller): Promise<JSONRPCResponse | null> {
    const problem = envelopeProblem(entry);
    if (problem) return invalidRequest(problem.id, problem.reason);
    return this.#server.receive(entry as JSONRPCRequest, caller);
  }

  async #invoke(name: string, handler: Handler, raw: unknown, caller: RpcCaller): Promise<unknown> {
    try {
      if (caller.accountId === null && !OPEN_METHODS.has(name)) {
        throw new ServiceError('unauthorized', 'authenticate first: Authorization: Bearer <api key> at the upgrade, or sys.authenticate');
      }
      return await handler(this.contract.params(name, raw), caller);
    } catch (err) {
      if (err instanceof ServiceError) {
        this.log.info({ method: name, session: caller.sessionId, account: caller.accountId, error: err.message }, 'request refused');
        throw new JSONRPCErrorException(MESSAGE_FOR[err.kind], CODE_FOR[err.kind], { ...err.data, reason: err.message });
      }
      this.log.error({ err, method: name, session: caller.sessionId }, 'request failed');
      throw new JSONRPCErrorException('Internal error', RpcErrorCode.InternalError);
    }
  }
}

function errorReply(id: JSONRPCID, code: number, message: string, reason: string): JSONRPCResponse {
  return createJSONRPCErrorResponse(id, code, message, { reason });
}

function invalidRequest(id: JSONRPCID, reason: string): JSONRPCResponse {
  return errorReply(id, RpcErrorCode.InvalidRequest, 'Invalid Request', reason);
}
