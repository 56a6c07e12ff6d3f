/** The parts of npm `sip` 0.0.6 (untyped CommonJS) this engine uses. */
declare module 'sip' {
  export interface SipUri {
    schema?: string;
    user?: string;
    host: string;
    port?: number;
    params: Record<string, string | null>;
    headers?: Record<string, string>;
  }
  export interface NameAddr {
    name?: string;
    uri: string | SipUri;
    params: Record<string, string | null>;
  }
  export interface Via {
    version?: string;
    protocol?: string;
    host?: string;
    port?: number;
    params: Record<string, string | null>;
  }
  export interface CSeq {
    seq: number;
    method: string;
  }
  export interface Headers {
    via?: Via[];
    to?: NameAddr;
    from?: NameAddr;
    'call-id'?: string;
    cseq?: CSeq;
    contact?: NameAddr[] | '*';
    route?: NameAddr[];
    'record-route'?: NameAddr[];
    'content-type'?: string;
    [name: string]: unknown;
  }
  export interface Message {
    method?: string;
    uri?: string | SipUri;
    status?: number;
    reason?: string;
    version?: string;
    headers: Headers;
    content?: string;
  }
  /** A client or server transaction of `sip`'s transaction layer (RFC 3261 §17). */
  export interface Transaction {
    message(m: Message, remote?: unknown): void;
    shutdown(): void;
  }
  export interface ServerTransaction extends Transaction {
    send(rs: Message): void;
  }
  /** What the transaction layer sends through: one flow, held until release(). */
  export interface TransactionFlow {
    readonly protocol: string;
    send(m: Message): void;
    release(): void;
  }
  export interface TransactionLayer {
    createServerTransaction(rq: Message, flow: TransactionFlow): ServerTransaction;
    createClientTransaction(flow: TransactionFlow, rq: Message, onResponse: (rs: Message) => void): Transaction;
    getServer(m: Message): ServerTransaction | undefined;
    getClient(m: Message): Transaction | undefined;
    destroy(): void;
  }
  interface SipModule {
    makeTransactionLayer(options: { 'max-forwards'?: number }, transport: undefined): TransactionLayer;
    /** Parses one message from a string (its header block, a blank line, the body); undefined when it is none. */
    parse(s: string): Message | undefined;
    /** The message as text; sets its Content-Length to the body's length in characters. */
    stringify(m: Message): string;
    makeResponse(rq: Message, status: number, reason?: string, extension?: { headers?: Headers; content?: string }): Message;
    parseUri(s: string | SipUri): SipUri | undefined;
    stringifyUri(uri: string | SipUri): string;
  }
  const sip: SipModule;
  export default sip;
}

declare module 'sip/digest.js' {
  import type { Message } from 'sip';
  /** Opaque per-dialog digest state the helper keeps between requests. */
  export type DigestContext = Record<string, unknown>;
  interface DigestModule {
    signRequest(ctx: DigestContext, rq: Message, rs: Message, creds: { user: string; password: string }): DigestContext | null;
  }
  const digest: DigestModule;
  export default digest;
}
