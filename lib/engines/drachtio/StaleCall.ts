/**
 * Crash recovery of the drachtio engine (issue 9). drachtio-server and
 * FreeSWITCH are processes of their own: a `kill -9` of the CTI server leaves
 * the party's dialog up in drachtio-server and the endpoint's channel up in
 * FreeSWITCH. Two mechanisms end them after the restart:
 *
 * - **Stored state** (the engine's `dialog` event, kept in the store per
 *   confirmed leg): the party's dialog is ended with a BYE that
 *   drachtio-server builds from its own dialog (route set, remote target,
 *   CSeq), asked for by the dialog's `stackDialogId`.
 * - **Node tag**: every endpoint INVITE carries `X-CTI-Node: <nodeId>`, which
 *   FreeSWITCH keeps as the channel variable `sip_h_X-CTI-Node`. When a
 *   FreeSWITCH connection comes up no endpoint of this node can be live there
 *   (legs on a lost connection were ended), so `hupall` of the tag ends what a
 *   previous run left, including endpoints of calls never confirmed (a crash
 *   while ringing) that the store knows nothing of. The node id in the value
 *   keeps other CTI nodes' channels on a shared FreeSWITCH safe.
 */
import type Srf from 'drachtio-srf';
import { dialUriProblem } from '../sipChecks.js';

/** SIP header (and, prefixed `sip_h_`, FreeSWITCH channel variable) naming the CTI node an endpoint belongs to. */
export const NODE_TAG_HEADER = 'X-CTI-Node';

/** Q.850 cause 41 (temporary failure), as the embedded engine sends on its restart BYEs. */
const RESTART_REASON = 'Q.850;cause=41;text="server restarted"';
/** Largest state text read back from the store (a real one is about 300 bytes). */
const MAX_STATE_CHARS = 4096;

/** What the store keeps of one confirmed leg (serialized as the `dialog` event's state). */
export interface DrachtioDialogState {
  readonly engine: 'drachtio';
  /** drachtio-server's id of the party's UAC dialog (drachtio-srf `Dialog.id`). */
  readonly dialogId: string;
  /** The party's Contact (RFC 3261 §12.1.2 remote target): the BYE's Request-URI. */
  readonly remoteTarget: string;
  /** The party dialog's Call-ID and tags, for the log and for operators matching a carrier's CDR. */
  readonly callId: string;
  readonly localTag: string;
  readonly remoteTag: string;
  /** `host:port` of the FreeSWITCH event socket the endpoint is on, and the endpoint's channel uuid. */
  readonly freeswitch: string;
  readonly uuid: string;
}

/**
 * The fields go into drachtio's text protocol (`sip|txn|dialogId`, one
 * message per CRLF) and an ESL command line: a stored value is checked
 * against these before use, whoever wrote the store.
 */
const DIALOG_ID = /^[\x21-\x7e]{1,256}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Reads a stored state back; undefined for anything not written by {@link DrachtioDialogState} (skipped). */
export function parseDialogState(text: string): DrachtioDialogState | undefined {
  if (text.length > MAX_STATE_CHARS) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const s = value as Record<string, unknown>;
  const fields = ['dialogId', 'remoteTarget', 'callId', 'localTag', 'remoteTag', 'freeswitch', 'uuid'] as const;
  if (s.engine !== 'drachtio' || !fields.every((f) => typeof s[f] === 'string' && (s[f] as string).length > 0)) return undefined;
  const state = s as unknown as DrachtioDialogState;
  const usable = DIALOG_ID.test(state.dialogId) && !state.dialogId.includes('|') && UUID.test(state.uuid) && !dialUriProblem(state.remoteTarget, 'remote target');
  return usable ? state : undefined;
}

/** drachtio-srf 5.0.29's `srf.request(options, callback)` form, which its typings lack. */
interface InDialogRequester {
  request(
    uri: string,
    options: { method: 'BYE'; stackDialogId: string; headers: Record<string, string> },
    callback: (err: Error | null, sent?: { on(event: 'response', listener: (res: { status: number }) => void): void }) => void,
  ): void;
}

/** How a stale dialog's BYE went: the final status, 408 without an answer in time, or why it was not sent. */
export type StaleByeOutcome = { readonly status: number } | { readonly notSent: string };

/**
 * Asks drachtio-server to BYE the party dialog `state` names. `notSent` when
 * drachtio-server no longer knows the dialog (it was restarted too, or the
 * far end hung up meanwhile) or is not connected. Never rejects.
 */
export function byeStaleDialog(srf: Srf, state: DrachtioDialogState, timeoutMs: number): Promise<StaleByeOutcome> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ status: 408 }), timeoutMs);
    const done = (outcome: StaleByeOutcome): void => {
      clearTimeout(timer);
      resolve(outcome);
    };
    try {
      // drachtio-server builds the BYE from its dialog (Request-URI, route set, CSeq) found by stackDialogId.
      (srf as unknown as InDialogRequester).request(
        state.remoteTarget,
        { method: 'BYE', stackDialogId: state.dialogId, headers: { Reason: RESTART_REASON } },
        (err, sent) => {
          if (err || !sent) return done({ notSent: err?.message ?? 'no request' });
          sent.on('response', (res) => done({ status: res.status }));
        },
      );
    } catch (err) {
      done({ notSent: (err as Error).message }); // not connected
    }
  });
}
