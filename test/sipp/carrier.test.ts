// Self-tests of the far-end harness: every carrier.xml behaviour driven by
// the tiny TestUac, over UDP and TCP, with a real RtpEar for early media.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { RtpEar } from '../support/sipp/RtpEar.js';
import { SippCarrier } from '../support/sipp/SippCarrier.js';
import type { SipCall } from '../support/sipp/SipCall.js';
import { TestUac } from '../support/sipp/TestUac.js';
import type { SipMessage } from '../support/sipp/sipMessage.js';

const sdpPort = (m: SipMessage): number => Number(/^m=audio (\d+)/m.exec(m.body)?.[1] ?? NaN);
const sdpHost = (m: SipMessage): string => /^c=IN IP4 (\S+)/m.exec(m.body)?.[1] ?? '';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const carrier = await SippCarrier.start({ earlyToneHz: 440 });
t.teardown(() => carrier.stop());
t.comment(`carrier ${carrier.uri('x')} logs in ${carrier.logDir}`);
/** Calls that reach the carrier's scenario end; checked against SIPp's own count at the end. */
let callsPlaced = 0;

/** Only what fixture() needs from a tap test. */
interface HasTeardown {
  teardown(fn: () => unknown): void;
}

async function fixture(tt: HasTeardown, transport: 'udp' | 'tcp' = 'udp', target = carrier): Promise<{ uac: TestUac; ear: RtpEar }> {
  const uac = await TestUac.open({ transport, target: { host: target.host, port: target.port } });
  const ear = await RtpEar.open();
  tt.teardown(async () => {
    await uac.close();
    await ear.close();
  });
  return { uac, ear };
}

function place(uac: TestUac, user: string, ear: RtpEar, opts: Parameters<TestUac['invite']>[1] = {}, target = carrier): SipCall {
  if (target === carrier) callsPlaced++;
  return uac.invite(target.uri(user), { sdpPort: ear.port, ...opts });
}

t.test('answer-<ear>: 200 with the ear in the SDP, then our BYE is answered', async (tt) => {
  const { uac, ear } = await fixture(tt);
  const call = place(uac, `answer-${ear.port}`, ear);
  const final = await call.waitForFinal();
  tt.equal(final.status, 200);
  tt.equal(sdpPort(final), ear.port, 'SDP audio port is the ear');
  tt.equal(sdpHost(final), '127.0.0.1', 'SDP address is the ear host');
  tt.same(call.statuses, [200], 'the real response first: no 100 Trying, no 180');
  await sleep(100);
  call.bye();
  const byeOk = await call.waitFor((m) => m.method === 'BYE' && m.status === 200);
  tt.ok(byeOk, 'BYE answered with 200');
});

t.test('hangup-<secs>-<ear>: the carrier sends BYE after <secs>', async (tt) => {
  const { uac, ear } = await fixture(tt);
  const call = place(uac, `hangup-1-${ear.port}`, ear);
  const final = await call.waitForFinal();
  tt.equal(final.status, 200);
  tt.equal(sdpPort(final), ear.port);
  const bye = await call.waitForRequest('BYE', 4000);
  const after = bye.at - final.at;
  tt.ok(after >= 900 && after < 2000, `BYE ${after.toFixed(0)} ms after the 200 (want ~1000)`);
  tt.match(bye.header('to') ?? '', /tag=/, 'BYE is in-dialog (To has our tag)');
  tt.match(bye.requestUri, /^sip:uac@127\.0\.0\.1:/, 'BYE goes to our Contact');
});

t.test('hangup-<secs>-<ear> with decimals, and our BYE first (glare-free)', async (tt) => {
  const { uac, ear } = await fixture(tt);
  const call = place(uac, `hangup-0.5-${ear.port}`, ear);
  tt.equal((await call.waitForFinal()).status, 200);
  await call.waitForRequest('BYE', 2000);
  const call2 = place(uac, `hangup-5-${ear.port}`, ear);
  tt.equal((await call2.waitForFinal()).status, 200);
  call2.bye();
  await call2.waitFor((m) => m.method === 'BYE' && m.status === 200);
  await sleep(300);
  tt.equal(call2.requests.length, 0, 'the pending timer was cancelled by our BYE');
});

for (const [user, code] of [
  ['busy', 486],
  ['notfound', 404],
  ['unavailable', 503],
  ['reject', 603],
  ['no-such-behaviour', 484],
] as const) {
  t.test(`${user}: ${code}`, async (tt) => {
    const { uac, ear } = await fixture(tt);
    const call = place(uac, user, ear);
    const final = await call.waitForFinal();
    tt.equal(final.status, code);
    tt.same(call.statuses, [code], 'no provisional before it');
  });
}

