// Just enough SIP message parsing and building for the test UAC.
import { createHash, randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';

export interface SipMessage {
  /** Arrival time, epoch ms (same clock as RtpEar). */
  at: number;
  /** Response status, or undefined for a request. */
  status: number | undefined;
  reason: string;
  /** Request method, or the CSeq method for a response. */
  method: string;
  requestUri: string;
  /** Header lines as received, names lower-cased. */
  headers: Array<[string, string]>;
  body: string;
  raw: string;
  header(name: string): string | undefined;
  cseq: number;
}

const COMPACT: Record<string, string> = {
  i: 'call-id', f: 'from', t: 'to', v: 'via', m: 'contact', l: 'content-length', c: 'content-type',
};

/** Epoch milliseconds with sub-ms precision. */
export const now = (): number => performance.timeOrigin + performance.now();

export const newTag = (): string => randomBytes(6).toString('hex');
export const newBranch = (): string => `z9hG4bK${randomBytes(8).toString('hex')}`;
export const newCallId = (): string => `${randomBytes(10).toString('hex')}@test-uac`;

export function parseSipMessage(text: string, at: number): SipMessage {
  const split = text.indexOf('\r\n\r\n');
  const head = split >= 0 ? text.slice(0, split) : text;
  const body = split >= 0 ? text.slice(split + 4) : '';
  const [first = '', ...lines] = head.split('\r\n');
  const headers: Array<[string, string]> = [];
  for (const line of lines) {
    if (/^\s/.test(line) && headers.length > 0) {
      const last = headers[headers.length - 1];
      if (last) last[1] += ` ${line.trim()}`;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    headers.push([COMPACT[name] ?? name, line.slice(colon + 1).trim()]);
  }
  const header = (name: string): string | undefined => headers.find(([n]) => n === name.toLowerCase())?.[1];
  const cseqHeader = header('cseq') ?? '';
  const cseqMatch = /^(\d+)\s+(\S+)/.exec(cseqHeader);
  const statusMatch = /^SIP\/2\.0\s+(\d{3})\s*(.*)$/.exec(first);
  const requestMatch = /^(\S+)\s+(\S+)\s+SIP\/2\.0$/.exec(first);
  if (!statusMatch && !requestMatch) throw new Error(`not SIP: ${first}`);
  return {
    at,
    status: statusMatch ? Number(statusMatch[1]) : undefined,
    reason: statusMatch?.[2] ?? '',
    method: requestMatch?.[1] ?? cseqMatch?.[2] ?? '',
    requestUri: requestMatch?.[2] ?? '',
    headers,
    body,
    raw: text,
    header,
    cseq: Number(cseqMatch?.[1] ?? 0),
  };
}

/** RFC 2617 digest without qop, the form SIPp's verifyauth checks. */
export function digestAuthorization(
  user: string,
  password: string,
  method: string,
  uri: string,
  challenge: string,
): string {
  const param = (name: string): string => new RegExp(`${name}="?([^",]*)"?`, 'i').exec(challenge)?.[1] ?? '';
  const md5 = (s: string): string => createHash('md5').update(s).digest('hex');
  const realm = param('realm');
  const nonce = param('nonce');
  const response = md5(`${md5(`${user}:${realm}:${password}`)}:${nonce}:${md5(`${method}:${uri}`)}`);
  return `Digest username="${user}", realm="${realm}", nonce="${nonce}", uri="${uri}", response="${response}", algorithm=MD5`;
}

/** Builds a message: start line, headers, optional body, Content-Length computed. */
export function buildSipMessage(startLine: string, headers: string[], body = ''): string {
  const len = Buffer.byteLength(body);
  return `${[startLine, ...headers, `Content-Length: ${len}`].join('\r\n')}\r\n\r\n${body}`;
}
