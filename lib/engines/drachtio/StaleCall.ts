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
 * - **Pending INVITEs** (the same event, stored once drachtio-server sent
 *   the INVITE): drachtio-server keeps the INVITE transaction of an app that
 *   is gone. It sends no CANCEL when the app's connection drops, and it ACKs
 *   a 2xx that arrives later and keeps that dialog (measured with
 *   drachtio-server 0.9.10, docs/operations.md). A restarted app can still
 *   address both: a CANCEL naming the INVITE's transaction id goes out with
 *   the INVITE's branch (RFC 3261 §9.1), and the dialog id of an answered
 *   INVITE is `<Call-ID>;from-tag=<From tag>`, which a BYE can name.
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
import { readStoredObject } from '../storedObject.js';

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

/** What the store keeps of a leg whose INVITE drachtio-server sent and that has no final answer yet. */
export interface DrachtioInviteState {
  readonly engine: 'drachtio';
  readonly kind: 'invite';
  /** drachtio-server's id of the INVITE transaction (drachtio-srf `stackTxnId`; a challenge's resend has its own). */
  readonly txnId: string;
  readonly callId: string;
  /** Our From tag: with the Call-ID, drachtio-server's id of the dialog a 2xx makes. */
  readonly localTag: string;
  readonly requestUri: string;
  readonly freeswitch: string;
  readonly uuid: string;
}

/** drachtio-server's dialog id of the UAC dialog a 2xx to our INVITE confirms (what drachtio-srf's `Dialog.id` reads). */
export function uacDialogId(callId: string, localTag: string): string {
  return `${callId};from-tag=${localTag}`;
}

/**
 * The fields go into drachtio's text protocol (`sip|txn|dialogId`, one
 * message per CRLF) and an ESL command line: a stored value is checked
 * against these before use, whoever wrote the store.
 */
const DIALOG_ID = /^[\x21-\x7e]{1,256}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Reads a stored state back; undefined for anything not written as {@link DrachtioDialogState} or {@link DrachtioInviteState} (skipped). */
export function parseDialogState(text: string): DrachtioDialogState | DrachtioInviteState | undefined {
  const s = readStoredObject(text, MAX_STATE_CHARS);
  if (!s) return undefined;
  if (s.kind === 'invite') return parseInviteState(s);
  const fields = ['dialogId', 'remoteTarget', 'callId', 'localTag', 'remoteTag', 'freeswitch', 'uuid'] as const;
  if (s.engine !== 'drachtio' || !fields.every((f) => typeof s[f] === 'string' && (s[f] as string).length > 0)) return undefined;
  const state = s as unknown as DrachtioDialogState;
  const usable = DIALOG_ID.test(state.dialogId) && !state.dialogId.includes('|') && UUID.test(state.uuid) && !dialUriProblem(state.remoteTarget, 'remote target');
  return usable ? state : undefined;
}

function parseInviteState(s: Record<string, unknown>): DrachtioInviteState | undefined {
  const fields = ['txnId', 'callId', 'localTag', 'requestUri', 'freeswitch', 'uuid'] as const;
  if (s.engine !== 'drachtio' || !fields.every((f) => typeof s[f] === 'string' && (s[f] as string).length > 0)) return undefined;
  const state = s as unknown as DrachtioInviteState;
  const usable =
    DIALOG_ID.test(state.txnId) && !state.txnId.includes('|') && DIALOG_ID.test(uacDialogId(state.callId, state.localTag)) &&
    !uacDialogId(state.callId, state.localTag).includes('|') && UUID.test(state.uuid) && !dialUriProblem(state.requestUri, 'request URI');
  return usable ? state : undefined;
}

/** drachtio-srf 5.0.29's `srf.request(uri, options, callback)` form, which its typings lack. */
interface StaleRequester {
  request(
    uri: string,
    options: { method: 'BYE'; stackDialogId: string; headers: Record<string, string> } | { method: 'CANCEL'; stackTxnId: string; headers: Record<string, string> },
    callback: (err: Error | null, sent?: { on(event: 'response', listener: (res: { status: number }) => void): void }) => void,
  ): void;
}

/** How a stale dialog's BYE went: the final status, 408 without an answer in time, or why it was not sent. */
export type StaleByeOutcome = { readonly status: number } | { readonly notSent: string };

/**
 * Asks drachtio-server to BYE the party dialog `state` names (drachtio-server
 * takes the Request-URI from its dialog; `remoteTarget` only fills the
 * protocol's slot). `notSent` when drachtio-server no longer knows the
 * dialog (it was restarted too, the far end hung up meanwhile, or an INVITE
 * was never answered) or is not connected. Never rejects.
 */
export function byeStaleDialog(srf: Srf, state: Pick<DrachtioDialogState, 'dialogId' | 'remoteTarget'>, timeoutMs: number): Promise<StaleByeOutcome> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ status: 408 }), timeoutMs);
    const done = (outcome: StaleByeOutcome): void => {
      clearTimeout(timer);
      resolve(outcome);
    };
    try {
      // drachtio-server builds the BYE from its dialog (Request-URI, route set, CSeq) found by stackDialogId.
      (srf as unknown as StaleRequester).request(
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

/**
 * Asks drachtio-server to CANCEL the INVITE transaction `state` names; it
 * sends the CANCEL with the INVITE's own branch and ACKs the 487 itself.
 * Resolves once drachtio-server took it (`sent`; the CANCEL's 200 is never
 * passed up by drachtio-server) or refused it (`notSent`: the transaction
 * is over, or not connected). Never rejects.
 */
export function cancelStaleInvite(srf: Srf, state: DrachtioInviteState, timeoutMs: number): Promise<{ readonly sent: true } | { readonly notSent: string }> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ notSent: 'no reply from drachtio-server' }), timeoutMs);
    const done = (outcome: { readonly sent: true } | { readonly notSent: string }): void => {
      clearTimeout(timer);
      resolve(outcome);
    };
    try {
      (srf as unknown as StaleRequester).request(state.requestUri, { method: 'CANCEL', stackTxnId: state.txnId, headers: { Reason: RESTART_REASON } }, (err) =>
        done(err ? { notSent: err.message } : { sent: true }),
      );
    } catch (err) {
      done({ notSent: (err as Error).message }); // not connected
    }
  });
}
