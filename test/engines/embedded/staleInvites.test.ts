/**
 * Issue 9, an INVITE in flight at a crash: after the restart the engine
 * CANCELs it with the INVITE's own branch, and a 2xx that answers it (the
 * far end retransmits its 2xx until ACKed) is ACKed every time and BYEd
 * once. A 2xx for a Call-ID or From tag it does not remember makes it send
 * nothing at all (no reflection). The far end here is a bare UDP socket,
 * so every byte the engine sends is seen.
 */
import dgram from 'node:dgram';
import t, { type Test } from 'tap';
import type { PendingInvite } from '../../../lib/engines/embedded/ClientDialog.js';
import { ENGINE_HOST, FAR_HOST, sleep, startEngine } from './harness.js';

interface Far {
  readonly port: number;
  readonly received: string[];
  send(text: string, port: number): void;
}

async function farEnd(t: Test): Promise<Far> {
  const socket = dgram.createSocket('udp4');
  const received: string[] = [];
  socket.on('message', (m) => received.push(m.toString('latin1')));
  await new Promise<void>((resolve) => socket.bind(0, FAR_HOST, resolve));
  t.teardown(() => socket.close());
  return {
    port: socket.address().port,
    received,
    send: (text, port) => socket.send(Buffer.from(text.replace(/\n/g, '\r\n'), 'latin1'), port, ENGINE_HOST),
  };
}

function pending(farPort: number, callId: string): PendingInvite {
  return {
    kind: 'invite',
    callId,
    localTag: 'ourtag1',
    fromUri: 'sip:cti@example.test',
    requestUri: `sip:alice@${FAR_HOST}:${farPort}`,
    cseq: 1,
    branch: 'z9hG4bKstoredbranch1',
    target: { protocol: 'UDP', address: FAR_HOST, port: farPort },
  };
}

function ok200(p: PendingInvite, fromTag: string, callId = p.callId, toTag = 'theirs1'): string {
  return [
    'SIP/2.0 200 OK',
    `Via: SIP/2.0/UDP ${ENGINE_HOST};branch=${p.branch}`,
    `From: <${p.fromUri}>;tag=${fromTag}`,
    `To: <${p.requestUri}>;tag=${toTag}`,
    `Call-ID: ${callId}`,
    `CSeq: ${p.cseq} INVITE`,
    `Contact: <sip:alice@${FAR_HOST}:${p.target.port}>`,
    'Content-Length: 0',
    '',
    '',
  ].join('\n');
}

/** A 200 to `request` (so that its client transaction stops retransmitting it). */
function answer(far: Far, request: string, port: number): void {
  const echo = request.split('\r\n').filter((line) => /^(Via|From|To|Call-ID|CSeq):/i.test(line));
  far.send(['SIP/2.0 200 OK', ...echo, 'Content-Length: 0', '', ''].join('\n'), port);
}

const sipPortOf = (request: string): number => Number(/^Via: SIP\/2\.0\/UDP [^:]+:(\d+)/m.exec(request)?.[1]);

const methods = (far: Far): string[] => far.received.map((m) => m.split(' ', 1)[0]!);

t.test('a pending INVITE left by a crash: CANCEL with its branch; its 2xx ACKed each time, BYEd once', async (t) => {
  const engine = await startEngine(t);
  const far = await farEnd(t);
  const p = pending(far.port, 'inflight-1@cti');
  const done = engine.endStaleDialogs([JSON.stringify(p), 'not json', JSON.stringify({ kind: 'invite', callId: 7 })]);
  await sleep(300);
  const cancel = far.received.find((m) => m.startsWith('CANCEL '));
  t.ok(cancel, 'CANCEL sent');
  t.match(cancel, /^Via: SIP\/2\.0\/UDP [^\r]*branch=z9hG4bKstoredbranch1/m, "the INVITE's branch (RFC 3261 §9.1)");
  t.match(cancel, /^CSeq: 1 CANCEL/m, 'the INVITE\'s CSeq number');
  t.match(cancel, /^From: [^\r]*tag=ourtag1/m, 'the INVITE\'s From tag');
  t.match(cancel, /^Reason: Q\.850;cause=41;text="server restarted"/m, 'Reason: server restarted');
  t.equal(methods(far).length, 1, 'one CANCEL, nothing for the unreadable states');
  const engineSipPort = sipPortOf(cancel!);
  // Answer the CANCEL so its transaction ends, then the far end's 2xx (it had answered first).
  answer(far, cancel!, engineSipPort);
  t.equal(await done, 1, 'endStaleDialogs counts the CANCEL');

  far.received.length = 0;
  far.send(ok200(p, 'ourtag1'), engineSipPort);
  await sleep(300);
  t.same(methods(far).sort(), ['ACK', 'BYE'], 'the 2xx is ACKed and its dialog BYEd');
  const bye = far.received.find((m) => m.startsWith('BYE '))!;
  t.match(bye, /^BYE sip:alice@127\.0\.0\.2:\d+ SIP\/2\.0/, 'BYE to the 2xx\'s Contact');
  t.match(bye, /^To: [^\r]*tag=theirs1/m, 'on the dialog the 2xx set up');
  t.match(bye, /^CSeq: 2 BYE/m, 'next CSeq');
  t.match(bye, /^Reason: Q\.850;cause=41;text="server restarted"/m, 'Reason: server restarted');
  answer(far, bye, engineSipPort);

  far.received.length = 0;
  far.send(ok200(p, 'ourtag1'), engineSipPort);
  await sleep(300);
  t.same(methods(far), ['ACK'], 'a retransmitted 2xx: ACK again, no second BYE');

  far.received.length = 0;
  far.send(ok200(p, 'ourtag1').replace('SIP/2.0 200 OK', 'SIP/2.0 487 Request Terminated'), engineSipPort);
  await sleep(300);
  t.same(methods(far), ['ACK'], 'a failure response is ACKed');
  t.match(far.received[0], /^Via: SIP\/2\.0\/UDP [^\r]*branch=z9hG4bKstoredbranch1/m, "that ACK carries the INVITE's branch (RFC 3261 §17.1.1.3)");
});

