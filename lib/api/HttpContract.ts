import { randomUUID } from 'node:crypto';
import type { ExtDuoCallbackConstructParams, ExtNotifyCallConstructParams } from './generated/types.js';
import type { JsonSchema, OpenRpcDocument } from './OpenRpcDocument.js';
import { openRpcDocument } from './RpcContract.js';

/**
 * The HTTP API's params (seed 000), derived from the JSON-RPC contract: each
 * HTTP field names the RPC param whose schema it takes, so ranges, patterns
 * and limits have one source (rpc-schema/openrpc.json). Only the seed's own
 * addition (`recording`, a flag where the RPC takes a file name) is defined here.
 */

/** An HTTP body field: its seed 000 name, the RPC param it carries, its seed default. */
interface Field {
  readonly name: string;
  readonly rpc: string | null;
  readonly description: string;
  readonly default?: unknown;
  /** For fields with no RPC counterpart. */
  readonly schema?: JsonSchema;
}

export type HttpRouteName = 'duo_callback' | 'notify_call';

const STATUS_URL_FIELD: Field = {
  name: 'status_url',
  rpc: 'status_url',
  description: 'Receives every event of this call as a signed POST (see Webhooks), besides the account\'s event_url.',
};

const DUO_FIELDS: readonly Field[] = [
  { name: 'from1', rpc: 'from1_uri', description: 'Caller id shown to party 1; omitted or null: the gateway\'s.' },
  { name: 'to1', rpc: 'to1_uri', description: 'Party 1: a phone number or a SIP URI of a configured gateway.' },
  { name: 'from2', rpc: 'from2_uri', description: 'Caller id shown to party 2; omitted or null: the gateway\'s.' },
  { name: 'to2', rpc: 'to2_uri', description: 'Party 2; must not be the same number as `to1`.' },
  { name: 'ring_tone', rpc: 'ring_play_file', description: 'Media file played to party 1 while party 2 is dialled (`ring_tone_mode`); empty or null: party 2\'s real ringback.' },
  { name: 'ring_tone_mode', rpc: 'ring_play_mode', default: 3, description: '0: from party 2\'s first 18x; 1: from dialling until the first 18x; 2: from dialling until party 2 answers; 3: the whole file before party 2 is dialled.' },
  { name: 'max_dial_duration', rpc: 'max_ring_seconds', default: 45, description: 'Seconds each party may take to answer after being dialled.' },
  { name: 'max_call_duration', rpc: 'max_answer_seconds', description: 'Seconds the two parties may talk; omitted: the server\'s default.' },
  {
    name: 'recording',
    rpc: null,
    default: false,
    // 0/1 as well: seed 002's SDK sends the flag as a number.
    schema: { type: ['boolean', 'integer', 'null'], enum: [true, false, 1, 0, null] },
    description: 'Record the call (`true` or `1`): a stereo WAV in the server\'s recordings folder, named in the released event\'s `record_file`.',
  },
  { name: 'record_mode', rpc: 'record_mode', default: 0, description: 'When recording starts: 0 when both parties are bridged, 1 when party 1 is dialled, 2 when party 2 is dialled (early media included from then on).' },
  { name: 'countdown_time', rpc: 'countdown_seconds', description: 'Seconds before `max_call_duration` ends the call at which both parties hear the countdown warning (seed 000); less than `max_call_duration`.' },
  { name: 'countdown_voice', rpc: 'countdown_play_file', description: 'Media file of the countdown warning; omitted: a built-in short tone.' },
  { name: 'user_data', rpc: 'user_data', description: 'Echoed in every event of the call.' },
  STATUS_URL_FIELD,
];

const NOTIFY_FIELDS: readonly Field[] = [
  { name: 'from', rpc: 'from_uri', description: 'Caller id shown to the callee; omitted or null: the gateway\'s.' },
  { name: 'to', rpc: 'to_uri', description: 'The callee, or a list tried in order.' },
  { name: 'play_content', rpc: 'play_content', description: 'The prompt (see docs/api.md for its forms).' },
  { name: 'play_repeat', rpc: 'play_repeat', default: 1, description: 'Extra plays after the first.' },
  { name: 'max_dial_duration', rpc: 'max_ring_seconds', description: 'Seconds the callee may ring.' },
  { name: 'collect_dtmf', rpc: 'collect_dtmf', description: 'Collect key presses after or during the prompt (see docs/api.md); the digits arrive in progress events and in the released event\'s `dtmf`.' },
  { name: 'user_data', rpc: 'user_data', description: 'Echoed in every event of the call.' },
  STATUS_URL_FIELD,
];

const ROUTE_FIELDS: Readonly<Record<HttpRouteName, { readonly method: string; readonly fields: readonly Field[] }>> = {
  duo_callback: { method: 'ext.duo_callback.construct', fields: DUO_FIELDS },
  notify_call: { method: 'ext.notify_call.construct', fields: NOTIFY_FIELDS },
};

