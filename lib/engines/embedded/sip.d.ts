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
  export interface Flow {
    protocol: string;
    address: string;
    port: number;
    local: { address: string; port: number };
  }
  export interface Options {
    address?: string;
    port?: number;
    publicAddress?: string;
    udp?: boolean;
    tcp?: boolean;
    logger?: { error?(e: unknown): void };
  }
  export interface Stack {
    send(m: Message, onResponse?: (rs: Message) => void): void;
    encodeFlowUri(flow: Flow): SipUri;
    destroy(): void;
  }
  interface SipModule {
    create(options: Options, onRequest: (rq: Message, remote: Flow) => void): Stack;
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
