import { JSONRPCErrorException, JSONRPCServer, type JSONRPCResponse } from 'json-rpc-2.0';
import type { EventHub } from '../events/EventHub.js';
import type { CallService } from '../service/CallService.js';
import { ServiceError, type ServiceErrorKind } from '../service/ServiceError.js';
import type { Logger } from '../util/logger.js';
import type * as T from './generated/types.js';
import { RpcErrorCode } from './RpcErrorCode.js';
import type { RpcContract } from './RpcContract.js';

/** Who is calling: the session whose id owns resources and subscriptions. */
export interface RpcCaller {
  readonly sessionId: string;
}

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

/**
 * The JSON-RPC methods: each validates its params against the contract,
 * then calls the service. Parse errors, invalid requests, batches and
 * unknown methods are answered by json-rpc-2.0 as the spec prescribes.
 */
export class RpcApi {
  readonly #server = new JSONRPCServer<RpcCaller>();

  constructor(
    private readonly contract: RpcContract,
    service: CallService,
    hub: EventHub,
    private readonly log: Logger,
  ) {
    const handlers: Readonly<Record<string, Handler>> = {
      'ext.duo_callback.construct': (p, c) => service.constructDuoCallback(p as unknown as T.ExtDuoCallbackConstructParams, c.sessionId),
      'ext.duo_callback.cancel': (p) => {
        service.cancelDuoCallback((p as unknown as T.ExtDuoCallbackCancelParams).res_id);
        return null;
      },
      'ext.notify_call.construct': (p, c) => service.constructNotifyCall(p as unknown as T.ExtNotifyCallConstructParams, c.sessionId),
      'sys.resource.get': (p) => service.getResource((p as unknown as T.SysResourceGetParams).res_id),
      'sys.resource.exists': (p) => service.resourceExists((p as unknown as T.SysResourceExistsParams).res_id),
      'sys.subscribe': (p, c): T.SysSubscribeResult => {
        const f = p as T.SysSubscribeParams;
        const subscription_id = hub.subscribe(c.sessionId, {
          ...(f.class ? { resourceClass: f.class } : {}),
          ...(f.event ? { event: f.event } : {}),
          ...(f.res_id ? { resId: f.res_id } : {}),
        });
        return { subscription_id };
      },
      'sys.unsubscribe': (p, c) => hub.unsubscribe(c.sessionId, (p as unknown as T.SysUnsubscribeParams).subscription_id),
      'rpc.discover': () => contract.document,
    };
    const methods = contract.document.methods.map((m) => m.name);
    const unwired = methods.filter((m) => !handlers[m]);
    const extra = Object.keys(handlers).filter((m) => !methods.includes(m));
    if (unwired.length || extra.length) {
      throw new Error(`RPC handlers do not match rpc-schema: missing ${unwired.join(', ') || 'none'}, not in schema ${extra.join(', ') || 'none'}`);
    }
    for (const name of methods) {
      const handler = handlers[name]!;
      this.#server.addMethod(name, (raw: unknown, caller: RpcCaller) => this.#invoke(name, handler, raw, caller));
    }
  }

  /** Answers one text frame: the reply text, or null when nothing is due (notifications only). */
  async handleText(text: string, caller: RpcCaller): Promise<string | null> {
    const reply: JSONRPCResponse | JSONRPCResponse[] | null = await this.#server.receiveJSON(text, caller);
    if (reply === null || (Array.isArray(reply) && reply.length === 0)) return null;
    return JSON.stringify(reply);
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
