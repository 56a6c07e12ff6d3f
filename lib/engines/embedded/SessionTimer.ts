/**
 * The session timer of one confirmed dialog (RFC 4028): the grammar of
 * Session-Expires and Min-SE, and a two-state timer. When we are the
 * refresher, `refresh` fires at half the interval (§10); when the far end is,
 * `expired` fires when the interval ends less the RFC's slack, min(32 s,
 * interval/3) (§10), and the leg sends BYE. Each 2xx to a refresh (either
 * way) arms it again.
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

/** RFC 4028 §10: the far end's refresh must arrive before the interval ends less min(32 s, interval/3). */
export function expiryMs(seconds: number): number {
  return (seconds - Math.min(32, seconds / 3)) * 1000;
}

export type SessionTimerState =
  | { readonly kind: 'off' }
  | { readonly kind: 'we_refresh'; readonly seconds: number }
  | { readonly kind: 'they_refresh'; readonly seconds: number };

export class SessionTimer {
  readonly #onRefresh: () => void;
  readonly #onExpired: () => void;
  #state: SessionTimerState = { kind: 'off' };
  #refreshTimer: NodeJS.Timeout | undefined;
  #expiryTimer: NodeJS.Timeout | undefined;

  /**
   * `onRefresh`: we are the refresher and half the interval passed (send a
   * refresh). `onExpired`: no refresh succeeded in time (send BYE). Neither
   * fires after stop().
   */
  constructor(onRefresh: () => void, onExpired: () => void) {
    this.#onRefresh = onRefresh;
    this.#onExpired = onExpired;
  }

  get state(): SessionTimerState {
    return this.#state;
  }

  /**
   * Starts the interval again: `seconds` long (bounded to
   * MIN_SE_SECONDS..MAX_SESSION_EXPIRES_SECONDS), refreshed by `we` or
   * `they`. When we refresh, the session still expires if no refresh of
   * ours gets a 2xx before the end of the interval (less the slack).
   */
  arm(seconds: number, refresher: 'we' | 'they'): void {
    this.stop();
    const bounded = Math.min(Math.max(seconds, MIN_SE_SECONDS), MAX_SESSION_EXPIRES_SECONDS);
    this.#state = { kind: refresher === 'we' ? 'we_refresh' : 'they_refresh', seconds: bounded };
    if (refresher === 'we') this.#refreshTimer = setTimeout(this.#fireRefresh, (bounded * 1000) / 2);
    this.#expiryTimer = setTimeout(this.#fireExpired, expiryMs(bounded));
  }

  stop(): void {
    clearTimeout(this.#refreshTimer);
    clearTimeout(this.#expiryTimer);
    this.#refreshTimer = undefined;
    this.#expiryTimer = undefined;
    this.#state = { kind: 'off' };
  }

  readonly #fireRefresh = (): void => {
    this.#refreshTimer = undefined;
    this.#onRefresh();
  };

  readonly #fireExpired = (): void => {
    this.stop();
    this.#onExpired();
  };
}
