/** JSON-RPC error codes: the standard ones and this project's (documented in rpc-schema/). */
export const RpcErrorCode = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603,
  ResourceNotFound: -32001,
  InvalidState: -32002,
  CapacityExceeded: -32003,
  Unauthorized: -32004,
  EngineUnavailable: -32005,
  RateLimited: -32006,
} as const;
