import { Ajv, type ValidateFunction } from 'ajv';
import type { ResourceContext } from '../api/generated/types.js';
import openrpc from '../../rpc-schema/openrpc.json' with { type: 'json' };

/**
 * The contract's ResourceContext schema (rpc-schema/openrpc.json), compiled
 * once. The `context` column is read back at a restart from a store that
 * may have been edited, or written by an older release: what restartRelease
 * builds the on_released and CDR from must have the shape clients are
 * promised, and a null party or a non-array `redirects` must not throw in
 * the restart (which would stop the server from starting at all).
 */
let validate: ValidateFunction | undefined;

function validator(): ValidateFunction {
  if (!validate) {
    const ajv = new Ajv({ strict: false });
    ajv.addSchema({ $id: 'openrpc', components: (openrpc as { components: object }).components });
    validate = ajv.getSchema('openrpc#/components/schemas/ResourceContext');
    if (!validate) throw new Error('rpc-schema/openrpc.json has no ResourceContext schema');
  }
  return validate;
}

/** The `context` column read back: the stored JSON if it is a valid ResourceContext, else null (as if none was stored). */
export function parseStoredContext(column: string | null): ResourceContext | null {
  if (column === null) return null;
  try {
    const context: unknown = JSON.parse(column);
    return validator()(context) ? (context as ResourceContext) : null;
  } catch {
    return null;
  }
}