/** Query strings of the listing routes: the same params as their RPC methods (`after` is the name for `after_event_id`). */
export type HttpQueryName = 'cdr' | 'events' | 'webhook_attempts';
const QUERY_FIELDS: Readonly<Record<HttpQueryName, { readonly method: string; readonly fields: readonly Field[] }>> = {
  cdr: {
    method: 'sys.cdr.list',
    fields: [
      { name: 'since', rpc: 'since', description: 'Released at or after this Unix time (seconds).' },
      { name: 'until', rpc: 'until', description: 'Released before this Unix time (seconds).' },
      { name: 'cursor', rpc: 'cursor', description: '`next_cursor` of the previous page.' },
      { name: 'limit', rpc: 'limit', default: 50, description: 'At most this many CDRs.' },
    ],
  },
  events: {
    method: 'sys.events.replay',
    fields: [
      { name: 'after', rpc: 'after_event_id', description: 'Events with a larger `event_id` than this (0: from the oldest kept).' },
      { name: 'limit', rpc: 'limit', default: 100, description: 'At most this many events.' },
    ],
  },
  webhook_attempts: {
    method: 'sys.webhooks.attempts',
    fields: [
      { name: 'before', rpc: 'before', description: '`next_before` of the previous page: attempts of events older than this `event_id`.' },
      { name: 'limit', rpc: 'limit', default: 50, description: 'At most this many attempts.' },
    ],
  },
};

/** `{account_id}` of the seeds' URLs: the grammar of account ids (lib/accounts). */
export const ACCOUNT_ID_SCHEMA: JsonSchema = { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' };

export class HttpContract {
  /** JSON Schema of each construct body, its `$ref`s pointing into `components` of the OpenRPC document. */
  readonly bodies: Readonly<Record<HttpRouteName, JsonSchema>>;
  /** JSON Schema of each listing route's query string. */
  readonly queries: Readonly<Record<HttpQueryName, JsonSchema>>;

  constructor(readonly document: OpenRpcDocument = openRpcDocument) {
    this.bodies = {
      duo_callback: this.#schema(ROUTE_FIELDS.duo_callback),
      notify_call: this.#schema(ROUTE_FIELDS.notify_call),
    };
    this.queries = {
      cdr: this.#schema(QUERY_FIELDS.cdr),
      events: this.#schema(QUERY_FIELDS.events),
      webhook_attempts: this.#schema(QUERY_FIELDS.webhook_attempts),
    };
  }

  /**
   * The RPC params of a schema-valid duo_callback body: seed names → RPC
   * names, seed defaults applied, `recording: true` → a new file name.
   */
  duoCallbackParams(body: Readonly<Record<string, unknown>>): ExtDuoCallbackConstructParams {
    const params = this.#rename('duo_callback', body) as unknown as ExtDuoCallbackConstructParams;
    // The seed's flag has no file name: one per call, unguessable, in the account's folder.
    return body.recording === true || body.recording === 1 ? { ...params, record_file: `http/${randomUUID()}.wav` } : params;
  }

  notifyCallParams(body: Readonly<Record<string, unknown>>): ExtNotifyCallConstructParams {
    return this.#rename('notify_call', body) as unknown as ExtNotifyCallConstructParams;
  }

  /** The RPC param name of an HTTP field, for error messages that name what the client sent. */
  httpName(route: HttpRouteName, rpcParam: string): string {
    return ROUTE_FIELDS[route].fields.find((f) => f.rpc === rpcParam)?.name ?? rpcParam;
  }

  #rename(route: HttpRouteName, body: Readonly<Record<string, unknown>>): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const field of ROUTE_FIELDS[route].fields) {
      const value = body[field.name] ?? field.default;
      if (field.rpc && value !== undefined && value !== null) out[field.rpc] = value;
    }
    return out;
  }

  #schema({ method: methodName, fields }: { readonly method: string; readonly fields: readonly Field[] }): JsonSchema {
    const method = this.document.methods.find((m) => m.name === methodName);
    if (!method) throw new Error(`rpc-schema has no ${methodName}`);
    const properties: Record<string, JsonSchema> = {};
    const required: string[] = [];
    for (const field of fields) {
      const param = field.rpc ? method.params.find((p) => p.name === field.rpc) : undefined;
      if (field.rpc && !param) throw new Error(`rpc-schema's ${methodName} has no param ${field.rpc}`);
      const schema = param?.schema ?? field.schema!;
      properties[field.name] = {
        ...(schema.$ref ? { allOf: [schema] } : schema),
        description: field.description,
        ...(field.default !== undefined ? { default: field.default } : {}),
      };
      if (param?.required) required.push(field.name);
    }
    return { type: 'object', additionalProperties: false, required, properties };
  }
}
