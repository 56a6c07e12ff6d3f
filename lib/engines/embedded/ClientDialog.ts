/**
 * The SIP side of one outbound call as a UAC (RFC 3261 §12–15): builds and
 * sends INVITE, ACK, CANCEL and BYE with the right tags, CSeq, route set and
 * remote target, answers 401/407 challenges, and holds a CANCEL until the
 * INVITE has a provisional response (§9.1). It knows nothing of media or
 * call-leg events.
 *
 * Forking (RFC 3261 §13.2.2.4): a proxy may fork the INVITE, so 2xx with
 * different To tags can arrive. The first 2xx confirms this dialog; every
 * later one is ACKed on its own dialog and BYEd at once, else that phone
 * would ring on (retransmitting its 2xx for 64·T1) with nobody on the line.
 *
 * Reliable provisional responses (RFC 3262): the INVITE says `Supported:
 * 100rel`; an 18x with `Require: 100rel` and a valid RSeq is PRACKed on its
 * early dialog (see {@link ClientDialog.provisional}), and one answering our
 * refresh re-INVITE on the confirmed dialog.
 */
import { nanoid } from 'nanoid';
import sip from 'sip';
import type { Message, NameAddr } from 'sip';
import digest, { type DigestContext } from 'sip/digest.js';
import type { Logger } from 'pino';
import type { DialRequest } from '../../telephony/TelephonyEngine.js';
import { MIN_SE_SECONDS } from '../sessionExpires.js';
import type { DialogIdentity, SipStack, SipTarget } from './SipStack.js';

const ALLOW = 'INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, NOTIFY';
/** Extensions we support (RFC 4028 session timers) in the INVITE and our 2xx; the INVITE adds 100rel (RFC 3262, as a UAC only). */
const SUPPORTED = 'timer';
/** RFC 3262 §7.1: RSeq is 1*DIGIT, 1 to 2**31 - 1. */
const RSEQ = /^[0-9]{1,10}$/;
const RSEQ_MAX = 2 ** 31 - 1;
/** Early dialogs whose RSeq is tracked: a fork storm beyond this gets its 18x treated as unreliable. */
const MAX_RELIABLE_DIALOGS = 16;
/** Challenges answered per request before the failure is passed on (a wrong password loops otherwise). */
const MAX_AUTH_ATTEMPTS = 2;
/** RFC 3261 timers for resending our 2xx to an INVITE (§13.3.1.4): T1 doubling up to T2, for 64·T1. */
const T1_MS = 500;
const T2_MS = 4000;
const RESEND_FOR_MS = 64 * T1_MS;
/**
 * Remote tags (early dialogs of a forked INVITE, RFC 3261 §13.2.2.4) kept per
 * call: a far end that sends 18x after 18x with new tags cannot grow memory.
 * Requests on a dialog beyond the bound get 481; the 2xx's dialog always counts.
 */
const MAX_REMOTE_TAGS = 16;

/** The Reason (RFC 3326) of every request that ends a call a crashed run left behind. */
export const RESTART_REASON = 'Q.850;cause=41;text="server restarted"';

/** What a BYE needs once the process that set up the dialog is gone (issue 9): RFC 3261 §12.2.1.1. */
export interface DialogSnapshot {
  readonly callId: string;
  readonly localTag: string;
  readonly fromUri: string;
  readonly remoteTo: NameAddr;
  readonly remoteTarget: string;
  readonly routeSet: NameAddr[];
  /** The last CSeq this side used; the BYE takes the next one. */
  readonly cseq: number;
  readonly target: SipTarget;
}

/**
 * What a CANCEL needs once the process that sent the INVITE is gone, stored
 * before the INVITE is sent (issue 9): the CANCEL repeats the INVITE's
 * Request-URI, Call-ID, From, To, CSeq number and top Via branch (RFC 3261
 * §9.1); the Call-ID and From tag also recognise the INVITE's 2xx.
 */
