import type { JSONRPCID } from 'json-rpc-2.0';

/** Why an entry is not a JSON-RPC 2.0 request, and the id its -32600 answer carries. */
export interface EnvelopeProblem {
  /** The entry's id when it is a valid id (string, number or null); otherwise null (JSON-RPC 2.0 §5). */
  readonly id: JSONRPCID;
  readonly reason: string;
}

const MEMBERS = new Set(['jsonrpc', 'method', 'params', 'id']);

/**
 * Checks one request object against JSON-RPC 2.0 §4 before the library sees
 * it: an object with exactly `jsonrpc: "2.0"`, a string `method`, `params`
 * absent or structured (object/array), `id` absent or a string, number or
 * null, and no other member. Only type checks: nothing here recurses into
 * client values, so any nesting depth costs O(1).
 *
 * @returns null when `entry` is a well-formed request or notification.
 */
export function envelopeProblem(entry: unknown): EnvelopeProblem | null {
  if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) {
    return { id: null, reason: `a request must be an object, got ${kindOf(entry)}` };
  }
  const request = entry as Record<string, unknown>;
  const hasId = Object.hasOwn(request, 'id');
  const idValid = !hasId || isId(request.id);
  const id = hasId && idValid ? (request.id as JSONRPCID) : null;
  if (!idValid) return { id: null, reason: `id must be a string, number or null, got ${kindOf(request.id)}` };
  if (request.jsonrpc !== '2.0') return { id, reason: 'jsonrpc must be exactly "2.0"' };
  if (typeof request.method !== 'string') {
    return { id, reason: Object.hasOwn(request, 'method') ? `method must be a string, got ${kindOf(request.method)}` : 'method is missing' };
  }
  if (Object.hasOwn(request, 'params') && (request.params === null || typeof request.params !== 'object')) {
    return { id, reason: `params must be an object or an array, got ${kindOf(request.params)}` };
  }
  const extra = Object.keys(request).find((k) => !MEMBERS.has(k));
  if (extra !== undefined) return { id, reason: `unknown member ${JSON.stringify(extra.slice(0, 64))}` };
  return null;
}

function isId(value: unknown): boolean {
  return value === null || typeof value === 'string' || typeof value === 'number';
}

function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}
