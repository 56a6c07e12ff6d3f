/**
 * The engine's one SIP user agent: our own transports (SipTransport: bounded
 * UDP/TCP, bytes in and out through SipWire) under npm `sip`'s transaction
 * layer (RFC 3261 §17: retransmissions, Timers A–K, the ACK for a non-2xx),
 * plus what `sip` lacks — strong branch ids, a fixed next hop per request,
 * dispatch of incoming requests to dialogs by their dialog id (Call-ID and
 * both tags, RFC 3261 §12.2.2), and bounded state for
 * requests nobody asked for: those are answered statelessly (RFC 3261
 * §8.2.7), and server transactions inside our dialogs are capped.
 */
import { createHash } from 'node:crypto';
import dns from 'node:dns/promises';
import net from 'node:net';
import sip from 'sip';
import type { Message, TransactionLayer, Via } from 'sip';
import type { Logger } from 'pino';
import type { GatewayTarget } from '../../telephony/TelephonyEngine.js';
import { SipTransport, type SipConnection, type SipPeer, type SipTransportLimits } from './SipTransport.js';

/** Where a request physically goes, whatever its Request-URI says. */
export type SipTarget = SipPeer;

export type InDialogHandler = (rq: Message) => void;

/**
 * What identifies the dialogs of one call of ours (we are the UAC, RFC 3261
 * §12.1.2): the Call-ID and our From tag, shared by every dialog a forked
 * INVITE makes, and the remote tags (the To tags of the far end's 1xx/2xx).
 */
export interface DialogIdentity {
  readonly callId: string;
  readonly localTag: string;
  /** Whether `tag` is the remote tag of one of this call's dialogs, early, confirmed or forked. */
  hasRemoteTag(tag: string): boolean;
}

/** Told once when a listening socket of the stack died: no SIP traffic is possible any more. */
export type StackFailureHandler = (reason: string) => void;

export interface SipStackLimits extends SipTransportLimits {
  /** Server transactions (requests inside our dialogs) held at once; more are answered 503 statelessly. */
  readonly maxServerTransactions: number;
}

export interface SipStackOptions {
  readonly host: string;
  readonly port: number;
  /** Host written into Via and Contact. */
  readonly publicHost: string;
  readonly limits: SipStackLimits;
}

const ALLOW = 'INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, NOTIFY';

export class SipStack {
  readonly #options: SipStackOptions;
  readonly #log: Logger;
  readonly #dialogs = new Map<string, { readonly identity: DialogIdentity; readonly handler: InDialogHandler }>();
  readonly #onFailure: StackFailureHandler;
  #transport: SipTransport | undefined;
  #transactions: TransactionLayer | undefined;
  #serverTransactions = 0;
  #failed = false;
  #strayResponses: (rs: Message) => void = () => {};

  constructor(options: SipStackOptions, logger: Logger, onFailure: StackFailureHandler = () => {}) {
    this.#options = options;
    this.#log = logger;
    this.#onFailure = onFailure;
  }

  get running(): boolean {
    return this.#transport !== undefined;
  }

  /** Running and its sockets alive: new calls can be placed. */
  get usable(): boolean {
    return this.#transport !== undefined && !this.#failed;
  }

  get publicHost(): string {
    return this.#options.publicHost;
  }

  get port(): number {
    return this.#options.port;
  }

  /** Server transactions held now (bounded by `maxServerTransactions`). */
  get serverTransactions(): number {
    return this.#serverTransactions;
  }

  /** Open TCP connections, in and out. */
  get tcpConnections(): number {
    return this.#transport?.tcpConnections ?? 0;
  }

  /** Binds UDP and TCP; rejects with a clear message when the port is taken. */
  async start(): Promise<void> {
    const { host, port, publicHost, limits } = this.#options;
    const transport = new SipTransport({ host, port, publicHost, limits }, this.#log, this.#onInbound, (reason) => {
      if (this.#transport !== transport || this.#failed) return;
      this.#failed = true;
      this.#onFailure(reason);
    });
    await transport.start();
    this.#failed = false;
    this.#transactions = sip.makeTransactionLayer({}, undefined);
    this.#transport = transport;
  }