t.test('ring: 180 and no answer; CANCEL gives 200 + 487', async (tt) => {
  const { uac, ear } = await fixture(tt);
  const call = place(uac, 'ring', ear);
  await call.waitForStatus(180);
  await sleep(1200);
  tt.same(call.statuses, [180], 'still ringing after 1.2 s');
  call.cancel();
  const cancelOk = await call.waitFor((m) => m.method === 'CANCEL' && m.status === 200);
  const final = await call.waitForFinal();
  tt.equal(cancelOk.status, 200, 'CANCEL answered');
  tt.equal(final.status, 487, 'INVITE ends with 487');
  tt.equal(final.header('cseq'), '1 INVITE', '487 carries the INVITE CSeq');
});

t.test('ringans-<secs>-<ear>: 180, then 200 after <secs>', async (tt) => {
  const { uac, ear } = await fixture(tt);
  const call = place(uac, `ringans-1-${ear.port}`, ear);
  const ringing = await call.waitForStatus(180);
  const final = await call.waitForFinal(4000);
  tt.equal(final.status, 200);
  tt.equal(sdpPort(final), ear.port);
  const ringMs = final.at - ringing.at;
  tt.ok(ringMs >= 900 && ringMs < 2000, `answered ${ringMs.toFixed(0)} ms after 180`);
  call.bye();
  await call.waitFor((m) => m.method === 'BYE' && m.status === 200);
});

t.test('ringans: CANCEL during the ring wakes the timer and ends with 487', async (tt) => {
  const { uac, ear } = await fixture(tt);
  const call = place(uac, `ringans-5-${ear.port}`, ear);
  await call.waitForStatus(180);
  await sleep(300);
  call.cancel();
  const final = await call.waitForFinal(2000);
  tt.equal(final.status, 487);
  await sleep(200);
  tt.notOk(call.statuses.includes(200) && call.responses.some((r) => r.method === 'INVITE' && r.status === 200), 'never answered');
});

t.test('early-<secs>-<ear>: 183 with SIPp media, a 440 Hz tone, then 200 to the ear', async (tt) => {
  const { uac, ear } = await fixture(tt);
  const call = place(uac, `early-1-${ear.port}`, ear);
  const progress = await call.waitForStatus(183);
  tt.not(sdpPort(progress), ear.port, '183 SDP names SIPp’s own media port');
  tt.ok(sdpPort(progress) > 0, `183 SDP port ${sdpPort(progress)}`);
  const final = await call.waitForFinal(4000);
  tt.equal(final.status, 200);
  tt.equal(sdpPort(final), ear.port, '200 SDP names the ear');
  const early = ear.packetsBetween(progress.at, final.at);
  tt.ok(early.length >= 35 && early.length <= 60, `${early.length} early-media packets in ~1 s (20 ms each)`);
  tt.ok(early.every((p) => p.payloadType === 0), 'PCMU');
  tt.equal(early[0]?.from.port, sdpPort(progress), 'sent from the port the 183 announced');
  const hz = ear.dominantFrequency(ear.pcm(early));
  tt.ok(Math.abs(hz - 440) <= 5, `early media tone at ${hz} Hz`);
  await sleep(300);
  tt.ok(ear.packetsBetween(final.at + 100, Infinity).length === 0, 'stream paused once answered');
  call.bye();
  await call.waitFor((m) => m.method === 'BYE' && m.status === 200);
});

t.test('early: CANCEL during early media gives 487 and the stream stops', async (tt) => {
  const { uac, ear } = await fixture(tt);
  const call = place(uac, `early-10-${ear.port}`, ear);
  await call.waitForStatus(183);
  await ear.waitForPackets(10, 2000);
  call.cancel();
  const final = await call.waitForFinal(2000);
  tt.equal(final.status, 487);
  await sleep(300);
  const stoppedAt = RtpEar.now();
  await sleep(300);
  tt.equal(ear.packetsBetween(stoppedAt, Infinity).length, 0, 'no media after the call ended');
});

