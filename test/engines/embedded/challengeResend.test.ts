// Issue 9 at the embedded engine's dialog: the INVITE re-sent with credentials after a 401/407 is a new
// transaction (new CSeq, new branch); its identity must be durable before it goes, so that a restart's
// CANCEL matches it (ClientDialog.invite's beforeResend). The stack is a stand-in that records requests;
// the crash itself is in test/events/killRestart.test.ts.
import t from 'tap';
import { pino } from 'pino';
import type { Message } from 'sip';
import { ClientDialog, type PendingInvite } from '../../../lib/engines/embedded/ClientDialog.js';
import type { SipStack, SipTarget } from '../../../lib/engines/embedded/SipStack.js';
import type { DialRequest } from '../../../lib/telephony/TelephonyEngine.js';

interface Sent {
  readonly rq: Message;
  readonly branch: string;
  readonly onResponse: (rs: Message) => void;
}

function setup(): { dialog: ClientDialog; sent: Sent[]; responses: Message[]; stored: PendingInvite[]; commit: () => void } {
  const sent: Sent[] = [];
  const stack = {
    publicHost: '127.0.0.1',
    port: 5060,
    request: (rq: Message, _target: SipTarget, branch: string, onResponse: (rs: Message) => void) => sent.push({ rq, branch, onResponse }),
  } as unknown as SipStack;
  const target = { protocol: 'UDP', address: '192.0.2.10', port: 5060 } as unknown as SipTarget;
  const request: DialRequest = {
    requestUri: 'sip:1000@192.0.2.10:5060',
    fromUri: 'sip:2000@cti.test',
    gateway: { name: 'gw', host: '192.0.2.10', port: 5060, transport: 'udp', username: 'carrier', password: 'secret' },
    label: 'test',
  };
  const d = new ClientDialog(stack, target, request, pino({ level: 'silent' }));
  const responses: Message[] = [];
  const stored: PendingInvite[] = [];
  let commit: () => void = () => undefined;
  d.invite('v=0\r\n', (rs) => responses.push(rs), (invite) => {
    stored.push(invite);
    return new Promise<void>((resolve) => (commit = resolve));
  });
  return { dialog: d, sent, responses, stored, commit: () => commit() };
}

const challenge = (rq: Message): Message => ({
  status: 401,
  reason: 'Unauthorized',
  headers: {
    to: { uri: 'sip:1000@192.0.2.10:5060', params: { tag: 'A' } },
    from: rq.headers.from,
    'call-id': rq.headers['call-id'],
    cseq: rq.headers.cseq,
    'www-authenticate': [{ scheme: 'Digest', realm: '"carrier.test"', nonce: '"n0nce"', algorithm: 'MD5' }],
  } as Message['headers'],
});

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

t.test('the INVITE re-sent after a 401 goes only once its CSeq and branch are stored, and with exactly those', async (t) => {
  const { dialog, sent, responses, stored, commit } = setup();
  t.equal(sent.length, 1);
  t.equal(dialog.pendingInvite().branch, sent[0]!.branch, 'the first INVITE goes with the branch stored before it');
  t.equal(dialog.pendingInvite().cseq, 1);
  sent[0]!.onResponse(challenge(sent[0]!.rq));
  await tick();
  t.equal(stored.length, 1, 'the re-sent INVITE reported');
  t.equal(sent.length, 1, 'not sent before its identity is durable');
  t.same(responses, [], 'the challenge is not passed on');
  commit();
  await tick();
  t.equal(sent.length, 2, 'sent once durable');
  const resent = sent[1]!;
  t.ok(resent.rq.headers.authorization, 'with credentials');
  t.equal(stored[0]!.cseq, 2);
  t.equal(resent.rq.headers.cseq?.seq, stored[0]!.cseq, 'the CSeq stored');
  t.equal(resent.branch, stored[0]!.branch, 'the branch stored');
  t.not(stored[0]!.branch, sent[0]!.branch, 'a new transaction');
  t.equal(stored[0]!.callId, dialog.callId);
});

t.test('a CANCEL asked while the re-sent INVITE is being stored: never sent, the challenge is the final response', async (t) => {
  const { dialog, sent, responses, commit } = setup();
  sent[0]!.onResponse(challenge(sent[0]!.rq));
  await tick();
  dialog.cancel();
  commit();
  await tick();
  t.same(sent.map((s) => s.rq.method), ['INVITE'], 'neither the INVITE nor a CANCEL for the challenged one');
  t.same(responses.map((r) => r.status), [401]);
});
