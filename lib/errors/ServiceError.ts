/**
 * Failures of a service call, independent of the transport that carries them:
 * the JSON-RPC layer maps each kind to an error code, a future HTTP layer to
 * a status.
 */
export interface ParamProblem {
  /** The param's name, or `params` for the call as a whole. */
  readonly param: string;
  readonly message: string;
}

export type ServiceErrorKind =
  | 'invalid_params'
  | 'not_found'
  | 'invalid_state'
  | 'capacity_exceeded'
  | 'engine_unavailable'
  /** No authenticated, enabled account behind the call (issue 8). */
  | 'unauthorized'
  /** Too many attempts; `data.retry_after_ms` says when to try again. */
  | 'rate_limited';

export class ServiceError extends Error {
  constructor(
    readonly kind: ServiceErrorKind,
    message: string,
    readonly data?: Readonly<Record<string, unknown>>,
  ) {
    super(message);
    this.name = 'ServiceError';
  }

  static invalidParams(problems: readonly ParamProblem[]): ServiceError {
    return new ServiceError('invalid_params', problems.map((p) => `${p.param} ${p.message}`).join('; '), {
      errors: problems,
    });
  }
}
