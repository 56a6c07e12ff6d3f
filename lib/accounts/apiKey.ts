/**
 * API keys as presented by clients: `cti_<keyId>_<secret>`, 16 + 40 random
 * characters of `[A-Za-z0-9]` (95 and 238 bits). The key id is public (listed
 * by the admin command, safe in logs) and finds the row; the secret is shown
 * once and only its scrypt hash is stored. Word characters only, so a
 * double-click selects the whole key and no shell or URL needs quoting.
 */
import { createHmac, randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { customAlphabet } from 'nanoid';

const ALPHANUMERIC = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const KEY_ID_LENGTH = 16;
const SECRET_LENGTH = 40;
/** Exact length of every presented key; anything else is malformed before any parsing. */
export const PRESENTED_KEY_LENGTH = 'cti_'.length + KEY_ID_LENGTH + 1 + SECRET_LENGTH;
const PRESENTED_KEY = new RegExp(`^cti_([A-Za-z0-9]{${KEY_ID_LENGTH}})_([A-Za-z0-9]{${SECRET_LENGTH}})$`);
/** Grammar of a key id on its own (admin command input). */
export const KEY_ID_PATTERN = `^[A-Za-z0-9]{${KEY_ID_LENGTH}}$`;

const newKeyId = customAlphabet(ALPHANUMERIC, KEY_ID_LENGTH);
const newSecret = customAlphabet(ALPHANUMERIC, SECRET_LENGTH);

/**
 * scrypt cost (RFC 7914): N=2^14, r=8, p=1 (16 MiB, tens of ms per check on
 * one core). The parameters are stored with each hash, so raising them later
 * leaves old keys verifiable.
 */
const SCRYPT = { N: 16_384, r: 8, p: 1 } as const;
const HASH_BYTES = 32;
const SALT_BYTES = 16;

export interface ParsedKey {
  readonly keyId: string;
  readonly secret: string;
}

export interface NewKey extends ParsedKey {
  /** What the client presents: `cti_<keyId>_<secret>`. */
  readonly presented: string;
}

export function generateKey(): NewKey {
  const keyId = newKeyId();
  const secret = newSecret();
  return { keyId, secret, presented: `cti_${keyId}_${secret}` };
}

/** The parts of a presented key, or null for anything that is not exactly one (any type, any length). */
export function parseKey(presented: unknown): ParsedKey | null {
  if (typeof presented !== 'string' || presented.length !== PRESENTED_KEY_LENGTH) return null;
  const m = PRESENTED_KEY.exec(presented);
  return m ? { keyId: m[1]!, secret: m[2]! } : null;
}

/** Label of the signing-key derivation: a later scheme would derive another key from the same secret. */
const SIGNING_LABEL = 'cti-request-signing-v1';

/**
 * The HMAC key of signed HTTP requests (docs/http-api.md#signed-requests):
 * HMAC-SHA256(key = the secret, message = `cti-request-signing-v1`), 64 hex
 * characters. The server stores it when the key is created (the secret itself
 * only as an scrypt hash); clients derive it from their key the same way.
 */
export function signingKeyOf(secret: string): string {
  return createHmac('sha256', secret).update(SIGNING_LABEL).digest('hex');
}

/** `scrypt$<N>$<r>$<p>$<salt>$<hash>` (base64url), with a fresh random salt. */
export async function hashSecret(secret: string): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const hash = await derive(secret, salt, SCRYPT);
  return ['scrypt', SCRYPT.N, SCRYPT.r, SCRYPT.p, salt.toString('base64url'), hash.toString('base64url')].join('$');
}

/** Whether `secret` matches a stored hash; false for a hash this code cannot read. Constant-time compare. */
export async function verifySecret(secret: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [N, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  const salt = Buffer.from(parts[4]!, 'base64url');
  const expected = Buffer.from(parts[5]!, 'base64url');
  if (![N, r, p].every(Number.isSafeInteger) || expected.length === 0) return false;
  const actual = await derive(secret, salt, { N, r, p }, expected.length);
  return timingSafeEqual(actual, expected);
}

function derive(secret: string, salt: Buffer, cost: { N: number; r: number; p: number }, length = HASH_BYTES): Promise<Buffer> {
  // 128·N·r bytes of memory, plus headroom; Node's default maxmem (32 MiB) would refuse larger stored parameters.
  const options: ScryptOptions = { ...cost, maxmem: 256 * cost.N * cost.r + 1024 * 1024 };
  return new Promise((resolve, reject) =>
    scrypt(secret, salt, length, options, (err, key) => (err ? reject(err) : resolve(key))),
  );
}
