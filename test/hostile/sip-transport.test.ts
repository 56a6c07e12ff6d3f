// Issue 7 points 2 and 8 against a running embedded engine: SIP garbage over
// UDP and TCP (incl. the Content-Length: abc stream), TCP connection bounds,
// requests nobody asked for (INVITE → 403, OPTIONS flood) — and after each,
// the engine still places a real call.
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';
import v8 from 'node:v8';
import vm from 'node:vm';
import t from 'tap';
import type tap from 'tap';
import type { EmbeddedEngine } from '../../lib/engines/embedded/EmbeddedEngine.js';
import { ENGINE_HOST, Ear, SIPP_MISSING, ScriptedCarrier, earSdp, ended, next, requestTo, runSipp, sippInstalled, startEngine, type Teardown } from '../engines/embedded/harness.js';
import { freeSipPort, sleep } from '../support/engineTestKit.js';
import { buildSipMessage, newBranch, newCallId } from '../support/sipp/sipMessage.js';

const ATTACKER = '127.0.0.6';

/** A full garbage collection, so heap figures show what is kept rather than what is not yet collected. */
function collectedHeap(): number {
  v8.setFlagsFromString('--expose-gc');
  (vm.runInNewContext('gc') as () => void)();
  return process.memoryUsage().heapUsed;
}

function request(method: string, opts: { transport?: 'UDP' | 'TCP'; callId?: string; branch?: string; contentLength?: string; extra?: string } = {}): string {
  const transport = opts.transport ?? 'UDP';
  return [
    `${method} sip:cti@${ENGINE_HOST} SIP/2.0`,
    `Via: SIP/2.0/${transport} ${ATTACKER}:5099;branch=${opts.branch ?? newBranch()}`,
    'From: <sip:attacker@example.invalid>;tag=a1',
    `To: <sip:cti@${ENGINE_HOST}>`,
    `Call-ID: ${opts.callId ?? newCallId()}`,
    `CSeq: 1 ${method}`,
    'Max-Forwards: 70',
    ...(opts.extra ? [opts.extra] : []),
    `Content-Length: ${opts.contentLength ?? '0'}`,
    '',
    '',
  ].join('\r\n');
}

/** A UDP socket on the attacker's address that keeps every response. */
async function udpClient(t: Teardown, port: number): Promise<{ send(text: string | Buffer): Promise<void>; replies: string[] }> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, ATTACKER, resolve));
  t.teardown(() => socket.close());
  const replies: string[] = [];
  socket.on('message', (m) => replies.push(m.toString('utf8')));
  return {
    replies,
    send: (text) => new Promise((resolve, reject) => socket.send(typeof text === 'string' ? Buffer.from(text) : text, port, ENGINE_HOST, (e) => (e ? reject(e) : resolve()))),
  };
}

async function until(check: () => boolean, ms = 3000): Promise<boolean> {
  const end = performance.now() + ms;
  while (!check()) {
    if (performance.now() > end) return false;
    await sleep(10);
  }
  return true;
}

async function engineOn(t: Teardown, config: Parameters<typeof startEngine>[1] = {}): Promise<{ engine: EmbeddedEngine; port: number }> {
  const port = await freeSipPort(ENGINE_HOST);
  return { engine: await startEngine(t, { sipPort: port, ...config }), port };
}

/** A real call through the engine still works: answered by SIPp, hung up cleanly. */
async function stillServing(t: Teardown & Pick<typeof tap, 'equal'>, engine: EmbeddedEngine): Promise<void> {
  const ear = await Ear.open(t);
  const sipp = await runSipp(t, 'answer', { mediaPort: ear.port });
  const leg = engine.dial(requestTo(sipp, {}, 'after-attack'));
  await next(leg, 'answered');
  leg.hangup();
  t.equal(await sipp.exit, 0, 'the engine still places and ends a real call');
}

function tcpConnect(port: number, localAddress = ATTACKER): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: ENGINE_HOST, port, localAddress }, () => resolve(socket));
    socket.once('error', reject);
  });
}

