import { Ajv, type ErrorObject as AjvError, type ValidateFunction } from 'ajv';
import type { ParamProblem } from '../errors/ServiceError.js';
import { ServiceError } from '../errors/ServiceError.js';
import type { JsonSchema, MethodObject, OpenRpcDocument } from './OpenRpcDocument.js';
import openrpc from '../../rpc-schema/openrpc.json' with { type: 'json' };

/** The contract as loaded from rpc-schema/openrpc.json. */
export const openRpcDocument = openrpc as unknown as OpenRpcDocument;

interface CompiledMethod {
  readonly method: MethodObject;
  readonly validate: ValidateFunction;
}

/**
 * Runtime validation generated from the OpenRPC document: turns positional
 * params into named ones and reports every bad param by name.
 */
export class RpcContract {
  readonly #ajv = new Ajv({ allErrors: true, strict: false, useDefaults: false });
  readonly #methods = new Map<string, CompiledMethod>();
  /** Compiled on first use: only tests check outgoing events. */
  readonly #events = new Map<string, ValidateFunction>();

  constructor(readonly document: OpenRpcDocument = openRpcDocument) {
    this.#ajv.addSchema({ $id: 'openrpc', components: document.components } as JsonSchema);
    for (const method of document.methods) {
      const schema = {
        type: 'object',
        additionalProperties: false,
        required: method.params.filter((p) => p.required).map((p) => p.name),
        properties: Object.fromEntries(method.params.map((p) => [p.name, resolvable(p.schema)])),
      };
      this.#methods.set(method.name, { method, validate: this.#ajv.compile(schema) });
    }
  }

  /** Named, schema-valid params, or an invalid_params ServiceError naming each problem. */
  params(methodName: string, raw: unknown): Record<string, unknown> {
    const { method, validate } = this.#methods.get(methodName)!;
    const named = toNamed(method, raw);
    if (!validate(named)) throw ServiceError.invalidParams(describeProblems(validate.errors ?? []));
    return named;
  }

  /** For tests: problems with an event's params, or [] when they match the schema. */
  eventProblems(eventName: string, params: unknown): string[] {
    const event = this.document['x-events'].find((e) => e.name === eventName);
    if (!event) return [`unknown event ${eventName}`];
    let validate = this.#events.get(eventName);
    if (!validate) {
      validate = this.#ajv.compile(resolvable(event.params));
      this.#events.set(eventName, validate);
    }
    return validate(params) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''}`);
  }
}

/** Points the document's local `$ref`s at the copy registered with Ajv as `openrpc`. */
export function resolvable(schema: JsonSchema): JsonSchema {
  return JSON.parse(JSON.stringify(schema).replaceAll('"#/components/', '"openrpc#/components/')) as JsonSchema;
}

function toNamed(method: MethodObject, raw: unknown): Record<string, unknown> {
  if (raw === undefined) return {};
  if (Array.isArray(raw)) {
    if (raw.length > method.params.length) {
      throw ServiceError.invalidParams([
        { param: 'params', message: `${method.name} takes at most ${method.params.length} positional params, got ${raw.length}` },
      ]);
    }
    // Positional nulls mean "not given", as omitted named params do.
    return Object.fromEntries(raw.map((value, i) => [method.params[i]!.name, value]).filter(([, v]) => v !== undefined));
  }
  if (raw !== null && typeof raw === 'object') return raw as Record<string, unknown>;
  throw ServiceError.invalidParams([{ param: 'params', message: 'must be an object (by name) or an array (by position)' }]);
}

const CALL_URI_PATTERN = /sips\?/;

/** One problem per param, the most telling one: a oneOf's "must match" only when nothing more specific was said. */
export function describeProblems(errors: readonly AjvError[]): ParamProblem[] {
  const byParam = new Map<string, AjvError[]>();
  for (const e of errors) {
    const param =
      e.keyword === 'required' ? String(e.params.missingProperty)
      : e.keyword === 'additionalProperties' && e.instancePath === '' ? String(e.params.additionalProperty)
      : e.instancePath.split('/').slice(1).join('.') || 'params';
    byParam.set(param, [...(byParam.get(param) ?? []), e]);
  }
  return [...byParam].map(([param, list]) => ({ param, message: messageFor(list) }));
}

function messageFor(errors: readonly AjvError[]): string {
  const specific = errors.filter((e) => e.keyword !== 'oneOf' && e.keyword !== 'anyOf' && e.keyword !== 'type');
  const chosen = specific[0];
  if (chosen) {
    if (chosen.keyword === 'required') return 'is required';
    if (chosen.keyword === 'additionalProperties' && chosen.instancePath === '') return 'is not a param of this method';
    if (chosen.keyword === 'pattern' && CALL_URI_PATTERN.test(String(chosen.params.pattern))) {
      return 'must be a SIP URI (sip:user@host) or a phone number';
    }
    if (chosen.keyword === 'enum') return `must be one of ${(chosen.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    return chosen.message ?? 'is invalid';
  }
  const types = [...new Set(errors.filter((e) => e.keyword === 'type').flatMap((e) => [e.params.type].flat() as string[]))];
  return types.length ? `must be ${types.join(' or ')}` : (errors[0]?.message ?? 'is invalid');
}
