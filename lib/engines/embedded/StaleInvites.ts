/**
 * INVITEs a crashed run of the server sent and never saw finish (issue 9).
 * At restart each gets a CANCEL with the INVITE's own branch (RFC 3261 §9.1),
 * which ends it while it still rings. If the far end answered instead — before
 * the crash or racing the CANCEL — its UAS core retransmits the 2xx until
 * ACKed, for 64·T1 (§13.3.1.4): such a 2xx reaches the restarted stack with no
 * transaction, and is ACKed and its dialog BYEd here. The final failure the
 * CANCEL causes (487) is ACKed too.
 *
 * Only the Call-IDs and From tags remembered here get an answer, for a bounded
 * time and count: a response for anything else is dropped without sending a byte,
 * so a forged response cannot make us send requests (no reflection).
 */
import { nanoid } from 'nanoid';
import type { Message } from 'sip';
import type { Logger } from 'pino';
import { RESTART_REASON, peerOf, toTag, type PendingInvite } from './ClientDialog.js';
import type { SipStack } from './SipStack.js';

/** How long a 2xx is expected after the restart: the far end's 2xx retransmissions last 64·T1 (RFC 3261 §13.3.1.4). */
const STALE_INVITE_MS = 64 * 500;
/** INVITEs remembered at once; past it the oldest is forgotten. */
const MAX_STALE_INVITES = 10_000;
/** Dialogs (To tags, forks) BYEd per INVITE; a 2xx on yet another is only ACKed. */
const MAX_DIALOGS_PER_INVITE = 4;

interface Remembered {
  readonly invite: PendingInvite;
  /** To tags of the dialogs BYEd. */
  readonly ended: Set<string>;
  readonly timer: NodeJS.Timeout;
}

export class StaleInvites {
  readonly #stack: SipStack;
  readonly #log: Logger;
  readonly #invites = new Map<string, Remembered>();

  constructor(stack: SipStack, log: Logger) {
    this.#stack = stack;
    this.#log = log;
  }

  /** Sends the CANCEL of `invite` and remembers it for {@link STALE_INVITE_MS}; `onFinal` gets the CANCEL's final status (408 when unanswered). */
  cancel(invite: PendingInvite, onFinal: (status: number) => void): void {
    this.#remember(invite);
    const to = { uri: invite.requestUri, params: {} };
    const cancel: Message = {
      method: 'CANCEL',
      uri: invite.requestUri,
      headers: {
        via: [{ params: { branch: invite.branch } }],
        to,
        from: { uri: invite.fromUri, params: { tag: invite.localTag } },
        'call-id': invite.callId,
        cseq: { seq: invite.cseq, method: 'CANCEL' },
        'max-forwards': '70',
        reason: RESTART_REASON,
      },
    };
    this.#stack.request(cancel, invite.target, '', (rs) => {
      if ((rs.status ?? 0) >= 200) onFinal(rs.status ?? 0);
    });
  }

  /**
   * A response no transaction of the stack claimed. A 2xx to a remembered
   * INVITE is ACKed (every copy: each is a retransmission waiting for it) and
   * its dialog BYEd once; a failure (the 487 our CANCEL caused) gets the ACK
   * the dead INVITE transaction owed it (RFC 3261 §17.1.1.3: same branch),
   * else the far end resends it for 32 s. Anything else is ignored.
   */
  readonly onStrayResponse = (rs: Message): void => {
    const status = rs.status ?? 0;
    const remembered = this.#invites.get(rs.headers['call-id'] ?? '');
    if (!remembered || status < 200 || rs.headers.cseq?.method !== 'INVITE') return;
    const { invite, ended } = remembered;
    if (rs.headers.from?.params.tag !== invite.localTag || rs.headers.cseq.seq !== invite.cseq) return;
    if (status >= 300) {
      const ack: Message = {
        method: 'ACK',
        uri: invite.requestUri,
        headers: { to: rs.headers.to, from: rs.headers.from, 'call-id': invite.callId, cseq: { seq: invite.cseq, method: 'ACK' }, 'max-forwards': '70' },
      };
      return this.#stack.ack(ack, invite.target, invite.branch);
    }
    const peer = peerOf(rs, invite.requestUri);
    const inDialog = (method: string, seq: number): Message => ({
      method,
      uri: peer.target,
      headers: {
        to: rs.headers.to,
        from: rs.headers.from,
        'call-id': invite.callId,
        cseq: { seq, method },
        route: peer.routeSet,
        'max-forwards': '70',
      },
    });
    this.#stack.ack(inDialog('ACK', invite.cseq), invite.target, `z9hG4bK${nanoid()}`);
    const tag = toTag(rs) ?? '';
    if (ended.has(tag) || ended.size >= MAX_DIALOGS_PER_INVITE) return;
    ended.add(tag);
    const bye = inDialog('BYE', invite.cseq + 1);
    bye.headers.reason = RESTART_REASON;
    this.#stack.request(bye, invite.target, `z9hG4bK${nanoid()}`, (res) => {
      if ((res.status ?? 0) >= 200) this.#log.info({ callId: invite.callId, status: res.status }, 'BYE for a call answered after a restart');
    });
  };

  /** Forgets every INVITE (the stack is stopping). */
  clear(): void {
    for (const { timer } of this.#invites.values()) clearTimeout(timer);
    this.#invites.clear();
  }

  #remember(invite: PendingInvite): void {
    const known = this.#invites.get(invite.callId);
    if (known) clearTimeout(known.timer);
    this.#invites.delete(invite.callId);
    if (this.#invites.size >= MAX_STALE_INVITES) {
      const [oldest] = this.#invites.keys();
      if (oldest !== undefined) this.#forget(oldest);
    }
    const timer = setTimeout(() => this.#forget(invite.callId), STALE_INVITE_MS).unref();
    this.#invites.set(invite.callId, { invite, ended: new Set(), timer });
  }

  #forget(callId: string): void {
    clearTimeout(this.#invites.get(callId)?.timer);
    this.#invites.delete(callId);
  }
}
