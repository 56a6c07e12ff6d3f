import type { LegEnd } from '../telephony/TelephonyEngine.js';
import type { DroppedBy, ReleaseError } from '../api/generated/types.js';

export type ReleaseErrorCode = NonNullable<ReleaseError>['code'];

/** SIP final statuses with a meaning of their own; the rest fall back by class. */
const BY_STATUS: Readonly<Record<number, ReleaseErrorCode>> = {
  408: 'timeout',
  480: 'no_answer',
  487: 'no_answer',
  486: 'busy',
  600: 'busy',
  404: 'unreachable',
  410: 'unreachable',
  484: 'unreachable',
  485: 'unreachable',
  604: 'unreachable',
};

export function codeForSipStatus(status: number): ReleaseErrorCode {
  const known = BY_STATUS[status];
  if (known) return known;
  if (status >= 500 && status < 600) return 'unreachable';
  return 'rejected';
}

/**
 * The error a failed dial reports; `party` is set for two-party resources.
 * A far end that ended the attempt without a failure status (a BYE on an
 * early dialog) or whose answer we had to hang up (no usable media) refused
 * the call: `rejected`; one that stopped refreshing the session (RFC 4028)
 * is `timeout`. The whole table: docs/errors.md.
 */
export function errorForFailedLeg(end: LegEnd, party?: 1 | 2): NonNullable<ReleaseError> {
  const code =
    end.farEndFault ? end.farEndFault
    : end.by === 'engine' ? 'engine_error'
    : end.sipStatus !== undefined ? codeForSipStatus(end.sipStatus)
    : end.by === 'remote' ? 'rejected'
    : 'engine_error';
  return {
    code,
    message: withoutServerPaths(party ? `party ${party}: ${end.reason}` : end.reason),
    ...(end.sipStatus !== undefined && end.by !== 'engine' ? { sip_status: end.sipStatus } : {}),
    ...(party ? { party } : {}),
  };
}

/** Ends after answer: a hang-up is a normal end; an engine failure is not. */
export function errorForEndedCall(end: LegEnd, party?: 1 | 2): ReleaseError {
  return end.by === 'engine' ? errorForFailedLeg(end, party) : null;
}

export function droppedByFor(end: LegEnd): DroppedBy {
  return end.by === 'remote' ? 'usr' : 'sys';
}

/**
 * An engine failure as a client sees it: what failed, then the engine's own
 * words with server paths removed (issue 7: no client-facing message
 * contains a server path).
 */
export function engineError(what: string, err: unknown): NonNullable<ReleaseError> {
  return { code: 'engine_error', message: withoutServerPaths(`${what}: ${err instanceof Error ? err.message : String(err)}`) };
}

/** An absolute path starts a word (after a space, quote, bracket, `=` or `:`) with `/`. */
const SERVER_PATH = /(^|[\s'"(=:])\/[^\s'"),]*/g;

/** Replaces every absolute path in an engine's message with `<path>`. */
export function withoutServerPaths(text: string): string {
  return text.replace(SERVER_PATH, '$1<path>');
}
