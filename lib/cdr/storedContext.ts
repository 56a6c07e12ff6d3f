import { Ajv, type ValidateFunction } from 'ajv';
import type { ResourceClass, ResourceContext } from '../api/generated/types.js';
import openrpc from '../../rpc-schema/openrpc.json' with { type: 'json' };

/**
 * Columns of a live resource row as a restart reads them back, from a store
 * that may have been edited, or written by an older release: what restartRelease
 * builds the on_released and CDR from must have the shape clients are
 * promised, and a null party or a non-array `redirects` must not throw in
 * the restart (which would stop the server from starting at all).
 */
const validators = new Map<string, ValidateFunction>();
let ajv: Ajv | undefined;

/** The contract's schema `name` (rpc-schema/openrpc.json components), compiled once. */
function validator(name: 'ResourceContext' | 'ResourceClass'): ValidateFunction {
  let validate = validators.get(name);
  if (!validate) {
    if (!ajv) {
      ajv = new Ajv({ strict: false });
      ajv.addSchema({ $id: 'openrpc', components: (openrpc as { components: object }).components });
    }
    validate = ajv.getSchema(`openrpc#/components/schemas/${name}`);
    if (!validate) throw new Error(`rpc-schema/openrpc.json has no ${name} schema`);
    validators.set(name, validate);
  }
  return validate;
}

/** The `context` column read back: the stored JSON if it is a valid ResourceContext, else null (as if none was stored). */
export function parseStoredContext(column: string | null): ResourceContext | null {
  if (column === null) return null;
  try {
    const context: unknown = JSON.parse(column);
    return validator('ResourceContext')(context) ? (context as ResourceContext) : null;
  } catch {
    return null;
  }
}

/**
 * The `class` column read back: a class of the contract, else null. The
 * on_released method is built from it (`<class>.on_released`), so an edited
 * value must not become a method no client knows.
 */
export function parseStoredClass(column: string): ResourceClass | null {
  return validator('ResourceClass')(column) ? (column as ResourceClass) : null;
}
