// Issue 7 points 1 and 2 at the byte level: what the embedded engine writes
// (no client character can become CR, LF or NUL; UTF-8, never latin1) and how
// it frames what it reads (bounded buffer, validated Content-Length).
import t from 'tap';
import type { Message } from 'sip';
import { SipStreamFramer, WireError, encodeMessage, parseDatagram, type StreamEvents } from '../../lib/engines/embedded/SipWire.js';

function invite(uri: string): Message {
  return {
    method: 'INVITE',
    uri,
    headers: {
      via: [{ protocol: 'UDP', host: '127.0.0.1', port: 5060, params: { branch: 'z9hG4bKabc' } }],
      to: { uri, params: {} },
      from: { uri: 'sip:1000@cti.test', params: { tag: 't1' } },
      'call-id': 'c1@cti',
      cseq: { seq: 1, method: 'INVITE' },
    },
    content: 'v=0\r\n',
  };
}

const EVIL = 'sip:a@gw\u010d\u010aX-Evil:\u0120 1';

t.test('the issue’s U+010D U+010A URI cannot become a header line', async (t) => {
  const bytes = encodeMessage(invite(EVIL));
  const text = bytes.toString('latin1');
  t.notMatch(text, /\r\nX-Evil:/, 'no X-Evil header line on the wire');
  t.ok(bytes.includes(Buffer.from('\u010d\u010a', 'utf8')), 'the characters are written as UTF-8 (C4 8D C4 8A), not latin1 CR LF');
  t.equal(text.split("\r\n\r\n")[0]!.split("\r\n").length, 7, "request line + Via, To, From, Call-ID, CSeq, Content-Length: nothing split");
});

t.test('a CR, LF, NUL or other control character in any header value is refused', async (t) => {
  for (const bad of ['\r\n', '\n', '\r', '\0', '\x1b', '\x7f']) {
    const uri = `sip:a@gw${bad}X-Evil: 1`;
    t.throws(() => encodeMessage(invite(uri)), WireError, `Request-URI with ${JSON.stringify(bad)}`);
    const m = invite('sip:a@gw');
    m.headers.from = { uri, params: { tag: 't1' } };
    t.throws(() => encodeMessage(m), WireError, `From with ${JSON.stringify(bad)}`);
    const n = invite('sip:a@gw');
    n.headers['x-custom'] = `v${bad}`;
    t.throws(() => encodeMessage(n), WireError, `extension header with ${JSON.stringify(bad)}`);
  }
  const m = invite('sip:a@gw');
  m.headers.to = { uri: 'sip:a@gw', params: { tag: 'x\r\nContent-Length: 0' } };
  t.throws(() => encodeMessage(m), /control character/, 'a parameter value too');
  const body = invite('sip:a@gw');
  body.content = 'v=0\r\ns=\u00e9\r\n';
  t.throws(() => encodeMessage(body), /not ASCII/, 'a non-ASCII body (its Content-Length would be wrong)');
});

t.test('datagrams: Content-Length grammar and bounds', async (t) => {
  const head = (cl: string): string =>
    `OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.9:5060;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@127.0.0.1>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n${cl}\r\n\r\n`;
  t.equal(parseDatagram(Buffer.from(head('Content-Length: 3') + 'abcdef'), 65535).content, 'abc', 'body cut to Content-Length');
  t.equal(parseDatagram(Buffer.from(head('l: 0') + 'junk'), 65535).content, '', 'compact form');
  for (const cl of ['Content-Length: abc', 'Content-Length: -1', 'Content-Length: 1e3', 'Content-Length: 0x10', 'Content-Length: 99999999999']) {
    t.throws(() => parseDatagram(Buffer.from(head(cl)), 65535), { name: 'WireError', status: 400 }, cl);
  }
  t.throws(() => parseDatagram(Buffer.from(head('Content-Length: 10') + 'short'), 65535), /shorter than Content-Length/);
  t.throws(() => parseDatagram(Buffer.from(head('Content-Length: 0\r\nContent-Length: 5')), 65535), /conflicting/);
  t.throws(() => parseDatagram(Buffer.alloc(70_000, 0x41), 65535), { name: 'WireError', status: 413 }, 'larger than the bound');
  t.throws(() => parseDatagram(Buffer.concat([Buffer.from(head('Content-Length: 2')), Buffer.from([0xc3, 0x28])]), 65535), /not UTF-8/);
  t.throws(() => parseDatagram(Buffer.from('OPTIONS sip:x SIP/2.0\r\nCall-ID: c\r\n\r\n'), 65535), /missing Via/);
});

/** A framer whose findings are collected. */
function framer(max = 4096): { framer: SipStreamFramer; messages: Message[]; errors: string[] } {
  const messages: Message[] = [];
  const errors: string[] = [];
  const events: StreamEvents = { message: (m) => messages.push(m), malformed: (e) => errors.push(e.message) };
  return { framer: new SipStreamFramer(max, events), messages, errors };
}

const OPTIONS = (cl: string, body = ''): string =>
  `OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.9:5060;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@127.0.0.1>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: ${cl}\r\n\r\n${body}`;

t.test('stream framing: split, pipelined and keep-alive input', async (t) => {
  const f = framer();
  const two = Buffer.from(`\r\n\r\n${OPTIONS('2', 'ab')}${OPTIONS('0')}`);
  for (let i = 0; i < two.length; i += 7) f.framer.push(two.subarray(i, i + 7));
  t.equal(f.messages.length, 2, 'both messages, fed 7 bytes at a time');
  t.equal(f.messages[0]!.content, 'ab');
  t.same(f.errors, []);
  t.equal(f.framer.buffered, 0, 'nothing held after complete messages');
});

t.test('stream framing: the issue’s Content-Length: abc followed by a stream of bytes is bounded', async (t) => {
  const f = framer(4096);
  f.framer.push(Buffer.from(OPTIONS('abc')));
  for (let i = 0; i < 1000; i++) f.framer.push(Buffer.alloc(64 * 1024, 0x41));
  t.same(f.errors, ['malformed Content-Length'], 'reported once');
  t.ok(f.framer.failed, 'the stream is given up (no resynchronisation is possible)');
  t.equal(f.framer.buffered, 0, '64 MB later nothing is held');
  t.same(f.messages, []);
});

t.test('stream framing: no end of headers, a huge declared body, a missing Content-Length', async (t) => {
  const endless = framer(4096);
  for (let i = 0; i < 100; i++) endless.framer.push(Buffer.alloc(1000, 0x41));
  t.same(endless.errors, ['header block too large']);
  t.ok(endless.framer.buffered <= 4096);

  const huge = framer(4096);
  huge.framer.push(Buffer.from(OPTIONS('999999999')));
  t.same(huge.errors, ['message too large'], 'refused before any body byte is buffered');

  const missing = framer(4096);
  missing.framer.push(Buffer.from(OPTIONS('0').replace('Content-Length: 0\r\n', '')));
  t.same(missing.errors, ['Content-Length missing on a stream transport'], 'RFC 3261 §18.3');
});
