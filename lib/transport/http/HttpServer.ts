import { Ajv, type ErrorObject as AjvError } from 'ajv';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { AddressInfo } from 'node:net';
import type { Account, AccountDirectory } from '../../accounts/Account.js';
import type { Authenticator } from '../../accounts/Authenticator.js';
import { ACCOUNT_ID_SCHEMA, type HttpContract, type HttpRouteName } from '../../api/HttpContract.js';
import type { JsonSchema } from '../../api/OpenRpcDocument.js';
import { describeProblems, resolvable } from '../../api/RpcContract.js';
import type { HttpConfig } from '../../config/ServerConfig.js';
import { ServiceError, type ParamProblem, type ServiceErrorKind } from '../../errors/ServiceError.js';
import type { CallService } from '../../service/CallService.js';
import type { Logger } from '../../util/logger.js';
import { bearerToken } from '../bearer.js';
import { openApiDocument } from './openApiDocument.js';
import { NonceCache, SIGNATURE_WINDOW_SECONDS, sign, signaturesMatch, signedParts, stringToSign, type SignedParts } from './RequestSignature.js';
import type { ServerMetrics } from './ServerMetrics.js';

/** What `GET /readyz` checks. */
export interface Readiness {
  /** The engine can place calls now. */
  engine(): boolean;
  /** The store answers a trivial query; rejects or resolves false otherwise. */
  store(): Promise<boolean>;
}

export interface HttpServerDeps {
  readonly config: HttpConfig;
  readonly contract: HttpContract;
  readonly service: CallService;
  readonly authenticator: Authenticator;
  /** Where signing keys of signed requests are looked up. */
  readonly directory: AccountDirectory;
  /** The account of every request when `auth.mode` is `none`; null: a key is required. */
  readonly openAccount: Account | null;
  readonly metrics: ServerMetrics;
  readonly readiness: Readiness;
  readonly log: Logger;
}

/** The one error body of the HTTP API (docs/http-api.md#errors). */
export interface HttpErrorBody {
  readonly error: {
    /** The service error kind (`invalid_params`, `not_found`, …) or an HTTP-level one (`forbidden`, `payload_too_large`, …). */
    readonly code: string;
    readonly message: string;
    /** For `invalid_params`: every bad field, by the name the client sent. */
    readonly fields?: ReadonlyArray<{ readonly field: string; readonly message: string }>;
    /** For `rate_limited`: also the `Retry-After` header, in seconds rounded up. */
    readonly retry_after_ms?: number;
  };
}

/** A refusal decided in this layer. */
class HttpRefusal extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }
}

const STATUS_FOR: Readonly<Record<ServiceErrorKind, number>> = {
  invalid_params: 400,
  unauthorized: 401,
  not_found: 404,
  invalid_state: 409,
  rate_limited: 429,
  capacity_exceeded: 503,
  engine_unavailable: 503,
};

/** Fastify's own refusals (body parsing) by status. */
const CODE_FOR_STATUS: Readonly<Record<number, string>> = {
  400: 'invalid_request',
  404: 'not_found',
  405: 'method_not_allowed',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
};

/** Nonces remembered at once (each for 10 min): about 166 signed requests per second, sustained, per node. */
const MAX_NONCES = 100_000;

/** The owner session of resources constructed over HTTP: no connection receives their events directly. */
const HTTP_SESSION = 'http';

interface AccountRoute {
  Params: { account_id: string; id?: string };
  Querystring: { since?: number; until?: number; cursor?: string; limit?: number; after?: number; before?: number };
}
type AccountRequest = FastifyRequest<AccountRoute>;

/**
 * The HTTP API (seed 000) on its own listener: `/account/{account_id}/call/…`
 * over the same CallService as the WebSocket API, plus `/openapi.json`,
 * `/metrics`, `/healthz` and `/readyz`. Every request to `/account/…` is
 * authenticated (Bearer API key) before its body is read, and its path account
 * must be the key's; bodies are bounded (`http.maxBodyBytes`) and validated
 * against schemas derived from rpc-schema/openrpc.json.
 */
