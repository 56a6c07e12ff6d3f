/**
 * SIP messages to and from bytes, replacing npm `sip`'s own framing and
 * encoding (which wrote strings as latin1 and framed TCP without bounds).
 *
 * Out: every header value is checked for control characters before the
 * message is serialized, then the text is encoded as UTF-8 (RFC 3261 §7.3.1);
 * a body must be ASCII (ours are SDP), so its Content-Length is its byte
 * count. Nothing a caller puts in a header can become CR, LF or NUL on the
 * wire: such a message is refused with a WireError.
 *
 * In: a message must be valid UTF-8, its header block at most `maxMessageBytes`,
 * its Content-Length digits only (RFC 3261 §20.14) and within the bound; on a
 * stream transport Content-Length is mandatory (§18.3). `sip`'s header parsers
 * then read the header block.
 */
import sip from 'sip';
import type { Message } from 'sip';

/** A message we refuse to send or cannot accept; `status` is the response owed to a bad request (400 or 413). */
export class WireError extends Error {
  constructor(
    message: string,
    readonly status = 400,
  ) {
    super(message);
    this.name = 'WireError';
  }
}

/** C0 controls except HTAB, and DEL: never allowed inside a header value (RFC 3261 §25.1 TEXT-UTF8). */
const CTL = /[\x00-\x08\x0a-\x1f\x7f]/;
const NON_ASCII = /[^\x00-\x7f]/;
const HEADER_END = Buffer.from('\r\n\r\n');
const CONTENT_LENGTH = /^(?:content-length|l)[ \t]*:[ \t]*(.*)$/i;
const DIGITS = /^\d{1,9}$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Serializes `m` (a request's Via must already be complete) to UTF-8 bytes; throws WireError when unsafe. */
export function encodeMessage(m: Message): Buffer {
  checkValue(m.method, 'method');
  checkValue(m.reason, 'reason phrase');
  checkValue(m.uri, 'Request-URI');
  for (const [name, value] of Object.entries(m.headers)) {
    checkValue(name, 'header name');
    checkValue(value, name);
  }
  if (m.content !== undefined && NON_ASCII.test(m.content)) throw new WireError('message body is not ASCII');
  return Buffer.from(sip.stringify(m), 'utf8');
}

/** Walks a header value (string, number, or `sip`'s parsed objects and arrays) for control characters. */
function checkValue(value: unknown, where: string): void {
  if (typeof value === 'string') {
    if (CTL.test(value)) throw new WireError(`control character in ${where}`);
  } else if (Array.isArray(value)) {
    for (const item of value) checkValue(item, where);
  } else if (value !== null && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      checkValue(key, where);
      checkValue(item, where);
    }
  }
}

/** What a received message's framing says: the header block and body as bytes. */
interface Frame {
  readonly head: Buffer;
  readonly body: Buffer;
}

/**
 * Parses one datagram (RFC 3261 §18.3: Content-Length optional; when present
 * the body is cut to it, and fewer bytes than it says is an error).
 * Returns the message, or throws WireError.
 */
export function parseDatagram(data: Buffer, maxMessageBytes: number): Message {
  if (data.length > maxMessageBytes) throw new WireError('message too large', 413);
  const start = skipCrlf(data, 0);
  const end = data.indexOf(HEADER_END, start);
  if (end < 0) throw new WireError('no end of headers');
  const head = data.subarray(start, end);
  const length = contentLength(head, false);
  const rest = data.subarray(end + HEADER_END.length);
  if (length !== undefined && length > rest.length) throw new WireError('body shorter than Content-Length');
  return decode({ head, body: length === undefined ? rest : rest.subarray(0, length) });
}

/** Decodes a framed message; WireError when it is not UTF-8 or not a SIP message with the mandatory headers. */
function decode(frame: Frame): Message {
  let head: string;
  let body: string;
  try {
    head = utf8.decode(frame.head);
    body = utf8.decode(frame.body);
  } catch {
    throw new WireError('not UTF-8');
  }
  const m = sip.parse(`${head}\r\n\r\n`);
  if (!m) throw new WireError('not a SIP message');
  m.content = body;
  const { via, cseq, to, from } = m.headers;
  if (!Array.isArray(via) || via.length === 0 || !m.headers['call-id'] || !to || !from || !cseq || !Number.isFinite(cseq.seq)) {
    throw new WireError('missing Via, Call-ID, To, From or CSeq');
  }
  return m;
}