function closed(socket: net.Socket, ms = 3000): Promise<boolean> {
  return new Promise((resolve) => {
    if (socket.destroyed || socket.readyState === 'closed') return resolve(true);
    const timer = setTimeout(() => resolve(false), ms);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

if (!sippInstalled()) {
  t.fail(SIPP_MISSING);
} else {
  t.test('UDP garbage: dropped or answered 400/413, never fatal', async (tt) => {
    const { engine, port } = await engineOn(tt, { sipMaxMessageBytes: 4096 });
    const udp = await udpClient(tt, port);
    const junk: (string | Buffer)[] = [
      randomBytes(300),
      Buffer.alloc(0),
      '\r\n\r\n',
      'INVITE\r\n\r\n',
      'SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bKnothing\r\n\r\n',
      request('OPTIONS').replace(/Call-ID: .*\r\n/, ''),
      Buffer.from([0xff, 0xfe, 0x0d, 0x0a, 0x0d, 0x0a]),
      `INVITE sip:a@b SIP/2.0\r\n${'X: y\r\n'.repeat(600)}\r\n`,
    ];
    for (const j of junk) await udp.send(j);
    const badLength = request('OPTIONS', { contentLength: 'abc' });
    await udp.send(badLength);
    await udp.send(request('OPTIONS', { contentLength: '500' }));
    await udp.send(request('OPTIONS', { extra: `X-Pad: ${'a'.repeat(5000)}` }));
    tt.ok(await until(() => udp.replies.length >= 3), 'answers to the three addressable requests');
    tt.match(udp.replies[0], /^SIP\/2\.0 400 Bad Request \(malformed Content-Length\)\r\n/, 'Content-Length: abc → 400');
    tt.match(udp.replies[1], /^SIP\/2\.0 400 Bad Request \(body shorter than Content-Length\)\r\n/, 'a body shorter than declared → 400');
    tt.match(udp.replies[2], /^SIP\/2\.0 413 Message Too Large\r\n/, 'beyond sipMaxMessageBytes → 413');
    await sleep(100);
    tt.equal(udp.replies.length, 3, 'nothing answers the rest (not addressable)');
    tt.ok(engine.available);
    await stillServing(tt, engine);
  });

  t.test('TCP: the issue’s Content-Length: abc then a stream of bytes gets 400 and a closed connection; the server stays up', async (tt) => {
    const { engine, port } = await engineOn(tt);
    const socket = await tcpConnect(port);
    socket.on('error', () => {});
    let reply = '';
    socket.on('data', (d: Buffer) => (reply += d.toString('utf8')));
    socket.write(request('OPTIONS', { transport: 'TCP', contentLength: 'abc' }));
    const chunk = Buffer.alloc(64 * 1024, 0x41);
    let sent = 0;
    while (!socket.destroyed && socket.writable && sent < 64 * 1024 * 1024) {
      if (!socket.write(chunk)) await Promise.race([new Promise((r) => socket.once('drain', r)), closed(socket, 500)]);
      sent += chunk.length;
    }
    tt.ok(await closed(socket), `the engine closed the connection (after ${sent} bytes were offered)`);
    tt.match(reply, /^SIP\/2\.0 400 Bad Request \(malformed Content-Length\)\r\n/, '400 first');
    tt.ok(await until(() => engine.sipState.tcpConnections === 0), 'no connection left');
    tt.ok(process.memoryUsage().rss < 1024 * 1024 * 1024, 'memory not blown up');
    await stillServing(tt, engine);
  });

  t.test('TCP: headers without an end, and a message larger than the bound, close the connection', async (tt) => {
    const { engine, port } = await engineOn(tt, { sipMaxMessageBytes: 4096 });
    const endless = await tcpConnect(port);
    endless.on('error', () => {});
    for (let i = 0; i < 10 && endless.writable; i++) endless.write(Buffer.alloc(1000, 0x42));
    tt.ok(await closed(endless), 'no end of headers within 4096 bytes: closed');
    const big = await tcpConnect(port);
    big.on('error', () => {});
    let reply = '';
    big.on('data', (d: Buffer) => (reply += d.toString('utf8')));
    big.write(request('OPTIONS', { transport: 'TCP', contentLength: '100000' }));
    tt.ok(await closed(big), 'declared body beyond the bound: closed');
    tt.match(reply, /^SIP\/2\.0 413 Message Too Large\r\n/);
    await stillServing(tt, engine);
  });

  t.test('TCP connection bounds: per source, in total, idle timeout', async (tt) => {
    const { engine, port } = await engineOn(tt, { sipMaxTcpConnectionsPerSource: 3, sipMaxTcpConnections: 5, sipTcpIdleSeconds: 1 });
    const mine = await Promise.all([1, 2, 3, 4].map(() => tcpConnect(port)));
    for (const s of mine) s.on('error', () => {});
    tt.ok(await closed(mine[3]!), 'the 4th connection from one address is closed at once');
    tt.equal(engine.sipState.tcpConnections, 3);
    const others = await Promise.all(['127.0.0.7', '127.0.0.7', '127.0.0.8'].map((a) => tcpConnect(port, a)));
    for (const s of others) s.on('error', () => {});
    tt.ok(await closed(others[2]!), 'beyond 5 in total a new connection is closed, whatever its source');
    tt.equal(engine.sipState.tcpConnections, 5);
    const idle = await Promise.all(mine.slice(0, 3).map((s) => closed(s, 3000)));
    tt.same(idle, [true, true, true], 'idle connections are closed after sipTcpIdleSeconds');
    tt.ok(await until(() => engine.sipState.tcpConnections === 0, 3000), 'all gone');
  });

  t.test('an unsolicited INVITE gets 403, the same for its retransmission, and leaves no state; BYE and UPDATE get 481', async (tt) => {
    const { engine, port } = await engineOn(tt);
    const udp = await udpClient(tt, port);
    const invite = request('INVITE', { branch: 'z9hG4bKstray1', callId: 'stray@x' });
    await udp.send(invite);
    await udp.send(invite);
    tt.ok(await until(() => udp.replies.length >= 2));
    const [first, second] = udp.replies;
    tt.match(first, /^SIP\/2\.0 403 Forbidden \(no incoming calls\)\r\n/, '403, not 481');
    const tag = (m: string | undefined): string | undefined => /^To: .*;tag=([^;\r\n]+)/m.exec(m ?? '')?.[1];
    tt.ok(tag(first), 'the 403 carries a To tag');
    tt.equal(tag(second), tag(first), 'a retransmission gets the same answer');
    await udp.send(request('ACK', { branch: 'z9hG4bKstray1', callId: 'stray@x' }));
    await udp.send(request('BYE'));
    tt.ok(await until(() => udp.replies.length >= 3));
    tt.match(udp.replies[2], /^SIP\/2\.0 481 /, 'a BYE for no dialog: 481; the ACK: nothing');
    await udp.send(request('UPDATE', { extra: 'Session-Expires: 90;refresher=uac' }));
    tt.ok(await until(() => udp.replies.length >= 4));
    tt.match(udp.replies[3], /^SIP\/2\.0 481 /, 'an UPDATE (a refresh) for no dialog: 481 (RFC 3311 §5.2)');
    await sleep(100);
    tt.equal(udp.replies.length, 4);
    tt.equal(engine.sipState.serverTransactions, 0, 'no transaction kept');
  });

  t.test('20,000 OPTIONS: each answered 200, no state kept, memory bounded', async (tt) => {
    const { engine, port } = await engineOn(tt);
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, ATTACKER, resolve));
    tt.teardown(() => socket.close());
    let answered = 0;
    let not200 = 0;
    socket.on('message', (m) => {
      answered++;
      if (!m.toString('latin1', 0, 16).startsWith('SIP/2.0 200 OK\r\n')) not200++;
    });
    const send = (text: string): Promise<void> => new Promise((resolve) => socket.send(text, port, ENGINE_HOST, () => resolve()));
    const heapBefore = collectedHeap();
    // Paced in batches of 100: a burst of hundreds overflows a socket's receive buffer on loopback.
    for (let batch = 0; batch < 200; batch++) {
      for (let i = 0; i < 100; i++) await send(request('OPTIONS'));
      await until(() => answered >= (batch + 1) * 100, 1000);
    }
    tt.ok(answered >= 19_800, `answered (${answered} of 20000 counted; UDP on loopback may drop a few)`);
    tt.equal(not200, 0, 'all 200');
    tt.equal(engine.sipState.serverTransactions, 0, 'no transaction per OPTIONS');
    const grown = (collectedHeap() - heapBefore) / 1024 / 1024;
    tt.ok(grown < 5, `heap kept ${grown.toFixed(1)} MB more after the flood (the issue saw 50 MB)`);
  });

  t.test('in-dialog requests match Call-ID and both tags (RFC 3261 §12.2.2): wrong tags get 481 and never reach the call; forked early dialogs each match', async (tt) => {
    const { engine, port } = await engineOn(tt);
    const ear = await Ear.open(tt);
    const carrier = await ScriptedCarrier.open(tt, ATTACKER, port);
    const leg = engine.dial(requestTo({ host: ATTACKER, port: carrier.port }, {}, 'tags'));
    let legEnded = false;
    leg.once('ended', () => (legEnded = true));
    const invite = await carrier.waitFor((m) => m.method === 'INVITE');
    tt.ok(invite, 'the INVITE reaches the carrier');
    if (!invite) return;
    const callId = invite.header('call-id') ?? '';
    const ours = invite.header('from') ?? ''; // the engine's From, with its tag
    const ourTag = /;tag=([^;]+)/.exec(ours)?.[1] ?? '';
    tt.ok(ourTag, 'the INVITE carries our From tag');
    const to = `<sip:13800000000@${ATTACKER}>`;
    let cseq = 100;
    /** Sends an in-dialog request with the given tags and returns the engine's final answer to it. */
    const inDialog = async (method: string, tags: { from?: string; to?: string }, id = callId): Promise<number | undefined> => {
      const seq = ++cseq;
      await carrier.send(buildSipMessage(`${method} sip:cti@${ENGINE_HOST}:${port} SIP/2.0`, [
        `Via: SIP/2.0/UDP ${ATTACKER}:${carrier.port};branch=${newBranch()}`,
        `From: ${to}${tags.from === undefined ? '' : `;tag=${tags.from}`}`,
        `To: <sip:075500000000@cti.test>${tags.to === undefined ? '' : `;tag=${tags.to}`}`,
        `Call-ID: ${id}`, `CSeq: ${seq} ${method}`, 'Max-Forwards: 70',
      ]));
      return (await carrier.waitFor((m) => m.cseq === seq && m.method === method && (m.status ?? 0) >= 200))?.status;
    };

    // Forking: two early dialogs share our Call-ID and From tag, each with its own remote tag.
    await carrier.reply(invite, '180 Ringing', 'fork-a');
    await carrier.reply(invite, '180 Ringing', 'fork-b');
    await next(leg, 'progress');
    tt.equal(await inDialog('OPTIONS', { from: 'fork-b', to: ourTag }), 200, 'an early dialog of the second fork matches');
    tt.equal(await inDialog('OPTIONS', { from: 'fork-a', to: ourTag }), 200, 'and the first');
    tt.equal(await inDialog('OPTIONS', { from: 'fork-c', to: ourTag }), 481, 'a remote tag no 1xx/2xx gave: 481');
    tt.equal(await inDialog('BYE', { from: 'fork-c', to: ourTag }), 481, 'a BYE on an early dialog that does not exist: 481');
    tt.notOk(legEnded, 'the forged early BYE did not end the attempt');

    await carrier.reply(invite, '200 OK', 'fork-a', [], earSdp(ear));
    await next(leg, 'answered');
    tt.ok(await carrier.waitFor((m) => m.method === 'ACK' && m.status === undefined), 'our ACK of the 2xx');

    const heldBefore = engine.sipState.serverTransactions; // the OPTIONS above, kept for Timer J
    const forged: [string, { from?: string; to?: string }, string?][] = [
      ['a wrong To tag', { from: 'fork-a', to: `${ourTag}x` }],
      ['a wrong From tag', { from: 'fork-a-x', to: ourTag }],
      ['no To tag', { from: 'fork-a' }],
      ['no From tag', { to: ourTag }],
      ['the tags swapped', { from: ourTag, to: 'fork-a' }],
      ['the right tags on another Call-ID', { from: 'fork-a', to: ourTag }, `x${callId}`],
    ];
    for (const [name, tags, id] of forged) tt.equal(await inDialog('BYE', tags, id), 481, `BYE with ${name}: 481`);
    tt.equal(await inDialog('INVITE', { from: 'fork-a', to: `${ourTag}x` }), 481, 'a re-INVITE with a wrong To tag: 481, not 403');
    await carrier.send(buildSipMessage(`ACK sip:cti@${ENGINE_HOST}:${port} SIP/2.0`, [
      `Via: SIP/2.0/UDP ${ATTACKER}:${carrier.port};branch=${newBranch()}`, `From: ${to};tag=evil`, `To: <sip:075500000000@cti.test>;tag=${ourTag}`,
      `Call-ID: ${callId}`, `CSeq: ${invite.cseq} ACK`, 'Max-Forwards: 70',
    ]));
    await sleep(300);
    tt.notOk(legEnded, 'the call is still up after every forged request');
    tt.equal(engine.sipState.serverTransactions, heldBefore, 'the 481s are stateless');

    const end = ended(leg);
    tt.equal(await inDialog('BYE', { from: 'fork-a', to: ourTag }), 200, 'the right BYE: 200');
    tt.same(await end, { by: 'remote', reason: 'BYE' }, 'and it ends the call');
  });
}
