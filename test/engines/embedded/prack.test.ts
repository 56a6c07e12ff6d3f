// RFC 3262 at the embedded engine's dialog: which 18x are PRACKed, and how (ClientDialog.provisional).
// The stack is a stand-in that records requests; the wire behaviour is in test/conformance/sip_interop.test.ts.
import t from 'tap';
import { pino } from 'pino';
import type { Message } from 'sip';
import { ClientDialog } from '../../../lib/engines/embedded/ClientDialog.js';
import type { SipStack, SipTarget } from '../../../lib/engines/embedded/SipStack.js';
import type { DialRequest } from '../../../lib/telephony/TelephonyEngine.js';

function dialog(): { dialog: ClientDialog; sent: Message[] } {
  const sent: Message[] = [];
  const stack = { publicHost: '127.0.0.1', port: 5060, request: (rq: Message) => sent.push(rq) } as unknown as SipStack;
  const target = { protocol: 'UDP', address: '192.0.2.10', port: 5060 } as unknown as SipTarget;
  const request: DialRequest = {
    requestUri: 'sip:1000@192.0.2.10:5060',
    fromUri: 'sip:2000@cti.test',
    gateway: { name: 'gw', host: '192.0.2.10', port: 5060, transport: 'udp' },
    label: 'test',
  };
  const d = new ClientDialog(stack, target, request, pino({ level: 'silent' }));
  d.invite('v=0\r\n', () => undefined, () => Promise.resolve());
  return { dialog: d, sent };
}

const response = (status: number, headers: Record<string, unknown>, tag: string | null = 'A'): Message => ({
  status,
  reason: 'Ringing',
  headers: {
    to: { uri: 'sip:1000@192.0.2.10:5060', params: tag === null ? {} : { tag } },
    cseq: { seq: 1, method: 'INVITE' },
    contact: [{ uri: `sip:phone${tag ?? ''}@198.51.100.7:5070`, params: {} }],
    'record-route': [{ uri: 'sip:p1.example;lr', params: {} }, { uri: 'sip:p2.example;lr', params: {} }],
    ...headers,
  } as Message['headers'],
});

const pracks = (sent: Message[]): Message[] => sent.filter((m) => m.method === 'PRACK');
const rack = (m: Message | undefined): unknown => (m?.headers as Record<string, unknown> | undefined)?.RAck;

t.test('the INVITE advertises 100rel; an unreliable 18x is processed without PRACK', async (t) => {
  const { dialog: d, sent } = dialog();
  t.match((sent[0]!.headers as Record<string, unknown>).supported, /(^|, )100rel(,|$)/);
  t.equal(d.provisional(response(180, {})), 'process');
  t.equal(d.provisional(response(180, { rseq: '1' })), 'process', 'an RSeq without Require: 100rel is not reliable');
  t.same(pracks(sent), []);
});

t.test('a reliable 18x is PRACKed on its early dialog: RAck, CSeq, Request-URI, route set, To tag', async (t) => {
  const { dialog: d, sent } = dialog();
  t.equal(d.provisional(response(183, { require: 'timer, 100REL', rseq: ' 5 ' })), 'process');
  const [prack] = pracks(sent);
  t.equal(rack(prack), '5 1 INVITE');
  t.same(prack?.headers.cseq, { seq: 2, method: 'PRACK' });
  t.equal(prack?.uri, 'sip:phoneA@198.51.100.7:5070', "the 18x's Contact");
  t.same(prack?.headers.route?.map((r) => r.uri), ['sip:p2.example;lr', 'sip:p1.example;lr'], 'Record-Route reversed');
  t.equal(prack?.headers.to?.params.tag, 'A');
  t.equal(prack?.headers.from?.params.tag, sent[0]!.headers.from?.params.tag, 'our tag');
});

t.test('RSeq order per early dialog: a retransmission or a gap is discarded, the next one PRACKed; each fork counts apart', async (t) => {
  const { dialog: d, sent } = dialog();
  const reliable = (rseq: string, tag = 'A'): Message => response(180, { require: '100rel', rseq }, tag);
  t.equal(d.provisional(reliable('5')), 'process');
  t.equal(d.provisional(reliable('5')), 'discard', 'retransmission: not PRACKed again, not processed');
  t.equal(d.provisional(reliable('7')), 'discard', 'out of order');
  t.equal(d.provisional(reliable('4')), 'discard', 'older');
  t.equal(d.provisional(reliable('6')), 'process');
  t.equal(d.provisional(reliable('1', 'B')), 'process', 'another early dialog starts its own count');
  t.same(pracks(sent).map((p) => `${p.headers.to?.params.tag} ${String(rack(p))} ${p.headers.cseq?.seq}`), ['A 5 1 INVITE 2', 'A 6 1 INVITE 3', 'B 1 1 INVITE 4']);
});

t.test('garbage RSeq, no To tag, or too many early dialogs: taken as unreliable (processed, no PRACK)', async (t) => {
  const { dialog: d, sent } = dialog();
  for (const rseq of [undefined, '', 'abc', '0', '-1', '1.5', '2147483648', '99999999999', '1,2', '1 2', '0x10']) {
    t.equal(d.provisional(response(180, { require: '100rel', ...(rseq === undefined ? {} : { rseq }) })), 'process', `RSeq ${JSON.stringify(rseq)}`);
  }
  t.equal(d.provisional(response(180, { require: '100rel', rseq: '1' }, null)), 'process', 'no To tag');
  t.same(pracks(sent), []);
  t.equal(d.provisional(response(180, { require: '100rel', rseq: '2147483647' }, 'max')), 'process', 'the largest RSeq is fine');
  for (let i = 0; i < 20; i++) d.provisional(response(180, { require: '100rel', rseq: '1' }, `fork${i}`));
  t.equal(pracks(sent).length, 16, 'PRACKs for 16 early dialogs, then none');
});