export interface PendingInvite {
  readonly kind: 'invite';
  readonly callId: string;
  readonly localTag: string;
  readonly fromUri: string;
  readonly requestUri: string;
  readonly cseq: number;
  readonly branch: string;
  readonly target: SipTarget;
}

export class ClientDialog implements DialogIdentity {
  readonly callId = `${nanoid()}@cti`;
  /** Our From tag (RFC 3261 §8.1.1.3), the local tag of every dialog of this call. */
  readonly localTag = nanoid(10);
  /** The first INVITE's branch, chosen up front so that it can be stored before the INVITE is sent. */
  readonly #inviteBranch = `z9hG4bK${nanoid()}`;
  readonly #stack: SipStack;
  readonly #target: SipTarget;
  readonly #request: DialRequest;
  readonly #log: Logger;
  readonly #contact: NameAddr[];
  #cseq = 1;
  #invite: Message | undefined;
  #provisional = false;
  #cancelPending = false;
  #ack: Message | undefined;
  /** The confirming 2xx's ACK is built but not yet sent ({@link releaseAck}). */
  #ackHeld = false;
  #ackSeq = 0;
  /** Set from the 2xx: what in-dialog requests need. */
  #remoteTo: NameAddr | undefined;
  /** The To tag of the 2xx that confirmed the dialog. */
  #confirmedTag: string | undefined;
  /** The Allow header of the 2xx that confirmed the dialog (what the far end accepts in it). */
  #peerAllow = '';
  /** To tags of the 1xx/2xx to our INVITE: the far ends of this call's dialogs (bounded). */
  readonly #remoteTags = new Set<string>();
  /** To tags of forked 2xx we ACKed and BYEd, to only re-ACK their retransmissions. */
  readonly #forksEnded = new Set<string>();
  #remoteTarget: string;
  #routeSet: NameAddr[] = [];
  #auth: DigestContext = {};
  /** Makes a re-sent INVITE's identity durable before it goes ({@link invite}). */
  #beforeResend: (invite: PendingInvite) => Promise<void> = () => Promise.resolve();
  /** The RSeq of the last reliable 18x PRACKed, per early dialog (To tag): RFC 3262 §4. */
  readonly #rseqs = new Map<string, number>();
  /** Our 2xx to a far-end INVITE that no ACK has confirmed yet. */
  #unacked: { seq: number; timer: NodeJS.Timeout } | undefined;

  constructor(stack: SipStack, target: SipTarget, request: DialRequest, log: Logger) {
    this.#stack = stack;
    this.#target = target;
    this.#request = request;
    this.#log = log;
    this.#remoteTarget = request.requestUri;
    const transport = target.protocol === 'TCP' ? ';transport=tcp' : '';
    this.#contact = [{ uri: `sip:cti@${stack.publicHost}:${stack.port}${transport}`, params: {} }];
  }

  /** The INVITE {@link invite} sends first (a challenge's resend has another CSeq and branch: `beforeResend` gets it). */
  pendingInvite(): PendingInvite {
    return this.#pending(this.#cseq, this.#inviteBranch);
  }

