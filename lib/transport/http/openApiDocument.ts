import { ACCOUNT_ID_SCHEMA, type HttpContract } from '../../api/HttpContract.js';
import type { JsonSchema } from '../../api/OpenRpcDocument.js';

/** `{ "error": { code, message, fields?, retry_after_ms? } }`: the one error body (HttpServer). */
const ERROR_BODY: JsonSchema = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: { type: 'string', description: '`invalid_params`, `unauthorized`, `forbidden`, `not_found`, `invalid_state`, `rate_limited`, `capacity_exceeded`, `engine_unavailable`, `payload_too_large`, `unsupported_media_type`, `invalid_request`, `internal_error`.' },
        message: { type: 'string' },
        fields: {
          type: 'array',
          description: 'For `invalid_params`: every bad field, by the name sent.',
          items: { type: 'object', required: ['field', 'message'], properties: { field: { type: 'string' }, message: { type: 'string' } } },
        },
        retry_after_ms: { type: 'integer', description: 'For `rate_limited` (also the `Retry-After` header, in seconds).' },
      },
    },
  },
};

const ERRORS: Readonly<Record<string, string>> = {
  '400': 'Invalid params: every bad field is named in `error.fields`.',
  '401': 'No, malformed or invalid API key.',
  '403': 'The path names another account than the key\'s.',
  '404': 'No live call with this id in this account (another account\'s id answers the same).',
  '409': 'The call is in a state that does not allow this.',
  '429': 'Rate limited; `Retry-After` says when to try again.',
  '503': 'Engine unavailable or no capacity (server, account or gateway limit).',
};

function errorResponses(codes: readonly string[]): Record<string, JsonSchema> {
  return Object.fromEntries(
    codes.map((c) => [c, { description: ERRORS[c], content: { 'application/json': { schema: { $ref: '#/components/schemas/HttpError' } } } }]),
  );
}

const json = (schema: JsonSchema, description: string): JsonSchema => ({ description, content: { 'application/json': { schema } } });
const ACCOUNT_PARAM = { name: 'account_id', in: 'path', required: true, schema: ACCOUNT_ID_SCHEMA };
const ID_PARAM = { name: 'id', in: 'path', required: true, description: 'The call\'s id (`res_id` on the WebSocket API).', schema: { $ref: '#/components/schemas/ResId' } };
const ID_BODY = {
  content: { 'application/json': { schema: { type: 'object', required: ['id'], properties: { id: { $ref: '#/components/schemas/ResId' } } } } },
} as const;
const ACCEPTED = json(ID_BODY.content['application/json'].schema, 'The call was accepted; dialling starts now. `id` is its `res_id`.');

/** A read-only route of an account: its 200 answer and the error statuses it can give. */
function getOperation(operationId: string, summary: string, parameters: JsonSchema[], ok: JsonSchema, errors: readonly string[], description?: string): JsonSchema {
  return { get: { operationId, summary, ...(description ? { description } : {}), parameters, responses: { '200': ok, ...errorResponses(errors) } } };
}

/** A query-string schema as OpenAPI parameters. */
function queryParams(schema: JsonSchema): JsonSchema[] {
  const properties = schema.properties as Record<string, JsonSchema>;
  const required = schema.required as string[];
  return Object.entries(properties).map(([name, s]) => ({ name, in: 'query', required: required.includes(name), description: s.description, schema: s }));
}

/** The result schema of an RPC method (the HTTP route answers the same). */
function methodResult(contract: HttpContract, method: string): JsonSchema {
  return contract.document.methods.find((m) => m.name === method)!.result.schema;
}

/**
 * The OpenAPI 3.1 document served at `/openapi.json` and rendered into
 * docs/http-api.md: the routes of HttpServer, their bodies taken from the
 * HttpContract (so from rpc-schema/openrpc.json), whose components it embeds.
 */
