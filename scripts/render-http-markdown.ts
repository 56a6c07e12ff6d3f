/**
 * The reference part of docs/http-api.md, rendered from the OpenAPI document
 * the server serves at /openapi.json. The text above MARKER is written by
 * hand and kept as it is.
 */
import type { JsonSchema } from '../lib/api/OpenRpcDocument.js';

export const MARKER = '<!-- Generated below by `npm run gen` from the OpenAPI document (GET /openapi.json): do not edit below this line. -->';

type Schema = JsonSchema & {
  $ref?: string;
  allOf?: Schema[];
  type?: string | string[];
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  default?: unknown;
  description?: string;
  properties?: Record<string, Schema>;
  required?: string[];
};

const cell = (text: string) => text.replaceAll('|', '\\|').replaceAll('\n', ' ');

/** A short type: a component name (documented in api.md), or the type with its range. */
function typeOf(schema: Schema): string {
  const ref = schema.$ref ?? schema.allOf?.[0]?.$ref;
  if (ref) {
    const name = ref.split('/').pop()!;
    return `[\`${name}\`](api.md#${name.toLowerCase()})`;
  }
  if (schema.oneOf) return (schema.oneOf as Schema[]).map(typeOf).join(' or ');
  const types = [schema.type ?? 'any'].flat().filter((t) => t !== 'null');
  const parts = [types.join(' or ')];
  if (schema.type === 'array' && schema.items) parts[0] = `array of ${typeOf(schema.items as Schema)}`;
  if (schema.enum) parts.push(`one of ${schema.enum.filter((v) => v !== null).map((v) => `\`${JSON.stringify(v)}\``).join(', ')}`);
  if (schema.minimum !== undefined || schema.maximum !== undefined) parts.push(`${schema.minimum ?? ''}…${schema.maximum ?? ''}`);
  if (schema.maxLength !== undefined) parts.push(`at most ${schema.maxLength} characters`);
  return parts.join(', ');
}

export function renderHttpMarkdown(doc: JsonSchema): string {
  const lines = ['', '## Reference', ''];
  const paths = doc.paths as Record<string, Record<string, Schema>>;
  for (const [path, operations] of Object.entries(paths)) {
    for (const [method, op] of Object.entries(operations)) {
      lines.push(`### ${method.toUpperCase()} ${path}`, '', `${op.summary as string}.${op.description ? ` ${op.description as string}` : ''}`, '');
      const query = ((op.parameters as Schema[] | undefined) ?? []).filter((p) => p.in === 'query');
      if (query.length) {
        lines.push('| query param | type | required | default | description |', '|---|---|---|---|---|');
        for (const p of query) {
          const s = p.schema as Schema;
          const dflt = s.default === undefined ? '' : `\`${JSON.stringify(s.default)}\``;
          lines.push(`| \`${p.name as string}\` | ${typeOf(s)} | ${p.required ? 'yes' : ''} | ${dflt} | ${cell(s.description ?? '')} |`);
        }
        lines.push('');
      }
      const body = (op.requestBody as Schema | undefined)?.content as Record<string, { schema: Schema }> | undefined;
      const schema = body?.['application/json']?.schema;
      if (schema?.properties) {
        lines.push('| field | type | required | default | description |', '|---|---|---|---|---|');
        for (const [name, field] of Object.entries(schema.properties)) {
          const dflt = field.default === undefined ? '' : `\`${JSON.stringify(field.default)}\``;
          lines.push(`| \`${name}\` | ${typeOf(field)} | ${schema.required?.includes(name) ? 'yes' : ''} | ${dflt} | ${cell(field.description ?? '')} |`);
        }
        lines.push('');
      }
      const responses = op.responses as Record<string, Schema>;
      lines.push(...Object.entries(responses).map(([status, r]) => `- **${status}**: ${cell(r.description ?? '')}`), '');
    }
  }
  return lines.join('\n');
}