export class HttpServer {
  readonly #app: FastifyInstance;
  /** The account each authenticated request acts for. */
  readonly #accounts = new WeakMap<FastifyRequest, Account>();
  /** Signed requests whose signature is checked once their body is read. */
  readonly #signed = new WeakMap<FastifyRequest, SignedParts>();
  /** The raw JSON body of each request, for the body hash of signed requests. */
  readonly #rawBodies = new WeakMap<FastifyRequest, Buffer>();
  readonly #nonces = new NonceCache(MAX_NONCES);

  constructor(private readonly deps: HttpServerDeps) {
    const app = Fastify({
      logger: false,
      bodyLimit: deps.config.maxBodyBytes,
      requestTimeout: deps.config.requestTimeoutSeconds * 1000,
      connectionTimeout: deps.config.requestTimeoutSeconds * 1000,
      // Path params are bounded by the schemas below; this bounds what the router looks at.
      routerOptions: { maxParamLength: 200 },
      return503OnClosing: true,
    });
    this.#app = app;
    // JSON only: a text/plain body would reach the schema as a string (fastify parses it by default).
    app.removeContentTypeParser('text/plain');
    // fastify's own JSON parser (prototype-poisoning checks included), keeping the bytes signatures cover.
    const parseJson = app.getDefaultJsonParser('error', 'error');
    app.removeContentTypeParser('application/json');
    app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, body, done) => {
      this.#rawBodies.set(req, body as Buffer);
      parseJson(req, (body as Buffer).toString('utf8'), done);
    });
    // Bodies are JSON and taken as sent; query strings are text, so "50" may be the integer 50 there only.
    const ajvFor = (coerceTypes: boolean): Ajv => {
      const ajv = new Ajv({ allErrors: true, strict: false, useDefaults: false, coerceTypes });
      ajv.addSchema({ $id: 'openrpc', components: deps.contract.document.components } as JsonSchema);
      return ajv;
    };
    const [strict, coercing] = [ajvFor(false), ajvFor(true)];
    app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'querystring' ? coercing : strict).compile(resolvable(schema as JsonSchema)));
    app.setErrorHandler((err, req, reply) => this.#fail(err as FastifyError | Error, req, reply));
    app.setNotFoundHandler((req, reply) => this.#send(reply, 404, { error: { code: 'not_found', message: `no route ${req.method} ${req.url.split('?')[0]!.slice(0, 200)}` } }));
    this.#routes(app);
  }

  async listen(): Promise<AddressInfo> {
    await this.#app.listen({ host: this.deps.config.host, port: this.deps.config.port });
    return this.#app.server.address() as AddressInfo;
  }

  async close(): Promise<void> {
    await this.#app.close();
  }

  #routes(app: FastifyInstance): void {
    const { service, contract, metrics, readiness } = this.deps;
    const accountParams = { type: 'object', required: ['account_id'], properties: { account_id: ACCOUNT_ID_SCHEMA } };
    const callParams = {
      type: 'object',
      required: ['account_id', 'id'],
      properties: { account_id: ACCOUNT_ID_SCHEMA, id: { $ref: '#/components/schemas/ResId' } },
    };
    const authenticated = {
      onRequest: (req: FastifyRequest) => this.#authenticate(req as AccountRequest),
      preValidation: (req: FastifyRequest) => this.#verifySignature(req as AccountRequest),
    };

    app.get('/healthz', () => ({ status: 'ok' }));
    app.get('/readyz', async (_req, reply) => {
      const engine = readiness.engine();
      const store = await readiness.store().catch(() => false);
      return reply.code(engine && store ? 200 : 503).send({ status: engine && store ? 'ready' : 'not_ready', engine, store });
    });
    app.get('/metrics', async (_req, reply) => {
      const { contentType, body } = await metrics.scrape();
      return reply.type(contentType).send(body);
    });
    const openApi = openApiDocument(contract);
    app.get('/openapi.json', () => openApi);

    const construct = (route: HttpRouteName) => async (req: AccountRequest) => {
      const account = this.#accounts.get(req)!;
      const owner = await service.admit(HTTP_SESSION, account.accountId);
      const body = req.body as Record<string, unknown>;
      const result =
        route === 'duo_callback'
          ? service.constructDuoCallback(contract.duoCallbackParams(body), owner)
          : service.constructNotifyCall(contract.notifyCallParams(body), owner);
      // As on the WebSocket: answered once the resource is stored, so a crash after the reply still ends in its on_released.
      await service.durable();
      return { id: result.res_id };
    };
    for (const route of ['duo_callback', 'notify_call'] as const) {
      app.post<AccountRoute>(`/account/:account_id/call/${route}`, { ...authenticated, schema: { params: accountParams, body: contract.bodies[route] } }, construct(route));
    }
    app.post<AccountRoute>('/account/:account_id/call/:id/cancel', { ...authenticated, schema: { params: callParams } }, (req: AccountRequest) => {
      const { accountId } = this.#accounts.get(req)!;
      const id = req.params.id!;
      service.cancel(id, service.getResource(id, accountId).class, accountId);
      return { id };
    });
    app.get<AccountRoute>('/account/:account_id/call/:id', { ...authenticated, schema: { params: callParams } }, (req: AccountRequest) =>
      service.resourceContext(req.params.id!, this.#accounts.get(req)!.accountId),
    );
    app.get<AccountRoute>('/account/:account_id/cdr', { ...authenticated, schema: { params: accountParams, querystring: contract.queries.cdr } }, (req: AccountRequest) => {
      const { since, until, cursor, limit } = req.query;
      return service.listCdrs(this.#accounts.get(req)!.accountId, {
        ...(since != null ? { since } : {}),
        ...(until != null ? { until } : {}),
        ...(cursor != null ? { cursor } : {}),
        limit: limit ?? 50,
      });
    });
    app.get<AccountRoute>('/account/:account_id/cdr/:id', { ...authenticated, schema: { params: callParams } }, (req: AccountRequest) =>
      service.getCdr(req.params.id!, this.#accounts.get(req)!.accountId),
    );
    app.get<AccountRoute>('/account/:account_id/events', { ...authenticated, schema: { params: accountParams, querystring: contract.queries.events } }, (req: AccountRequest) =>
      service.replayEvents(this.#accounts.get(req)!.accountId, req.query.after!, req.query.limit ?? 100),
    );
    app.get<AccountRoute>(
      '/account/:account_id/webhooks/attempts',
      { ...authenticated, schema: { params: accountParams, querystring: contract.queries.webhook_attempts } },
      (req: AccountRequest) => service.webhookAttempts(this.#accounts.get(req)!.accountId, req.query.limit ?? 50, req.query.before ?? undefined),
    );
  }

  /**
   * Bearer key → account (throttled per source address like the WebSocket
   * upgrade), then the path's account must be the key's (403: the key is
   * valid, the target is not its own).
   */
  async #authenticate(req: AccountRequest): Promise<void> {
    let account = this.deps.openAccount;
    const signed = account ? null : signedParts(req.headers);
    if (typeof signed === 'string') throw this.#unauthorized(signed);
    if (signed) {
      if (req.headers.authorization !== undefined) throw this.#unauthorized('send either Authorization or a signature, not both');
      this.#signed.set(req, signed);
      return;
    }
    if (!account) {
      const key = bearerToken(req.headers.authorization);
      if (key === undefined) throw this.#unauthorized('send Authorization: Bearer <api key>');
      const outcome = key === null ? ({ kind: 'refused' } as const) : await this.deps.authenticator.authenticate(key, req.ip);
      if (outcome.kind === 'throttled') {
        throw new ServiceError('rate_limited', 'too many failed authentication attempts from this address', { retry_after_ms: outcome.retryAfterMs });
      }
      if (outcome.kind === 'refused') throw this.#unauthorized('invalid API key');
      account = outcome.account;
    }
    this.#admit(req, account);
  }

  #admit(req: AccountRequest, account: Account): void {
    if (req.params.account_id !== account.accountId) {
      throw new HttpRefusal(403, 'forbidden', 'the path names another account than the API key\'s');
    }
    this.#accounts.set(req, account);
  }

  /**
   * A signed request (RequestSignature.ts), once its body is read: inside the
   * time window, the HMAC of the key's signing key, then a nonce not seen
   * before (recorded only for a valid signature, so nobody can burn another
   * client's nonces). Failed signatures count against the source address as
   * failed keys do.
   */
  async #verifySignature(req: AccountRequest): Promise<void> {
    const parts = this.#signed.get(req);
    if (!parts) return;
    const now = Date.now();
    if (Math.abs(now / 1000 - parts.timestamp) > SIGNATURE_WINDOW_SECONDS) {
      throw this.#unauthorized(`x-cti-timestamp is more than ${SIGNATURE_WINDOW_SECONDS} s from the server's clock (${Math.floor(now / 1000)})`);
    }
    const text = stringToSign(req.method, req.url, parts.timestamp, parts.nonce, this.#rawBodies.get(req) ?? '');
    const outcome = await this.deps.authenticator.check(req.ip, async () => {
      const found = await this.deps.directory.signingKey(parts.keyId);
      return found && signaturesMatch(sign(found.signingKey, text), parts.signature) ? found.account : null;
    });
    if (outcome.kind === 'throttled') {
      throw new ServiceError('rate_limited', 'too many failed authentication attempts from this address', { retry_after_ms: outcome.retryAfterMs });
    }
    if (outcome.kind === 'refused') throw this.#unauthorized('invalid signature');
    const nonce = this.#nonces.add(parts.keyId, parts.nonce, now);
    if (nonce === 'replayed') throw this.#unauthorized('x-cti-nonce was already used');
    if (nonce === 'full') throw new ServiceError('rate_limited', 'too many signed requests in the signature window', { retry_after_ms: 1000 });
    this.#admit(req, outcome.account);
  }

  #unauthorized(message: string): HttpRefusal {
    return new HttpRefusal(401, 'unauthorized', message, { 'www-authenticate': 'Bearer error="invalid_token"' });
  }

  #fail(err: FastifyError | Error, req: FastifyRequest, reply: FastifyReply): FastifyReply {
    if (err instanceof HttpRefusal) {
      reply.headers(err.headers);
      return this.#send(reply, err.status, { error: { code: err.code, message: err.message } });
    }
    if (err instanceof ServiceError) return this.#serviceError(err, req, reply);
    const validation = (err as FastifyError).validation as AjvError[] | undefined;
    if (validation) return this.#send(reply, 400, invalidParams(describeProblems(validation), (p) => p));
    const status = (err as FastifyError).statusCode;
    if (status !== undefined && status >= 400 && status < 500) {
      return this.#send(reply, status, { error: { code: CODE_FOR_STATUS[status] ?? 'invalid_request', message: err.message } });
    }
    this.deps.log.error({ err, url: req.url.slice(0, 200) }, 'request failed');
    return this.#send(reply, 500, { error: { code: 'internal_error', message: 'Internal error' } });
  }

  #serviceError(err: ServiceError, req: FastifyRequest, reply: FastifyReply): FastifyReply {
    const account = this.#accounts.get(req);
    this.deps.log.info({ url: req.url.slice(0, 200), account: account?.accountId, error: err.message }, 'request refused');
    if (err.kind === 'invalid_params') {
      const route: HttpRouteName = req.url.includes('/call/notify_call') ? 'notify_call' : 'duo_callback';
      const problems = (err.data?.errors as ParamProblem[] | undefined) ?? [];
      return this.#send(reply, 400, invalidParams(problems, (p) => this.deps.contract.httpName(route, p)));
    }
    const retryAfterMs = typeof err.data?.retry_after_ms === 'number' ? err.data.retry_after_ms : undefined;
    if (retryAfterMs !== undefined) reply.header('retry-after', String(Math.max(1, Math.ceil(retryAfterMs / 1000))));
    if (err.kind === 'unauthorized') reply.header('www-authenticate', 'Bearer error="invalid_token"');
    return this.#send(reply, STATUS_FOR[err.kind], {
      error: { code: err.kind, message: err.message, ...(retryAfterMs !== undefined ? { retry_after_ms: retryAfterMs } : {}) },
    });
  }

  #send(reply: FastifyReply, status: number, body: HttpErrorBody): FastifyReply {
    return reply.code(status).type('application/json; charset=utf-8').send(body);
  }
}

/** A 400 naming every bad field; RPC param names in the service's messages are turned into the route's field names. */
function invalidParams(problems: readonly ParamProblem[], rename: (param: string) => string): HttpErrorBody {
  const fields = problems.map((p) => {
    const [, head, rest] = /^([A-Za-z0-9_]*)(.*)$/s.exec(p.param)!;
    return { field: rename(head!) + rest, message: p.message };
  });
  return { error: { code: 'invalid_params', message: fields.map((f) => `${f.field} ${f.message}`).join('; '), fields } };
}
