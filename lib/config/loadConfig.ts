import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import {
  configSchema,
  drachtioEngineSchema,
  embeddedEngineSchema,
  noEngineSchema,
  postgresStoreSchema,
  sqliteStoreSchema,
} from './configSchema.js';
import type { ServerConfig } from './ServerConfig.js';

/** A configuration that cannot be used; its message is one line naming the setting. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

export interface ConfigSources {
  /** Path of a JSON config file (`--config` or CTI_CONFIG); none: defaults and environment only. */
  readonly file?: string;
  readonly env: NodeJS.ProcessEnv;
}

const ajv = new Ajv({ allErrors: false, useDefaults: true, coerceTypes: true, strict: false });
const validateTop = ajv.compile(configSchema);
const validateEngine = {
  embedded: ajv.compile(embeddedEngineSchema),
  drachtio: ajv.compile(drachtioEngineSchema),
  none: ajv.compile(noEngineSchema),
} as const;
const validateStore = {
  sqlite: ajv.compile(sqliteStoreSchema),
  postgres: ajv.compile(postgresStoreSchema),
} as const;

/**
 * File, then environment (`CTI_LISTEN__PORT=9000` sets listen.port: `__`
 * separates levels, SNAKE_CASE maps to camelCase, JSON values are parsed),
 * then defaults; validated as a whole.
 */
export function loadConfig(sources: ConfigSources): ServerConfig {
  const config = sources.file ? readJson(sources.file) : {};
  for (const [key, value] of Object.entries(sources.env)) {
    if (!key.startsWith('CTI_') || key === 'CTI_CONFIG' || value === undefined) continue;
    setPath(config, key.slice(4).split('__').map(camelCase), parseValue(value));
  }
  if (!validateTop(config)) throw new ConfigError(explain(validateTop.errors, ''));
  const { engine, store } = config as { engine: { type: keyof typeof validateEngine }; store: { type: keyof typeof validateStore } };
  checkVariant(validateEngine[engine.type], engine, '/engine');
  checkVariant(validateStore[store.type], store, '/store');
  const checked = config as unknown as ServerConfig;
  checkRelations(checked);
  const dataDir = resolve(checked.dataDir);
  return {
    ...checked,
    mediaDir: resolve(checked.mediaDir),
    recordingsDir: resolve(checked.recordingsDir),
    dataDir,
    store: checked.store.type === 'sqlite' ? { ...checked.store, path: resolve(dataDir, checked.store.path) } : checked.store,
  };
}

/** A section whose settings depend on its `type` (engine, store), against that type's schema. */
function checkVariant(validate: ValidateFunction, section: unknown, prefix: string): void {
  if (!validate(section)) throw new ConfigError(explain(validate.errors, prefix));
}

function checkRelations(c: ServerConfig): void {
  const names = c.gateways.map((g) => g.name);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) throw new ConfigError(`invalid configuration: gateways: the name '${dup}' is used twice`);
  if (c.defaultGateway && !names.includes(c.defaultGateway)) {
    throw new ConfigError(`invalid configuration: defaultGateway: no gateway is named '${c.defaultGateway}'`);
  }
  if (c.engine.type === 'embedded' && c.engine.rtpPortMin >= c.engine.rtpPortMax) {
    throw new ConfigError('invalid configuration: engine.rtpPortMin must be below engine.rtpPortMax');
  }
  for (const [setting, name] of [['ringbackFile', c.ringbackFile], ['countdownFile', c.countdownFile]] as const) {
    if (isAbsolute(name) || name.split(/[\\/]/).includes('..')) {
      throw new ConfigError(`invalid configuration: ${setting} must be a file name inside mediaDir`);
    }
  }
  if (c.auth.mode === 'none' && !isLoopback(c.listen.host)) {
    throw new ConfigError(`invalid configuration: auth.mode "none" is allowed only on a loopback listen.host, not ${c.listen.host}`);
  }
  if (c.auth.mode === 'none' && c.http.enabled && !isLoopback(c.http.host)) {
    throw new ConfigError(`invalid configuration: auth.mode "none" is allowed only on a loopback http.host, not ${c.http.host}`);
  }
  if (c.limits.defaultMaxAnswerSeconds > c.limits.maxAnswerSecondsCap) {
    throw new ConfigError('invalid configuration: limits.defaultMaxAnswerSeconds must not exceed limits.maxAnswerSecondsCap');
  }
}

/** 127.0.0.0/8, ::1 (also IPv4-mapped) or `localhost`: only this machine can connect. */
function isLoopback(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^(::ffff:)?127(\.\d{1,3}){3}$/.test(h);
}

function readJson(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${file}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    throw new ConfigError(`config file ${file} is not valid JSON: ${(err as Error).message}`);
  }
}

const camelCase = (s: string): string => s.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

/** Objects and arrays are JSON; anything else stays a string for the schema to coerce. */
function parseValue(value: string): unknown {
  if (/^\s*[[{]/.test(value)) {
    try {
      return JSON.parse(value) as unknown;
    } catch {
      return value;
    }
  }
  return value;
}

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    if (typeof node[key] !== 'object' || node[key] === null) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1]!] = value;
}

function explain(errors: ErrorObject[] | null | undefined, prefix: string): string {
  const e = errors?.[0];
  if (!e) return 'invalid configuration';
  const path = `${prefix}${e.instancePath}`.split('/').filter(Boolean).join('.');
  const where = e.keyword === 'additionalProperties' ? [path, String(e.params.additionalProperty)].filter(Boolean).join('.') : path || '(top level)';
  const why = e.keyword === 'additionalProperties' ? 'is not a known setting' : e.message ?? 'is invalid';
  return `invalid configuration: ${where} ${why}`;
}
