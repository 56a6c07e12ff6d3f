/**
 * The grammar of RFC 4028's Session-Expires and Min-SE headers, shared by
 * both engines: the embedded engine's session timer reads them, the drachtio
 * engine repeats a party's interval in its 2xx. Every value is untrusted
 * network input: anything outside the grammar is `'invalid'`, never a throw.
 */

/** RFC 4028 §4: no Min-SE may be below 90 s; ours is exactly that. */
export const MIN_SE_SECONDS = 90;
/** Longest interval we keep: a larger Session-Expires is cut to this in our 2xx (§9 lets the UAS lower it). */
export const MAX_SESSION_EXPIRES_SECONDS = 86_400;
/** Header values longer than this are garbage, not a grammar to walk. */
const MAX_HEADER_CHARS = 256;

/** Who refreshes, from the point of view of the request's sender (RFC 4028 §4). */
export type RefresherParam = 'uac' | 'uas';

/** A parsed `Session-Expires: delta-seconds *(;se-params)`. */
export interface SessionExpires {
  /** The interval, seconds (1..2^32−1 by grammar; callers bound it). */
  readonly seconds: number;
  /** The `refresher` parameter, when given. */
  readonly refresher: RefresherParam | undefined;
}

const TOKEN = "[A-Za-z0-9.!%*_+`'~-]+";
/** A generic-param (RFC 3261 §25.1): token [ SWS "=" SWS ( token / quoted-string ) ]. */
const PARAM = new RegExp(`^(${TOKEN})(?:\\s*=\\s*(${TOKEN}|"[^"\\\\]*"))?$`);

/**
 * Reads a Session-Expires value (RFC 4028 §4: `delta-seconds *(SEMI
 * se-params)`, refresher = "uac" / "uas"). `undefined` when there is none;
 * `'invalid'` for anything the grammar does not allow (a list, letters, an
 * overlong value, a refresher other than uac/uas, 0 s) — answered 400.
 */
export function parseSessionExpires(value: unknown): SessionExpires | 'invalid' | undefined {
  const params = splitParams(value);
  if (params === undefined || params === 'invalid') return params;
  const [delta, ...rest] = params;
  const seconds = parseDelta(delta);
  if (seconds === undefined) return 'invalid';
  let refresher: RefresherParam | undefined;
  for (const param of rest) {
    const m = PARAM.exec(param);
    if (!m) return 'invalid';
    if (m[1]!.toLowerCase() !== 'refresher') continue; // generic-param: ignored
    const who = m[2]?.toLowerCase();
    if ((who !== 'uac' && who !== 'uas') || refresher !== undefined) return 'invalid';
    refresher = who;
  }
  return { seconds, refresher };
}

/** Reads a Min-SE value (RFC 4028 §5: `delta-seconds *(SEMI generic-param)`); same answers as parseSessionExpires. */
export function parseMinSe(value: unknown): number | 'invalid' | undefined {
  const params = splitParams(value);
  if (params === undefined || params === 'invalid') return params;
  const seconds = parseDelta(params[0]);
  if (seconds === undefined || !params.slice(1).every((p) => PARAM.test(p))) return 'invalid';
  return seconds;
}

/** A header value split at `;`, trimmed; undefined when absent. `sip` joins repeated headers with `,`: invalid here. */
function splitParams(value: unknown): string[] | 'invalid' | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length > MAX_HEADER_CHARS || value.includes(',')) return 'invalid';
  return value.split(';').map((p) => p.trim());
}

/** delta-seconds (RFC 3261 §25.1: 1*DIGIT), 1 ≤ n < 2^32; at most 10 digits so it never loses precision. */
function parseDelta(text: string | undefined): number | undefined {
  if (!text || !/^\d{1,10}$/.test(text)) return undefined;
  const n = Number(text);
  return n >= 1 && n < 2 ** 32 ? n : undefined;
}