/** The header block's Content-Length: undefined when absent; WireError when malformed or repeated differently. */
function contentLength(head: Buffer, required: boolean): number | undefined {
  let found: number | undefined;
  for (const line of head.toString('latin1').split('\r\n')) {
    const m = CONTENT_LENGTH.exec(line);
    if (!m) continue;
    const text = m[1]!.trim();
    if (!DIGITS.test(text)) throw new WireError('malformed Content-Length');
    const value = Number(text);
    if (found !== undefined && found !== value) throw new WireError('conflicting Content-Length headers');
    found = value;
  }
  if (found === undefined && required) throw new WireError('Content-Length missing on a stream transport');
  return found;
}

function skipCrlf(data: Buffer, from: number): number {
  let i = from;
  while (i < data.length && (data[i] === 0x0d || data[i] === 0x0a)) i++;
  return i;
}

/** What a stream framer tells its owner about each thing it found. */
export interface StreamEvents {
  message(m: Message): void;
  /** A message that cannot be parsed; `head` is its header block when one was read (to answer 400). */
  malformed(error: WireError, head: Buffer | undefined): void;
}

/**
 * Frames SIP messages on a byte stream (TCP). Holds at most `maxMessageBytes`
 * of one message: a header block or a declared body beyond it is an error,
 * after which the stream cannot be resynchronized (`failed`) and its owner
 * closes the connection. Keep-alive CRLFs between messages (RFC 5626 §3.5.1)
 * are skipped.
 */
export class SipStreamFramer {
  readonly #maxMessageBytes: number;
  readonly #events: StreamEvents;
  #buffer: Buffer = Buffer.alloc(0);
  /** Once the header block of the current message is read: its length and the body length it declared. */
  #pending: { head: Buffer; bodyStart: number; bodyLength: number } | undefined;
  #failed = false;

  constructor(maxMessageBytes: number, events: StreamEvents) {
    this.#maxMessageBytes = maxMessageBytes;
    this.#events = events;
  }

  get failed(): boolean {
    return this.#failed;
  }

  /** Bytes held for a message not yet complete (bounded by maxMessageBytes). */
  get buffered(): number {
    return this.#buffer.length;
  }

  push(chunk: Buffer): void {
    if (this.#failed) return;
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    while (!this.#failed && this.#next());
  }

  /** Handles one message if it is complete; false when more bytes are needed. */
  #next(): boolean {
    if (!this.#pending) {
      const start = skipCrlf(this.#buffer, 0);
      if (start > 0) this.#buffer = this.#buffer.subarray(start);
      const end = this.#buffer.indexOf(HEADER_END);
      if (end < 0) {
        if (this.#buffer.length > this.#maxMessageBytes) this.#fail(new WireError('header block too large', 413), undefined);
        return false;
      }
      const head = this.#buffer.subarray(0, end);
      let bodyLength: number;
      try {
        bodyLength = contentLength(head, true)!;
      } catch (err) {
        this.#fail(err as WireError, head);
        return false;
      }
      const bodyStart = end + HEADER_END.length;
      if (bodyStart + bodyLength > this.#maxMessageBytes) {
        this.#fail(new WireError('message too large', 413), head);
        return false;
      }
      this.#pending = { head, bodyStart, bodyLength };
    }
    const { head, bodyStart, bodyLength } = this.#pending;
    if (this.#buffer.length < bodyStart + bodyLength) return false;
    const body = this.#buffer.subarray(bodyStart, bodyStart + bodyLength);
    // Copy what follows: the next message must not pin this one's chunk in memory.
    this.#buffer = Buffer.from(this.#buffer.subarray(bodyStart + bodyLength));
    this.#pending = undefined;
    let m: Message;
    try {
      m = decode({ head, body });
    } catch (err) {
      this.#events.malformed(err as WireError, head);
      return true; // framing held: the next message can still be read
    }
    this.#events.message(m);
    return true;
  }

  #fail(error: WireError, head: Buffer | undefined): void {
    this.#failed = true;
    this.#buffer = Buffer.alloc(0);
    this.#pending = undefined;
    this.#events.malformed(error, head);
  }
}

/**
 * The Via, Call-ID, From, To and CSeq of a header block that failed to
 * frame, when they can be read: enough to answer a request 400. Undefined for
 * responses and for anything that does not parse.
 */
export function requestOf(head: Buffer | undefined): Message | undefined {
  if (!head) return undefined;
  try {
    const m = sip.parse(`${utf8.decode(head)}\r\n\r\n`);
    const via = m?.headers.via;
    if (!m?.method || !Array.isArray(via) || via.length === 0 || !m.headers['call-id'] || !m.headers.cseq) return undefined;
    return m;
  } catch {
    return undefined;
  }
}
