import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

/**
 * Signed HTTP requests (issue 10, seed 002's SDK signing): an HMAC-SHA256, with
 * the API key's signing key, over
 *
 *     METHOD \n PATH \n TIMESTAMP \n NONCE \n hex(SHA-256(body))
 *
 * METHOD upper case, PATH exactly as on the request line (query included,
 * nothing decoded), TIMESTAMP Unix seconds, NONCE 16-64 of `[A-Za-z0-9_-]`, the
 * body hash over the raw body bytes (an empty body hashes the empty string).
 * Sent in four headers; docs/http-api.md#signed-requests has a worked example.
 */
export const SIGNATURE_HEADERS = {
  keyId: 'x-cti-key-id',
  timestamp: 'x-cti-timestamp',
  nonce: 'x-cti-nonce',
  signature: 'x-cti-signature',
} as const;

/** ±5 minutes around the server's clock. */
export const SIGNATURE_WINDOW_SECONDS = 300;

export interface SignedParts {
  readonly keyId: string;
  readonly timestamp: number;
  readonly nonce: string;
  readonly signature: string;
}

const GRAMMAR: Readonly<Record<keyof SignedParts, RegExp>> = {
  keyId: /^[A-Za-z0-9]{16}$/,
  timestamp: /^\d{1,12}$/,
  nonce: /^[A-Za-z0-9_-]{16,64}$/,
  signature: /^[0-9a-f]{64}$/,
};

/**
 * The signature headers of a request: null when it has none (another scheme
 * applies), a message naming the first bad header, or the parts.
 */
export function signedParts(headers: IncomingHttpHeaders): SignedParts | string | null {
  const present = Object.values(SIGNATURE_HEADERS).some((h) => headers[h] !== undefined);
  if (!present) return null;
  const values: Record<string, string> = {};
  for (const [part, header] of Object.entries(SIGNATURE_HEADERS) as Array<[keyof SignedParts, string]>) {
    const value = headers[header];
    if (typeof value !== 'string' || !GRAMMAR[part].test(value)) return `header ${header} is missing or malformed`;
    values[part] = value;
  }
  return { keyId: values.keyId!, timestamp: Number(values.timestamp), nonce: values.nonce!, signature: values.signature! };
}

export function stringToSign(method: string, path: string, timestamp: number, nonce: string, body: Buffer | string): string {
  const bodyHash = createHash('sha256').update(body).digest('hex');
  return `${method.toUpperCase()}\n${path}\n${timestamp}\n${nonce}\n${bodyHash}`;
}

/** hex(HMAC-SHA256(signingKey, text)); the signing key is used as its 64 ASCII characters. */
export function sign(signingKey: string, text: string): string {
  return createHmac('sha256', signingKey).update(text).digest('hex');
}

/** Constant-time comparison of two hex signatures. */
export function signaturesMatch(expected: string, presented: string): boolean {
  const a = Buffer.from(expected, 'hex');
  const b = Buffer.from(presented, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Nonces seen in the signature window, so a captured request cannot be
 * replayed. In memory on this node (a replay to another node of a cluster is
 * not caught; docs/security.md), bounded: when full, new signed requests are
 * refused rather than old nonces forgotten, since forgetting would reopen replay.
 */
export class NonceCache {
  /** key → expiry (ms); insertion order is expiry order because the TTL is constant. */
  readonly #seen = new Map<string, number>();

  constructor(
    private readonly maxEntries: number,
    private readonly ttlMs: number = 2 * SIGNATURE_WINDOW_SECONDS * 1000,
  ) {}

  /** Records a nonce: 'new', 'replayed' (seen within the window), or 'full'. */
  add(keyId: string, nonce: string, nowMs: number): 'new' | 'replayed' | 'full' {
    for (const [key, expires] of this.#seen) {
      if (expires > nowMs) break;
      this.#seen.delete(key);
    }
    const key = `${keyId}:${nonce}`;
    if (this.#seen.has(key)) return 'replayed';
    if (this.#seen.size >= this.maxEntries) return 'full';
    this.#seen.set(key, nowMs + this.ttlMs);
    return 'new';
  }
}