  #pending(cseq: number, branch: string): PendingInvite {
    return {
      kind: 'invite',
      callId: this.callId,
      localTag: this.localTag,
      fromUri: this.#request.fromUri,
      requestUri: this.#request.requestUri,
      cseq,
      branch,
      target: this.#target,
    };
  }

  /**
   * Sends the INVITE; `onResponse` sees every response except challenges
   * this dialog answers itself. The INVITE re-sent with credentials after a
   * 401/407 has a new CSeq and branch (RFC 3261 §8.1.3.5, §22.2): it goes
   * only once `beforeResend` (given its identity) resolves, so a crash
   * recovery that CANCELs it matches that transaction (issue 9). If a
   * CANCEL was asked meanwhile it is not sent at all and the challenge is
   * passed on as the final response.
   */
  invite(sdp: string, onResponse: (rs: Message) => void, beforeResend: (invite: PendingInvite) => Promise<void>): void {
    this.#beforeResend = beforeResend;
    const rq: Message = {
      method: 'INVITE',
      uri: this.#request.requestUri,
      headers: {
        to: { uri: this.#request.requestUri, params: {} },
        from: { uri: this.#request.fromUri, params: { tag: this.localTag } },
        'call-id': this.callId,
        cseq: { seq: this.#cseq, method: 'INVITE' },
        contact: this.#contact,
        'max-forwards': '70',
        allow: ALLOW,
        supported: `${SUPPORTED}, 100rel`,
        'user-agent': 'cti-server',
        'content-type': 'application/sdp',
      },
      content: sdp,
    };
    this.#sendRequest(rq, onResponse, 0, this.#inviteBranch);
  }

  /**
   * ACKs a 2xx. The first 2xx fixes the dialog's routing and gives
   * `confirmed`, its ACK held until {@link releaseAck}; a 2xx with the same
   * tag is a `retransmission`; a 2xx with another To tag is a forked answer,
   * ACKed and BYEd on its own dialog here, and gives `forked`.
   */
  ack(rs: Message): 'confirmed' | 'retransmission' | 'forked' {
    const seq = rs.headers.cseq?.seq ?? 0;
    const tag = toTag(rs);
    if (this.#ack && tag === this.#confirmedTag) {
      if (this.#ackSeq === seq && !this.#ackHeld) this.#stack.ack(this.#ack, this.#target, `z9hG4bK${nanoid()}`);
      return 'retransmission';
    }
    const peer = peerOf(rs, this.#request.requestUri);
    if (this.#ack) {
      this.#endFork(rs, tag, peer, seq);
      return 'forked';
    }
    this.#remoteTo = rs.headers.to;
    this.#confirmedTag = tag;
    this.#peerAllow = typeof rs.headers.allow === 'string' ? rs.headers.allow : '';
    this.#remoteTarget = peer.target;
    this.#routeSet = peer.routeSet;
    this.#ackSeq = seq;
    this.#ack = this.#inDialog('ACK', seq);
    this.#ackHeld = true;
    return 'confirmed';
  }

  hasRemoteTag(tag: string): boolean {
    return tag === this.#confirmedTag || this.#remoteTags.has(tag);
  }

  /**
   * Sends the ACK of the confirming 2xx, held by {@link ack} until the caller
   * made the dialog's state durable (issue 9: while no ACK went out, the far
   * end retransmits its 2xx, so a crash in between still reaches a restarted
   * server). Idempotent; a BYE releases it first.
   */
  releaseAck(): void {
    if (!this.#ack || !this.#ackHeld) return;
    this.#ackHeld = false;
    this.#stack.ack(this.#ack, this.#target, `z9hG4bK${nanoid()}`);
  }

  /** Whether the far end's 2xx listed `method` in its Allow header (RFC 3261 §20.5). */
  peerAllows(method: string): boolean {
    return this.#peerAllow.split(',').some((m) => m.trim().toUpperCase() === method);
  }

  /**
   * Sends a session refresh on the confirmed dialog (RFC 4028 §7.4, §9): an
   * UPDATE without a body, or a re-INVITE offering `sdp` (unchanged, same
   * o= version: RFC 6337 §5.1), with `Session-Expires: <seconds>;refresher=uac`.
   * A 2xx to a re-INVITE is ACKed here; a reliable 18x to it is PRACKed on
   * the confirmed dialog (RFC 3262 applies to re-INVITEs too; its RSeq count
   * starts afresh with each request, §3), the rest of an 18x ignored.
   * `onFinal` gets the final response (or the transaction layer's 408/503).
   */
  refresh(method: 'UPDATE' | 'INVITE', sdp: string | undefined, seconds: number, onFinal: (rs: Message) => void): void {
    const rq = this.#inDialog(method, ++this.#cseq);
    rq.headers.contact = this.#contact;
    rq.headers['session-expires'] = `${seconds};refresher=uac`;
    rq.headers['min-se'] = String(MIN_SE_SECONDS);
    rq.headers.supported = SUPPORTED;
    if (sdp !== undefined) {
      rq.headers['content-type'] = 'application/sdp';
      rq.content = sdp;
    }
    const rseqs = new Map<string, number>();
    this.#sendRequest(rq, (rs) => {
      const status = rs.status ?? 0;
      if (status < 200) {
        if (method === 'INVITE' && toTag(rs) === this.#confirmedTag) this.#prackIfReliable(rs, rseqs, this.#confirmed());
        return;
      }
      if (method === 'INVITE' && status < 300) this.#stack.ack(this.#inDialog('ACK', rs.headers.cseq?.seq ?? 0), this.#target, `z9hG4bK${nanoid()}`);
      onFinal(rs);
    }, 0);
  }

  /**
   * Looks at an 18x before anything else does (RFC 3262 §4). A reliable one
   * (`Require: 100rel`, an RSeq, a To tag) whose RSeq is the first on its
   * early dialog, or one above the last, is PRACKed there (`RAck: <rseq>
   * <cseq> INVITE`; the PRACK's non-INVITE transaction retransmits it until
   * answered) and gives `process`. Any other RSeq on that dialog — a
   * retransmission of the 18x while our PRACK is on its way, or one out of
   * order — gives `discard`: neither PRACKed again nor processed. An 18x
   * without `Require: 100rel`, or whose RSeq is missing or not 1–2^31-1,
   * is taken as an unreliable 18x (`process`, no PRACK): far ends that
   * need the PRACK will retransmit it and then fail the call, which is
   * the outcome a broken far end gets.
   */
  provisional(rs: Message): 'process' | 'discard' {
    const peer = peerOf(rs, this.#request.requestUri);
    return this.#prackIfReliable(rs, this.#rseqs, { to: rs.headers.to, target: peer.target, routeSet: peer.routeSet });
  }

  /** {@link provisional}'s rule for one INVITE: `rseqs` holds its last RSeq per To tag, the PRACK goes on `dialog`. */
  #prackIfReliable(rs: Message, rseqs: Map<string, number>, dialog: ForkedDialog): 'process' | 'discard' {
    if (!requires100rel(rs)) return 'process';
    const rseq = rseqOf(rs);
    const tag = toTag(rs);
    if (rseq === undefined || tag === undefined || (!rseqs.has(tag) && rseqs.size >= MAX_RELIABLE_DIALOGS)) {
      this.#log.warn({ status: rs.status, rseq: String(rs.headers.rseq ?? ''), tag }, 'an 18x requires 100rel without a usable RSeq or To tag: taken as unreliable');
      return 'process';
    }
    const last = rseqs.get(tag);
    if (last !== undefined && rseq !== last + 1) return 'discard';
    rseqs.set(tag, rseq);
    const prack = this.#inDialog('PRACK', ++this.#cseq, dialog);
    prack.headers.RAck = `${rseq} ${rs.headers.cseq?.seq ?? 0} INVITE`;
    this.#sendRequest(prack, () => undefined, 0);
    return 'process';
  }

  /**
   * Whether `rq` belongs to a dialog other than the confirmed one (a forked
   * phone's BYE, say): its From tag is not the confirmed 2xx's To tag.
   * Before the answer every early dialog counts as ours.
   */
  isOtherDialog(rq: Message): boolean {
    return this.#confirmedTag !== undefined && rq.headers.from?.params.tag !== this.#confirmedTag;
  }

  /** ACK (every time) and BYE (once) a forked 2xx's dialog. */
  #endFork(rs: Message, tag: string | undefined, peer: Peer, seq: number): void {
    const key = tag ?? '';
    const dialog = { to: rs.headers.to, target: peer.target, routeSet: peer.routeSet };
    this.#stack.ack(this.#inDialog('ACK', seq, dialog), this.#target, `z9hG4bK${nanoid()}`);
    if (this.#forksEnded.has(key)) return;
    this.#forksEnded.add(key);
    this.#log.info({ tag }, 'a forked 2xx: ACK and BYE its dialog');
    const bye = this.#inDialog('BYE', seq + 1, dialog);
    this.#log.debug(`> BYE (forked dialog ${key})`);
    this.#stack.request(bye, this.#target, `z9hG4bK${nanoid()}`, (res) => this.#log.debug(`< ${res.status} ${res.reason ?? ''} (BYE, forked dialog)`));
  }

  /** The confirmed dialog's state (after the 2xx was ACKed), or undefined before. */
  snapshot(): DialogSnapshot | undefined {
    if (!this.#remoteTo) return undefined;
    return {
      callId: this.callId,
      localTag: this.localTag,
      fromUri: this.#request.fromUri,
      remoteTo: this.#remoteTo,
      remoteTarget: this.#remoteTarget,
      routeSet: this.#routeSet,
      cseq: this.#cseq,
      target: this.#target,
    };
  }

  /**
   * A BYE for a dialog a previous run of the server confirmed (its
   * {@link snapshot}); `onFinal` gets the final status, or 408 from the
   * transaction layer. A challenge is not answered: the credentials may
   * have changed since.
   */
  static byeStale(stack: SipStack, dialog: DialogSnapshot, onFinal: (status: number) => void): void {
    const bye: Message = {
      method: 'BYE',
      uri: dialog.remoteTarget,
      headers: {
        to: dialog.remoteTo,
        from: { uri: dialog.fromUri, params: { tag: dialog.localTag } },
        'call-id': dialog.callId,
        cseq: { seq: dialog.cseq + 1, method: 'BYE' },
        route: dialog.routeSet,
        'max-forwards': '70',
        reason: RESTART_REASON,
      },
    };
    stack.request(bye, dialog.target, `z9hG4bK${nanoid()}`, (rs) => {
      if ((rs.status ?? 0) >= 200) onFinal(rs.status ?? 0);
    });
  }

  /** CANCELs the INVITE now, or as soon as it has a provisional response. */
  cancel(): void {
    if (this.#provisional) this.#sendCancel();
    else this.#cancelPending = true;
  }

  #sendCancel(): void {
    const invite = this.#invite;
    const topVia = invite?.headers.via?.[0];
    if (!invite || !topVia) return;
    this.#cancelPending = false;
    const cancel: Message = {
      method: 'CANCEL',
      uri: invite.uri,
      headers: {
        via: [{ ...topVia, params: { ...topVia.params } }],
        to: invite.headers.to,
        from: invite.headers.from,
        'call-id': this.callId,
        cseq: { seq: invite.headers.cseq?.seq ?? 0, method: 'CANCEL' },
        'max-forwards': '70',
      },
    };
    this.#log.debug('> CANCEL');
    this.#stack.request(cancel, this.#target, '', (rs) => this.#log.debug(`< ${rs.status} ${rs.reason ?? ''} (CANCEL)`));
  }

  bye(onFinal: () => void): void {
    this.releaseAck();
    this.#sendRequest(this.#inDialog('BYE', ++this.#cseq), (rs) => {
      if ((rs.status ?? 0) >= 200) onFinal();
    }, 0);
  }

  /**
   * A response to an in-dialog request from the far end, with our Contact;
   * a 2xx to INVITE or UPDATE also says what we allow and support (RFC 3311
   * §5.1, RFC 4028 §9). `extra` adds headers (Session-Expires, Min-SE, ...).
   */
  respond(rq: Message, status: number, reason: string, sdp?: string, extra: Readonly<Record<string, string>> = {}): void {
    const offerAnswer = (rq.method === 'INVITE' || rq.method === 'UPDATE') && status >= 200 && status < 300;
    const headers = {
      contact: this.#contact,
      ...(offerAnswer ? { allow: ALLOW, supported: SUPPORTED } : {}),
      ...(sdp === undefined ? {} : { 'content-type': 'application/sdp' }),
      ...extra,
    };
    const rs = sip.makeResponse(rq, status, reason, { headers, ...(sdp === undefined ? {} : { content: sdp }) });
    this.#log.debug(`> ${status} ${reason} (${rq.method ?? ''})`);
    this.#stack.respond(rs);
    if (rq.method === 'INVITE' && status >= 200 && status < 300) this.#resendUntilAck(rs, rq.headers.cseq?.seq ?? 0);
  }

  /** An ACK from the far end: stops resending the 2xx it confirms. */
  acked(ack: Message): void {
    if (this.#unacked && this.#unacked.seq === ack.headers.cseq?.seq) this.stopResending();
  }

  stopResending(): void {
    clearTimeout(this.#unacked?.timer);
    this.#unacked = undefined;
  }

  /**
   * `sip` sends a 2xx to an INVITE once, and its transaction swallows the
   * INVITE's retransmissions: a lost 2xx would never be repeated and the far
   * end would give up on the re-INVITE. So we resend it, as RFC 3261 asks of
   * the UAS core, until the ACK comes or 64·T1 passed.
   */
  #resendUntilAck(rs: Message, seq: number): void {
    this.stopResending();
    const resend = (interval: number, waited: number): void => {
      if (waited >= RESEND_FOR_MS) {
        this.#unacked = undefined;
        this.#log.warn({ seq }, 'no ACK for our 2xx to the far end\'s INVITE');
        return;
      }
      this.#log.debug(`> ${rs.status ?? ''} ${rs.reason ?? ''} (INVITE, resent)`);
      this.#stack.respond(rs);
      const next = Math.min(interval * 2, T2_MS);
      this.#unacked = { seq, timer: setTimeout(resend, next, next, waited + next) };
    };
    this.#unacked = { seq, timer: setTimeout(resend, T1_MS, T1_MS, T1_MS) };
  }

  /** Sends `rq` in a new transaction, answering challenges; CANCEL is held until a provisional. */
  #sendRequest(rq: Message, onResponse: (rs: Message) => void, authAttempts: number, branch = `z9hG4bK${nanoid()}`): void {
    const isInvite = isDialogInvite(rq);
    if (isInvite) {
      this.#invite = rq;
      this.#provisional = false;
    }
    this.#log.debug(`> ${rq.method ?? ''} ${sip.stringifyUri(rq.uri ?? '')}`);
    this.#stack.request(rq, this.#target, branch, (rs) => {
      this.#log.debug(`< ${rs.status} ${rs.reason ?? ''} (${rq.method ?? ''})`);
      if (isInvite && rq !== this.#invite) return; // late responses to a challenged INVITE
      const signed = this.#signed(rq, rs, authAttempts);
      if (signed && isInvite) return this.#resendInvite(signed, rs, onResponse, authAttempts + 1);
      if (signed) return this.#sendRequest(signed, onResponse, authAttempts + 1);
      if (isInvite && (rs.status ?? 0) < 300) this.#rememberRemoteTag(toTag(rs));
      if (isInvite && (rs.status ?? 0) < 200 && !this.#provisional) {
        this.#provisional = true;
        if (this.#cancelPending) this.#sendCancel();
      }
      onResponse(rs);
    });
  }

  /**
   * The INVITE with credentials, sent once its identity is durable
   * ({@link invite}'s `beforeResend`). It is the pending INVITE from now on:
   * a cancel() while its identity is committed is held (no provisional yet)
   * and then means it is never sent; `challenge` becomes the final response.
   */
  #resendInvite(signed: Message, challenge: Message, onResponse: (rs: Message) => void, authAttempts: number): void {
    const branch = `z9hG4bK${nanoid()}`;
    this.#invite = signed;
    this.#provisional = false;
    const send = (): void => {
      if (this.#invite !== signed) return;
      if (this.#cancelPending) {
        this.#cancelPending = false;
        return onResponse(challenge);
      }
      this.#sendRequest(signed, onResponse, authAttempts, branch);
    };
    this.#beforeResend(this.#pending(signed.headers.cseq?.seq ?? 0, branch)).then(send, (err: unknown) => {
      this.#log.error({ err }, 'storing the re-sent INVITE failed: sent anyway');
      send();
    });
  }

  /** A 1xx or 2xx with a To tag made an early or confirmed dialog (RFC 3261 §12.1.2): its requests are ours. */
  #rememberRemoteTag(tag: string | undefined): void {
    if (tag === undefined || this.#remoteTags.has(tag)) return;
    if (this.#remoteTags.size >= MAX_REMOTE_TAGS) {
      this.#log.warn({ tag }, 'too many early dialogs; requests on this one get 481');
      return;
    }
    this.#remoteTags.add(tag);
  }

  /** `rq` again with a new CSeq and credentials when `rs` is a challenge we can still answer. */
  #signed(rq: Message, rs: Message, attempts: number): Message | undefined {
    const { username, password } = this.#request.gateway;
    if ((rs.status !== 401 && rs.status !== 407) || username === undefined || attempts >= MAX_AUTH_ATTEMPTS) return undefined;
    const signed: Message = { ...rq, headers: { ...rq.headers, cseq: { seq: ++this.#cseq, method: rq.method ?? '' } } };
    try {
      digest.signRequest(this.#auth, signed, rs, { user: username, password: password ?? '' });
      return signed;
    } catch (err) {
      this.#log.warn({ err }, 'cannot answer the challenge');
      return undefined;
    }
  }

  /** The confirmed dialog's far end, target and route set. */
  #confirmed(): ForkedDialog {
    return { to: this.#remoteTo, target: this.#remoteTarget, routeSet: this.#routeSet };
  }

  /** An in-dialog request on the confirmed dialog, or on `dialog` (a forked one). */
  #inDialog(method: string, seq: number, dialog: ForkedDialog = this.#confirmed()): Message {
    return {
      method,
      uri: dialog.target,
      headers: {
        to: dialog.to,
        from: { uri: this.#request.fromUri, params: { tag: this.localTag } },
        'call-id': this.callId,
        cseq: { seq, method },
        route: dialog.routeSet,
        'max-forwards': '70',
      },
    };
  }
}

/** Where a dialog's in-dialog requests go: its remote target and route set (RFC 3261 §12.1.2). */
export interface Peer {
  readonly target: string;
  readonly routeSet: NameAddr[];
}

interface ForkedDialog extends Peer {
  readonly to: NameAddr | undefined;
}

/** The remote target and route set a 2xx sets up; `fallback` when it has no Contact. */
export function peerOf(rs: Message, fallback: string): Peer {
  const contact = rs.headers.contact;
  const target = Array.isArray(contact) && contact[0] ? sip.stringifyUri(contact[0].uri) : fallback;
  return { target, routeSet: [...(rs.headers['record-route'] ?? [])].reverse() };
}

/** Whether a response carries `Require: 100rel` (option tags compared without case). */
function requires100rel(rs: Message): boolean {
  const require = rs.headers.require;
  return typeof require === 'string' && require.split(',').some((tag) => tag.trim().toLowerCase() === '100rel');
}

/** The RSeq of a response when it is one number 1 to 2^31-1; a repeated header (joined with ',') is not. */
function rseqOf(rs: Message): number | undefined {
  const text = rs.headers.rseq;
  if (typeof text !== 'string' || !RSEQ.test(text.trim())) return undefined;
  const rseq = Number(text.trim());
  return rseq >= 1 && rseq <= RSEQ_MAX ? rseq : undefined;
}

/** The dialog-forming INVITE (no To tag), not a re-INVITE. */
function isDialogInvite(rq: Message): boolean {
  return rq.method === 'INVITE' && rq.headers.to?.params.tag === undefined;
}

/** The To tag of a response (the far end's dialog tag), if any. */
export function toTag(rs: Message): string | undefined {
  const tag = rs.headers.to?.params.tag;
  return typeof tag === 'string' ? tag : undefined;
}