  /** Ends every transaction (without telling anyone) and closes every socket. */
  stop(): void {
    const transactions = this.#transactions;
    const transport = this.#transport;
    this.#transactions = undefined;
    this.#transport = undefined;
    try {
      transactions?.destroy();
    } catch (err) {
      this.#log.error({ err }, 'ending SIP transactions failed');
    }
    transport?.stop();
    this.#dialogs.clear();
    this.#serverTransactions = 0;
  }

  async resolve(gateway: GatewayTarget): Promise<SipTarget> {
    const address = net.isIP(gateway.host) ? gateway.host : (await dns.lookup(gateway.host, { family: 4 })).address;
    return { protocol: gateway.transport === 'tcp' ? 'TCP' : 'UDP', address, port: gateway.port };
  }

  /** Who sees responses no client transaction claims (crash recovery: StaleInvites); by default they are dropped. */
  onStrayResponse(handler: (rs: Message) => void): void {
    this.#strayResponses = handler;
  }

  /** Routes requests inside `identity`'s dialogs to `handler` until removeDialog. */
  addDialog(identity: DialogIdentity, handler: InDialogHandler): void {
    this.#dialogs.set(identity.callId, { identity, handler });
  }

  removeDialog(callId: string): void {
    this.#dialogs.delete(callId);
  }

  /**
   * Sends a request in a new client transaction to `target`. `sip` gives its
   * Via a branch below 1e6, which collides across calls at a busy far end, so
   * the Via pins `branch` (sip.js is sloppy-mode code: its overwrite is
   * silently ignored). A CANCEL keeps the Via it is given, as RFC 3261 wants.
   * A failure to send (a TCP connection that cannot be made or closes) is a
   * 503 response, as `sip` does.
   */
  request(rq: Message, target: SipTarget, branch: string, onResponse: (rs: Message) => void): void {
    const transactions = this.#transactions;
    const transport = this.#transport;
    // `sip` calls this from its own timers too (Timer B/F), outside any try/catch.
    const guarded = (rs: Message): void => {
      try {
        onResponse(rs);
      } catch (err) {
        this.#log.error({ err, method: rq.method, status: rs.status }, 'response handler failed');
      }
    };
    if (!transactions || !transport) {
      setImmediate(guarded, sip.makeResponse(rq, 503, 'Service Unavailable'));
      return;
    }
    if (rq.method !== 'CANCEL') rq.headers.via = [pinnedVia(branch)];
    let transaction: { message(m: Message, remote?: unknown): void } | undefined;
    const connection = transport.open(target, (err) => {
      this.#log.warn({ err, method: rq.method }, 'SIP flow failed');
      transaction?.message(sip.makeResponse(rq, 503, 'Service Unavailable'));
    });
    transaction = transactions.createClientTransaction(connection, rq, guarded);
  }

  /** Sends an ACK for a 2xx; it has no transaction, only a fresh branch. */
  ack(ack: Message, target: SipTarget, branch: string): void {
    ack.headers.via = [{ params: { branch } }];
    this.#transport?.sendOnce(target, ack);
  }

  /** Sends a response through the server transaction of its request. */
  respond(rs: Message): void {
    const transaction = this.#transactions?.getServer(rs);
    if (!transaction) {
      this.#log.warn({ status: rs.status }, 'response without its server transaction dropped');
      return;
    }
    try {
      transaction.send(rs);
    } catch (err) {
      this.#log.error({ err, status: rs.status }, 'cannot send response');
    }
  }