t.test('a stray 2xx for a Call-ID or From tag not remembered gets nothing (no reflection)', async (t) => {
  const engine = await startEngine(t);
  const far = await farEnd(t);
  const p = pending(far.port, 'inflight-2@cti');
  void engine.endStaleDialogs([JSON.stringify(p)]);
  await sleep(300);
  const cancel = far.received.find((m) => m.startsWith('CANCEL '))!;
  const engineSipPort = sipPortOf(cancel);
  answer(far, cancel, engineSipPort);
  await sleep(100);
  far.received.length = 0;
  for (let i = 0; i < 20; i++) far.send(ok200(p, 'ourtag1', `unknown-${i}@elsewhere`), engineSipPort);
  far.send(ok200(p, 'someone-else'), engineSipPort); // the remembered Call-ID, a forged From tag
  far.send(ok200({ ...p, cseq: 5 }, 'ourtag1'), engineSipPort); // another CSeq
  far.send(ok200(p, 'ourtag1').replace('SIP/2.0 200 OK', 'SIP/2.0 180 Ringing'), engineSipPort);
  far.send(ok200(p, 'ourtag1', 'unknown-487@elsewhere').replace('SIP/2.0 200 OK', 'SIP/2.0 487 Request Terminated'), engineSipPort);
  await sleep(500);
  t.same(far.received, [], 'not one byte sent back');
});

t.test('stored states edited or from another release: nothing reaches a SIP header or another target, and the valid state after them is still ended', async (t) => {
  const engine = await startEngine(t);
  const far = await farEnd(t);
  const p = pending(far.port, 'inflight-3@cti');
  const snapshot = {
    callId: 'confirmed-3@cti',
    localTag: 'ourtag3',
    fromUri: 'sip:cti@example.test',
    remoteTo: { uri: `sip:alice@${FAR_HOST}:${far.port}`, params: { tag: 'theirs3' } },
    remoteTarget: `sip:alice@${FAR_HOST}:${far.port}`,
    routeSet: [],
    cseq: 1,
    target: p.target,
  };
  const inject = 'x\r\nX-Injected: 1';
  const hostile: unknown[] = [
    { ...p, callId: `a${inject}` },
    { ...p, branch: `z9hG4bK${inject}` },
    { ...p, localTag: `t${inject}` },
    { ...p, fromUri: `sip:a@b${inject}` },
    { ...p, requestUri: `sip:a@b${inject}` },
    { ...p, cseq: `1${inject}` },
    { ...p, cseq: -1 },
    { ...p, target: { ...p.target, port: `${far.port}${inject}` } },
    { ...p, target: { ...p.target, protocol: 'SCTP' } },
    { ...p, target: { protocol: 'UDP' } },
    { ...p, target: 'udp:1.2.3.4' },
    { ...snapshot, remoteTo: { uri: `sip:a@b${inject}`, params: {} } },
    { ...snapshot, remoteTo: { uri: snapshot.remoteTo.uri, params: { tag: inject } } },
    { ...snapshot, remoteTo: { uri: snapshot.remoteTo.uri, params: { [inject]: null } } },
    { ...snapshot, remoteTo: { uri: snapshot.remoteTo.uri, params: { tag: 'a' }, name: `"${inject}` } },
    { ...snapshot, routeSet: [{ uri: `sip:proxy${inject};lr`, params: {} }] },
    { ...snapshot, routeSet: 'sip:proxy' },
    { ...snapshot, remoteTarget: `sip:a@b${inject}` },
    { ...snapshot, remoteTarget: 5 },
  ];
  // As `sip` parses a Record-Route: its URI is an object (JSON-stored as such), and that is valid.
  const routed = { ...snapshot, routeSet: [{ uri: { schema: 'sip', host: FAR_HOST, port: far.port, params: { lr: null }, headers: {} }, params: {} }] };
  hostile.push({ ...routed, routeSet: [{ uri: { schema: 'sip', host: `h${inject}`, params: {}, headers: {} }, params: {} }] });
  const done = engine.endStaleDialogs([...hostile.map((s) => JSON.stringify(s)), JSON.stringify(p), JSON.stringify(routed)]);
  await sleep(500);
  t.same(far.received.filter((m) => /X-Injected/i.test(m)), [], 'no injected header line sent');
  t.same(methods(far).sort(), ['BYE', 'CANCEL'], 'only the valid states are ended');
  t.match(far.received.find((m) => m.startsWith('BYE ')), new RegExp(`^Route: +<sip:${FAR_HOST.replace(/\./g, '\\.')}:${far.port};lr>`, 'm'), 'the stored route set, URI parsed by sip, is the Route');
  for (const m of far.received) answer(far, m, sipPortOf(m));
  t.equal(await done, 2, 'endStaleDialogs counts that CANCEL and BYE only');
});