export function openApiDocument(contract: HttpContract): JsonSchema {
  const construct = (route: 'duo_callback' | 'notify_call', summary: string, description: string): JsonSchema => ({
    post: {
      operationId: route,
      summary,
      description,
      parameters: [ACCOUNT_PARAM],
      requestBody: { required: true, content: { 'application/json': { schema: contract.bodies[route] } } },
      responses: { '200': ACCEPTED, ...errorResponses(['400', '401', '403', '429', '503']) },
    },
  });
  return {
    openapi: '3.1.0',
    info: {
      title: 'CTI server HTTP API',
      version: contract.document.info.version,
      description: 'The HTTP API of seed 000 over the same calls as the WebSocket JSON-RPC API (docs/api.md). Every `/account/{account_id}/…` request carries `Authorization: Bearer <api key>` of that account.',
    },
    components: {
      schemas: { ...contract.document.components.schemas, HttpError: ERROR_BODY },
      securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'An API key `cti_<id>_<secret>` (npm run admin -- key create).' } },
    },
    security: [{ apiKey: [] }],
    paths: {
      '/account/{account_id}/call/duo_callback': construct('duo_callback', 'Two-way callback (seed 000)', 'Dials `to1`; once party 1 answers, dials `to2`; once party 2 answers, bridges them.'),
      '/account/{account_id}/call/notify_call': construct('notify_call', 'Notification call', 'Dials `to` and plays `play_content` `play_repeat + 1` times.'),
      '/account/{account_id}/call/{id}/cancel': {
        post: {
          operationId: 'cancel',
          summary: 'Cancel a live call',
          description: 'A duo_callback until party 2 answers (then 409), a notify_call in any state.',
          parameters: [ACCOUNT_PARAM, ID_PARAM],
          responses: { '200': json(ID_BODY.content['application/json'].schema, 'The call is released (its on_released follows).'), ...errorResponses(['401', '403', '404', '409']) },
        },
      },
      '/account/{account_id}/call/{id}': getOperation(
        'get_call',
        'A call\'s context',
        [ACCOUNT_PARAM, ID_PARAM],
        json({ $ref: '#/components/schemas/ResourceContext' }, 'The call as it is now.'),
        ['401', '403', '404'],
        'Live, or its final context once released (while its CDR is kept).',
      ),
      '/account/{account_id}/cdr': getOperation(
        'list_cdrs',
        'The account\'s CDRs, newest first, paged',
        [ACCOUNT_PARAM, ...queryParams(contract.queries.cdr)],
        json(methodResult(contract, 'sys.cdr.list'), 'One page; `next_cursor` null on the last.'),
        ['400', '401', '403'],
      ),
      '/account/{account_id}/cdr/{id}': getOperation(
        'get_cdr',
        'One released call\'s CDR',
        [ACCOUNT_PARAM, ID_PARAM],
        json({ $ref: '#/components/schemas/Cdr' }, 'The CDR.'),
        ['401', '403', '404'],
      ),
      '/account/{account_id}/events': getOperation(
        'list_events',
        'The durable event log of the account',
        [ACCOUNT_PARAM, ...queryParams(contract.queries.events)],
        json(methodResult(contract, 'sys.events.replay'), 'One page of events.'),
        ['400', '401', '403'],
        'Every event sent for the account\'s calls, in order, after `after` (an `event_id`); `more` is true when `limit` cut the page.',
      ),
      '/account/{account_id}/webhooks/attempts': getOperation(
        'list_webhook_attempts',
        'Webhook delivery attempts, newest event first, paged',
        [ACCOUNT_PARAM, ...queryParams(contract.queries.webhook_attempts)],
        json(methodResult(contract, 'sys.webhooks.attempts'), 'One page; `next_before` null on the last.'),
        ['400', '401', '403'],
        'Every POST of the account\'s events to its event_url: HTTP status (null: no answer), latency, error, and outcome (`delivered`, `retrying`, `failed`).',
      ),
      '/healthz': { get: { operationId: 'healthz', summary: 'The process answers', security: [], responses: { '200': json({ type: 'object' }, '`{"status":"ok"}`') } } },
      '/readyz': {
        get: {
          operationId: 'readyz',
          summary: 'Engine available and store reachable',
          security: [],
          responses: { '200': json({ type: 'object' }, '`{"status":"ready","engine":true,"store":true}`'), '503': json({ type: 'object' }, 'Not ready; says which check failed.') },
        },
      },
      '/metrics': { get: { operationId: 'metrics', summary: 'Prometheus metrics', security: [], responses: { '200': { description: 'Prometheus text format.' } } } },
      '/openapi.json': { get: { operationId: 'openapi', summary: 'This document', security: [], responses: { '200': { description: 'OpenAPI 3.1.' } } } },
    },
  };
}
