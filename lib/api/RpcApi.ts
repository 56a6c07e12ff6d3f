import {
  createJSONRPCErrorResponse,
  JSONRPCErrorException,
  JSONRPCServer,
  type JSONRPCID,
  type JSONRPCRequest,
  type JSONRPCResponse,
} from 'json-rpc-2.0';
import type { EventHub } from '../events/EventHub.js';
import type { CallService } from '../service/CallService.js';
import { ServiceError, type ServiceErrorKind } from '../errors/ServiceError.js';
import type { Logger } from '../util/logger.js';
import type { RpcMethods } from './generated/types.js';
import { envelopeProblem } from './JsonRpcEnvelope.js';
import { RpcErrorCode } from './RpcErrorCode.js';
import type { RpcContract } from './RpcContract.js';

/** Who is calling: the session whose id owns resources and subscriptions. */
export interface RpcCaller {
  readonly sessionId: string;
}

/** One handler per schema method, typed by the generated params and result. */
type Handlers = { readonly [M in keyof RpcMethods]: (params: RpcMethods[M]['params'], caller: RpcCaller) => RpcMethods[M]['result'] };
/** A handler once its params passed validation against the same schema. */
type Handler = (params: Record<string, unknown>, caller: RpcCaller) => unknown;

const CODE_FOR: Readonly<Record<ServiceErrorKind, number>> = {
  invalid_params: RpcErrorCode.InvalidParams,
  not_found: RpcErrorCode.ResourceNotFound,
  invalid_state: RpcErrorCode.InvalidState,
  capacity_exceeded: RpcErrorCode.CapacityExceeded,
  engine_unavailable: RpcErrorCode.EngineUnavailable,
};

const MESSAGE_FOR: Readonly<Record<ServiceErrorKind, string>> = {
  invalid_params: 'Invalid params',
  not_found: 'Resource not found',
  invalid_state: 'Invalid state',
  capacity_exceeded: 'Capacity exceeded',
  engine_unavailable: 'Engine unavailable',
};

export interface RpcApiOptions {
  /** Most requests in one batch; a longer batch gets one -32600 naming the limit. */
  readonly maxBatchLength: number;
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
    private readonly log: Logger,
    private readonly options: RpcApiOptions,
  ) {
    const handlers: Handlers = {
      'ext.duo_callback.construct': (p, c) => service.constructDuoCallback(p, c.sessionId),
      'ext.duo_callback.cancel': (p) => {
        service.cancel(p.res_id, 'ext.duo_callback');
        return null;
      },
      'ext.notify_call.construct': (p, c) => service.constructNotifyCall(p, c.sessionId),
      'ext.notify_call.cancel': (p) => {
        service.cancel(p.res_id, 'ext.notify_call');
        return null;
      },
      'sys.resource.get': (p) => service.getResource(p.res_id),
      'sys.resource.exists': (p) => service.resourceExists(p.res_id),
      'sys.subscribe': (p, c) => ({
        subscription_id: hub.subscribe(c.sessionId, {
          ...(p.class ? { resourceClass: p.class } : {}),
          ...(p.event ? { event: p.event } : {}),
          ...(p.res_id ? { resId: p.res_id } : {}),
        }),
      }),
      'sys.unsubscribe': (p, c) => hub.unsubscribe(c.sessionId, p.subscription_id),
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

  #invoke(name: string, handler: Handler, raw: unknown, caller: RpcCaller): unknown {
    try {
      return handler(this.contract.params(name, raw), caller);
    } catch (err) {
      if (err instanceof ServiceError) {
        this.log.info({ method: name, session: caller.sessionId, error: err.message }, 'request refused');
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
