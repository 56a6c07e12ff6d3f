// One INVITE dialog of the TestUac: ACKs final responses itself (as a UAC
// transaction must), answers the carrier's BYE, and records everything.
import type { InviteOptions, TestUac } from './TestUac.js';
import {
  buildSipMessage,
  digestAuthorization,
  newBranch,
  newCallId,
  newTag,
  now,
  type SipMessage,
} from './sipMessage.js';

export class SipCall {
  readonly callId = newCallId();
  readonly fromTag = newTag();
  /** Every response, in arrival order. */
  readonly responses: SipMessage[] = [];
  /** Every request the carrier sent us (BYE). */
  readonly requests: SipMessage[] = [];
  /** When the (last) INVITE was sent, epoch ms. */
  invitedAt = 0;
  private cseq = 1;
  private inviteCseq = 1;
  private inviteBranch = '';
  private authorization: string | undefined;
  private toTag: string | undefined;
  private remoteTarget: string | undefined;
  private listeners: Array<() => void> = [];

  constructor(
    private readonly uac: TestUac,
    readonly uri: string,
    private readonly opts: InviteOptions,
  ) {}

  private get from(): string {
    return `From: <sip:uac@${this.uac.host}>;tag=${this.fromTag}`;
  }

  private to(withTag: boolean): string {
    return `To: <${this.uri}>${withTag && this.toTag ? `;tag=${this.toTag}` : ''}`;
  }

  private via(branch: string): string {
    return `Via: SIP/2.0/${this.uac.viaTransport} ${this.uac.host}:${this.uac.localPort};branch=${branch};rport`;
  }

  sendInvite(): void {
    this.inviteBranch = newBranch();
    this.inviteCseq = this.cseq++;
    const port = this.opts.sdpPort ?? 9;
    const sdp = [
      'v=0',
      `o=uac 1 1 IN IP4 ${this.uac.host}`,
      's=-',
      `c=IN IP4 ${this.uac.host}`,
      't=0 0',
      `m=audio ${port} RTP/AVP 0 8`,
      'a=rtpmap:0 PCMU/8000',
      'a=rtpmap:8 PCMA/8000',
      'a=sendrecv',
      '',
    ].join('\r\n');
    const headers = [
      this.via(this.inviteBranch),
      'Max-Forwards: 70',
      this.from,
      this.to(false),
      `Call-ID: ${this.callId}`,
      `CSeq: ${this.inviteCseq} INVITE`,
      `Contact: ${this.uac.contact}`,
      ...(this.authorization ? [`Authorization: ${this.authorization}`] : []),
      ...(this.opts.headers ?? []),
      'Content-Type: application/sdp',
    ];
    this.invitedAt = now();
    this.uac.send(buildSipMessage(`INVITE ${this.uri} SIP/2.0`, headers, sdp));
  }

  /** CANCELs the pending INVITE (same branch and CSeq number, as RFC 3261 9.1 says). */
  cancel(): void {
    this.uac.send(
      buildSipMessage(`CANCEL ${this.uri} SIP/2.0`, [
        this.via(this.inviteBranch),
        'Max-Forwards: 70',
        this.from,
        this.to(false),
        `Call-ID: ${this.callId}`,
        `CSeq: ${this.inviteCseq} CANCEL`,
      ]),
    );
  }

  /** Hangs up an answered call. */
  bye(): void {
    this.uac.send(
      buildSipMessage(`BYE ${this.remoteTarget ?? this.uri} SIP/2.0`, [
        this.via(newBranch()),
        'Max-Forwards: 70',
        this.from,
        this.to(true),
        `Call-ID: ${this.callId}`,
        `CSeq: ${this.cseq++} BYE`,
      ]),
    );
  }

  private ack(response: SipMessage): void {
    const is2xx = (response.status ?? 0) < 300;
    // Non-2xx ACK belongs to the INVITE transaction; a 2xx ACK is its own.
    this.uac.send(
      buildSipMessage(`ACK ${is2xx ? (this.remoteTarget ?? this.uri) : this.uri} SIP/2.0`, [
        this.via(is2xx ? newBranch() : this.inviteBranch),
        'Max-Forwards: 70',
        this.from,
        `To: ${response.header('to') ?? ''}`,
        `Call-ID: ${this.callId}`,
        `CSeq: ${this.inviteCseq} ACK`,
      ]),
    );
  }

  onMessage(msg: SipMessage): void {
    if (msg.status === undefined) {
      this.requests.push(msg);
      if (msg.method === 'BYE' || msg.method === 'OPTIONS') {
        const copy = ['via', 'from', 'to', 'call-id', 'cseq'].flatMap((h) =>
          msg.headers.filter(([n]) => n === h).map(([n, v]) => `${n}: ${v}`),
        );
        this.uac.send(buildSipMessage('SIP/2.0 200 OK', copy));
      }
    } else {
      this.responses.push(msg);
      const status = msg.status;
      if (msg.method === 'INVITE') {
        const tag = /;\s*tag=([^;>\s]+)/i.exec(msg.header('to') ?? '')?.[1];
        if (tag && status > 100) this.toTag = tag;
        const contact = /<([^>]+)>/.exec(msg.header('contact') ?? '')?.[1];
        if (contact && status < 300) this.remoteTarget = contact;
        if (status >= 200) this.ack(msg);
        const challenge = msg.header('www-authenticate') ?? msg.header('proxy-authenticate');
        if ((status === 401 || status === 407) && this.opts.auth && challenge && !this.authorization) {
          this.authorization = digestAuthorization(this.opts.auth.user, this.opts.auth.password, 'INVITE', this.uri, challenge);
          this.toTag = undefined;
          this.sendInvite();
        }
      }
    }
    const listeners = this.listeners;
    this.listeners = [];
    for (const l of listeners) l();
  }

  /** Resolves with the first message (response or request) matching pred; rejects after timeoutMs. */
  async waitFor(pred: (m: SipMessage) => boolean, timeoutMs = 5000, what = 'message'): Promise<SipMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = [...this.responses, ...this.requests].sort((a, b) => a.at - b.at).find(pred);
      if (hit) return hit;
      const left = deadline - Date.now();
      if (left <= 0) {
        const seen = [...this.responses.map((r) => `${r.status} ${r.method}`), ...this.requests.map((r) => r.method)];
        throw new Error(`${this.uri}: no ${what} within ${timeoutMs} ms; saw [${seen.join(', ')}]`);
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.listeners.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** The final response to the INVITE, skipping a 401/407 that was answered with credentials. */
  waitForFinal(timeoutMs = 5000): Promise<SipMessage> {
    return this.waitFor(
      (m) =>
        m.method === 'INVITE' &&
        (m.status ?? 0) >= 200 &&
        !((m.status === 401 || m.status === 407) && this.opts.auth !== undefined && m.cseq !== this.inviteCseq),
      timeoutMs,
      'final INVITE response',
    );
  }

  waitForStatus(status: number, timeoutMs = 5000): Promise<SipMessage> {
    return this.waitFor((m) => m.status === status, timeoutMs, `${status}`);
  }

  waitForRequest(method: string, timeoutMs = 5000): Promise<SipMessage> {
    return this.waitFor((m) => m.status === undefined && m.method === method, timeoutMs, method);
  }

  /** Statuses received, in order, e.g. [180, 200, 200] (last one for a BYE). */
  get statuses(): number[] {
    return this.responses.map((r) => r.status ?? 0);
  }
}
