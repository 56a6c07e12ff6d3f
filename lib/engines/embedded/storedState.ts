/**
 * The embedded engine's crash-recovery states read back from the store
 * (issue 9). The store may have been edited by someone with file access or
 * written by an older release: every field goes into a SIP header or names
 * where a CANCEL/BYE is sent, so each is checked against its RFC 3261
 * grammar and rebuilt from the checked values only (display names and
 * unknown fields are dropped; a BYE or CANCEL needs neither).
 */
import { isIP } from 'node:net';
import sip, { type NameAddr, type SipUri } from 'sip';
import { dialUriProblem } from '../sipChecks.js';
import { readStoredObject } from '../storedObject.js';
import type { DialogSnapshot, PendingInvite } from './ClientDialog.js';
import type { SipTarget } from './SipStack.js';

/** Largest state text read back (a real one is a few hundred bytes). */
const MAX_STATE_CHARS = 8192;
/** Route set entries kept (RFC 3261 §12.1.2); a real one has a handful. */
const MAX_ROUTES = 16;
/** RFC 3261 §25.1 `token`. */
const TOKEN = /^[A-Za-z0-9\-.!%*_+`'~]{1,128}$/;
/** RFC 3261 §25.1 `callid` = word ["@" word]. */
const CALL_ID = /^[A-Za-z0-9\-.!%*_+`'~()<>:\\"/[\]?{}]{1,200}(@[A-Za-z0-9\-.!%*_+`'~()<>:\\"/[\]?{}]{1,200})?$/;
/** A header parameter value: token, host or IPv6 reference (no quoted strings: ours have none). */
const PARAM_VALUE = /^[A-Za-z0-9\-.!%*_+`'~:[\]]{1,256}$/;
/** A display name as `sip` parses it (RFC 3261 §25.1 `display-name`): tokens and spaces, or a quoted string without quotes, escapes or controls inside. */
const DISPLAY_NAME = /^([A-Za-z0-9\-.!%*_+`'~ ]{0,128}|"[\x20\x21\x23-\x5b\x5d-\x7e]{0,126}")$/;
/** A host name (RFC 1123) when the gateway was configured by name. */
const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
/** RFC 3261 §8.1.1.5: a CSeq number is below 2**31; the BYE uses the next one. */
const CSEQ_MAX = 2 ** 31 - 2;

type Fields = Record<string, unknown>;

const isToken = (v: unknown): v is string => typeof v === 'string' && TOKEN.test(v);

/** A SIP URI that can go inside `<...>` of a header or on a request line: no `<`, `>` or `"` (not URI characters, RFC 3261 §25.1). */
function isUri(v: unknown): v is string {
  return typeof v === 'string' && v.length <= 1024 && !/[<>"]/.test(v) && !dialUriProblem(v, 'stored URI');
}

/** A stored URI as text: `sip` keeps a Record-Route's URI parsed (an object), a To's as text. */
function uriText(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v !== 'object' || v === null) return undefined;
  try {
    return sip.stringifyUri(v as SipUri);
  } catch {
    return undefined;
  }
}

function target(v: unknown): SipTarget | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const { protocol, address, port } = v as Fields;
  if (protocol !== 'UDP' && protocol !== 'TCP') return undefined;
  if (typeof address !== 'string' || !(isIP(address) || HOSTNAME.test(address))) return undefined;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) return undefined;
  return { protocol, address, port };
}

function nameAddr(v: unknown): NameAddr | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const { params, name } = v as Fields;
  const uri = uriText((v as Fields).uri);
  // The display name is not needed for a BYE and is dropped, but one that is not a plain phrase marks an edited state.
  if (name !== undefined && (typeof name !== 'string' || !DISPLAY_NAME.test(name))) return undefined;
  if (!isUri(uri) || typeof params !== 'object' || params === null || Array.isArray(params)) return undefined;
  const entries = Object.entries(params as Fields);
  if (entries.length > 16 || !entries.every(([k, value]) => TOKEN.test(k) && (value === null || (typeof value === 'string' && PARAM_VALUE.test(value))))) return undefined;
  return { uri, params: Object.fromEntries(entries) as Record<string, string | null> };
}

function cseq(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= CSEQ_MAX ? v : undefined;
}

/**
 * Reads one stored state back: a {@link PendingInvite} (CANCEL) or a
 * {@link DialogSnapshot} (BYE) made of checked values only, or undefined for
 * anything else (skipped, never sent).
 */
export function parseStoredState(text: string): PendingInvite | DialogSnapshot | undefined {
  const s = readStoredObject(text, MAX_STATE_CHARS);
  if (!s) return undefined;
  const to = target(s.target);
  const seq = cseq(s.cseq);
  if (typeof s.callId !== 'string' || !CALL_ID.test(s.callId) || !isToken(s.localTag) || !isUri(s.fromUri) || !to || seq === undefined) return undefined;
  const common = { callId: s.callId, localTag: s.localTag, fromUri: s.fromUri, cseq: seq, target: to };
  if ('kind' in s) {
    if (s.kind !== 'invite' || !isToken(s.branch) || !s.branch.startsWith('z9hG4bK') || !isUri(s.requestUri)) return undefined;
    return { kind: 'invite', ...common, branch: s.branch, requestUri: s.requestUri };
  }
  const remoteTo = nameAddr(s.remoteTo);
  if (!remoteTo || !isUri(s.remoteTarget) || !Array.isArray(s.routeSet) || s.routeSet.length > MAX_ROUTES) return undefined;
  const routeSet = s.routeSet.map(nameAddr);
  if (!routeSet.every((r): r is NameAddr => r !== undefined)) return undefined;
  return { ...common, remoteTo, remoteTarget: s.remoteTarget, routeSet };
}