  /** Every message from the transports: responses to our transactions, requests to their dialog or a stateless answer. */
  readonly #onInbound = (m: Message, from: SipPeer, reply: () => SipConnection): void => {
    const transactions = this.#transactions;
    if (!transactions) return;
    if (!m.method) {
      const client = transactions.getClient(m);
      if (client) client.message(m, from);
      else this.#strayResponses(m);
      return;
    }
    const existing = transactions.getServer(m);
    if (existing) return existing.message(m, from);
    const handler = this.#dialogFor(m);
    if (m.method === 'ACK') return handler?.(m); // the ACK of our 2xx: its own transaction-less request; a stray one is dropped
    if (!handler) return this.#statelessly(m, reply, ...strayAnswer(m));
    if (this.#serverTransactions >= this.#options.limits.maxServerTransactions) {
      this.#log.warn({ method: m.method }, 'too many server transactions; answering 503');
      return this.#statelessly(m, reply, 503, 'Service Unavailable');
    }
    const connection = reply();
    this.#serverTransactions++;
    const transaction = transactions.createServerTransaction(m, {
      protocol: connection.protocol,
      send: (rs: Message) => connection.send(rs),
      release: () => {
        this.#serverTransactions--;
        connection.release();
      },
    });
    try {
      handler(m);
    } catch (err) {
      this.#log.error({ err, method: m.method }, 'in-dialog request handler failed');
      transaction.send(sip.makeResponse(m, 500, 'Server Internal Error'));
    }
  };

  /**
   * The handler of the dialog `rq` is in (RFC 3261 §12.2.2): its Call-ID,
   * its To tag (our local tag) and its From tag (a remote tag of that call)
   * must all match. A request with our Call-ID but other tags — a guess, or
   * a far end that lost track — never reaches the call.
   */
  #dialogFor(rq: Message): InDialogHandler | undefined {
    const dialog = this.#dialogs.get(rq.headers['call-id'] ?? '');
    if (!dialog) return undefined;
    const toTag = rq.headers.to?.params.tag;
    const fromTag = rq.headers.from?.params.tag;
    if (typeof toTag !== 'string' || typeof fromTag !== 'string') return undefined;
    if (toTag !== dialog.identity.localTag || !dialog.identity.hasRemoteTag(fromTag)) return undefined;
    return dialog.handler;
  }

  /**
   * A response that leaves no state behind (RFC 3261 §8.2.7): a retransmitted
   * request just gets it again. Its To tag is derived from the request's
   * Call-ID and branch, so every copy carries the same one (§8.2.6.2).
   */
  #statelessly(rq: Message, reply: () => SipConnection, status: number, reason: string): void {
    const to = rq.headers.to;
    const tag = createHash('sha256').update(`${rq.headers['call-id'] ?? ''}|${rq.headers.via?.[0]?.params.branch ?? ''}`).digest('hex').slice(0, 16);
    const headers = {
      to: to && { ...to, params: { tag, ...to.params } },
      ...(status === 200 ? { allow: ALLOW, accept: 'application/sdp' } : {}),
    };
    const connection = reply();
    connection.send(sip.makeResponse(rq, status, reason, { headers }));
    connection.release();
  }
}

/**
 * A request in none of our dialogs. With a To tag it names a dialog we do
 * not have: 481, whatever the method (RFC 3261 §12.2.2). Without one it is
 * outside any dialog: this server places calls and accepts none (seed: a CTI
 * server dials out), so an INVITE is refused for good, 403 (§21.4.4); OPTIONS
 * is a keep-alive probe, 200; anything else names a transaction we do not
 * have, 481.
 */
function strayAnswer(rq: Message): [number, string] {
  const inDialog = rq.headers.to?.params.tag !== undefined;
  if (rq.method === 'INVITE' && !inDialog) return [403, 'Forbidden (no incoming calls)'];
  if (rq.method === 'OPTIONS' && !inDialog) return [200, 'OK'];
  return [481, 'Call/Transaction Does Not Exist'];
}

function pinnedVia(branch: string): Via {
  const params: Via['params'] = {};
  Object.defineProperty(params, 'branch', { value: branch, enumerable: true });
  return { params };
}