t.test('auth-<ear>: 401 challenge, digest re-INVITE answered', async (tt) => {
  const { uac, ear } = await fixture(tt);
  const call = place(uac, `auth-${ear.port}`, ear, { auth: { user: carrier.authUser, password: carrier.authPassword } });
  const final = await call.waitForFinal();
  tt.same(call.statuses.slice(0, 2), [401, 200]);
  tt.match(call.responses[0]?.header('www-authenticate') ?? '', /^Digest .*nonce="/);
  tt.equal(final.status, 200);
  tt.equal(sdpPort(final), ear.port);
  call.bye();
  await call.waitFor((m) => m.method === 'BYE' && m.status === 200);
});

t.test('auth-<ear>: wrong password gives 403', async (tt) => {
  const { uac, ear } = await fixture(tt);
  const call = place(uac, `auth-${ear.port}`, ear, { auth: { user: carrier.authUser, password: 'wrong' } });
  const final = await call.waitForFinal();
  tt.same(call.statuses, [401, 403]);
  tt.equal(final.status, 403);
});

t.test('one carrier plays many phones at once', async (tt) => {
  const { uac, ear } = await fixture(tt);
  const plan: Array<[string, number]> = [];
  for (let i = 0; i < 10; i++) {
    plan.push([`answer-${ear.port}`, 200], ['busy', 486], [`ringans-0.3-${ear.port}`, 200], ['reject', 603]);
  }
  const calls = plan.map(([user]) => place(uac, user, ear));
  const finals = await Promise.all(calls.map((c) => c.waitForFinal(5000)));
  tt.same(finals.map((f) => f.status), plan.map(([, code]) => code), 'each call got its own behaviour');
  const answered = calls.filter((_, i) => finals[i]?.status === 200);
  for (const c of answered) c.bye();
  await Promise.all(answered.map((c) => c.waitFor((m) => m.method === 'BYE' && m.status === 200)));
});

t.test('TCP variant (-t t1)', async (tt) => {
  const tcp = await SippCarrier.start({ transport: 'tcp' });
  tt.teardown(() => tcp.stop());
  tt.match(tcp.uri('busy'), /;transport=tcp$/);
  const { uac, ear } = await fixture(tt, 'tcp', tcp);
  const busy = place(uac, 'busy', ear, {}, tcp);
  tt.equal((await busy.waitForFinal()).status, 486);
  const call = place(uac, `hangup-0.5-${ear.port}`, ear, {}, tcp);
  const final = await call.waitForFinal();
  tt.equal(final.status, 200);
  tt.equal(sdpPort(final), ear.port);
  await call.waitForRequest('BYE', 3000);
  await sleep(200);
  await tcp.stop();
  const stats = await tcp.stats();
  tt.equal(stats.failedCalls, 0, 'no failed calls on the TCP carrier');
  tt.equal(stats.successfulCalls, 2);
});

t.test('start() fails clearly when the port is taken', async (tt) => {
  await tt.rejects(SippCarrier.start({ port: carrier.port, startTimeoutMs: 3000 }), /SIPp/);
  // A SIPp slow to start (a loaded machine) must not take the other SIPp's socket for its own.
  const dir = await mkdtemp(join(tmpdir(), 'slow-sipp-'));
  tt.teardown(() => rm(dir, { recursive: true, force: true }));
  const slowSipp = join(dir, 'sipp');
  await writeFile(slowSipp, '#!/bin/sh\nsleep 0.5\nexec sipp "$@"\n', { mode: 0o755 });
  await tt.rejects(SippCarrier.start({ port: carrier.port, startTimeoutMs: 3000, sippPath: slowSipp }), /SIPp exited at start/);
});

t.test('SIPp counted every call as successful', async (tt) => {
  await sleep(300); // let the last ACKs and BYEs finish their scenarios
  const stop = await carrier.stop();
  tt.equal(stop.killed, false, 'SIGTERM was enough');
  const stats = await carrier.stats();
  tt.equal(stats.failedCalls, 0, `failed calls (see ${carrier.logDir})`);
  tt.equal(stats.successfulCalls, callsPlaced, 'one successful scenario run per call');
  tt.equal(stats.failedUnexpectedMessage, 0);
});

t.test('sustains 100 calls/s from a real SIPp UAC (answer-*)', async (tt) => {
  const load = await SippCarrier.start({ traceMessages: false });
  tt.teardown(() => load.stop());
  const { spawn } = await import('node:child_process');
  // SIPp's built-in uac: INVITE, 200, ACK, BYE. timeout(1) guards a hung UAC.
  const uac = spawn(
    'timeout',
    ['-k', '2', '30', 'sipp', '-sn', 'uac', '-s', 'answer-9', `${load.host}:${load.port}`,
      '-i', '127.0.0.1', '-p', '0', '-r', '100', '-m', '300', '-l', '60', '-nostdin', '-timeout', '25s', '-timeout_error'],
    { cwd: load.logDir, stdio: 'ignore' },
  );
  tt.teardown(() => {
    if (uac.exitCode === null) uac.kill('SIGKILL');
  });
  const code = await new Promise<number | null>((resolve) => uac.once('exit', (c) => resolve(c)));
  tt.equal(code, 0, 'the UAC saw every call succeed');
  await sleep(200);
  await load.stop();
  const stats = await load.stats();
  tt.equal(stats.successfulCalls, 300);
  tt.equal(stats.failedCalls, 0);
});
