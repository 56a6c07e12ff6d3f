/**
 * Grammar and bounds of everything the admin operations accept, checked
 * before anything touches the store. Ajv schemas, one error message per
 * failure naming the field (`limits.gateways/0 must match pattern …`).
 */
import { Ajv } from 'ajv';
import type { AccountLimits } from './Account.js';
import { KEY_ID_PATTERN } from './apiKey.js';

/** `{account_id}` of the seeds' URLs. */
export const ACCOUNT_ID_PATTERN = '^[A-Za-z0-9_-]{1,64}$';
/** Same grammar as gateway names in lib/config. */
const GATEWAY_NAME = { type: 'string', maxLength: 64, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' } as const;
/**
 * The user part of a `from*_uri` as lib/routing/SipUri gives it (escapes
 * decoded where allowed): letters, digits, `+` and the RFC 3261 §25.1
 * unreserved marks; nothing that must stay escaped (`#`, `%`, `@`, `;`).
 */
const CALLER_ID = { type: 'string', pattern: "^[A-Za-z0-9+._~*!'()-]{1,64}$" } as const;
/**
 * Printable text (names and labels end up in terminals, logs and, later, API
 * answers): no C0/C1 control characters (terminal escapes) and no bidi
 * controls (text that displays reversed).
 */
const TEXT = (max: number) =>
  ({ type: 'string', maxLength: max, pattern: '^[^\\u0000-\\u001f\\u007f-\\u009f\\u200e\\u200f\\u202a-\\u202e\\u2066-\\u2069]*$' }) as const;

const limits = {
  type: 'object',
  additionalProperties: false,
  properties: {
    maxLiveResources: { type: ['integer', 'null'], minimum: 1, maximum: 1_000_000 },
    constructsPerSecond: { type: ['integer', 'null'], minimum: 1, maximum: 100_000 },
    gateways: { type: ['array', 'null'], maxItems: 256, uniqueItems: true, items: GATEWAY_NAME },
    callerIds: { type: ['array', 'null'], maxItems: 10_000, uniqueItems: true, items: CALLER_ID },
  },
} as const;

const ajv = new Ajv({ allErrors: false, strict: true });
const checkAccountId = ajv.compile({ type: 'string', pattern: ACCOUNT_ID_PATTERN });
const checkKeyId = ajv.compile({ type: 'string', pattern: KEY_ID_PATTERN });
const checkNewAccount = ajv.compile({
  type: 'object',
  additionalProperties: false,
  required: ['accountId'],
  properties: { accountId: { type: 'string', pattern: ACCOUNT_ID_PATTERN }, name: { ...TEXT(200), minLength: 1 }, limits },
});
const checkLimits = ajv.compile(limits);
const checkLabel = ajv.compile(TEXT(200));

/** A request the store refuses before touching the database. */
export class InvalidAccountInput extends Error {
  override name = 'InvalidAccountInput';
}

export interface NewAccountInput {
  readonly accountId: string;
  /** Defaults to the account id. */
  readonly name?: string;
  /** Unset fields take {@link DEFAULT_LIMITS}. */
  readonly limits?: Partial<AccountLimits>;
}

/**
 * Limits of an account created without them: no per-account caps beyond the
 * server's, every gateway, and only the gateways' own caller ids (an empty
 * list): presenting other numbers is the operator's explicit grant, because
 * caller-id spoofing is how trunks get blocked.
 */
export const DEFAULT_LIMITS: AccountLimits = {
  maxLiveResources: null,
  constructsPerSecond: null,
  gateways: null,
  callerIds: [],
};

type Check = ((value: unknown) => boolean) & { errors?: Array<{ instancePath: string; message?: string }> | null };

/** Messages name fields as the admin command and the JSON output do: `limits.caller_ids.0`. */
function assert(check: Check, value: unknown, what: string): void {
  if (check(value)) return;
  const e = check.errors?.[0];
  const path = [what, ...(e?.instancePath.split('/') ?? [])].filter(Boolean);
  const where = path.map((p) => p.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)).join('.') || 'input';
  throw new InvalidAccountInput(`${where} ${e?.message ?? 'is invalid'}`);
}

export const validate = {
  accountId: (v: unknown): void => assert(checkAccountId, v, 'account_id'),
  keyId: (v: unknown): void => assert(checkKeyId, v, 'key_id'),
  newAccount: (v: unknown): void => assert(checkNewAccount, v, ''),
  limits: (v: unknown): void => assert(checkLimits, v, 'limits'),
  label: (v: unknown): void => assert(checkLabel, v, 'label'),
};

/** Whether `v` is a well-formed account id (lookups answer null instead of throwing). */
export const isAccountId = (v: unknown): v is string => checkAccountId(v);
