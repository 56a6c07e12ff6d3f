// Engine lifecycle: availability, stop() ending calls and closing every socket,
// and the 408 a silent next hop yields (Timer B, 32 s).
import dgram from 'node:dgram';
import net from 'node:net';
import t from 'tap';
import { EAR_HOST, Ear, SIPP_MISSING, ended, next, requestTo, runSipp, sippInstalled, startEngine } from './harness.js';

const tcpSockets = (): number => process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length;

if (!sippInstalled()) {
  t.fail(SIPP_MISSING);
} else {
  t.test('stop() ends calls with BYE, reports availability and closes TCP connections', async (tt) => {
    const before = tcpSockets();
    const engine = await startEngine(tt);
    tt.ok(engine.available);
    const changes: [boolean, string][] = [];
    engine.on('availability', (available, reason) => changes.push([available, reason]));
    const ear = await Ear.open(tt);
    const sipp = await runSipp(tt, 'answer', { transport: 'tcp', mediaPort: ear.port });
    const leg = engine.dial(requestTo(sipp, { transport: 'tcp' }, 'stop'));
    await next(leg, 'answered');
    tt.ok(tcpSockets() > before, 'a TCP connection to the far end is open');
    const end = ended(leg);
    await engine.stop();
    tt.same(await end, { by: 'engine', reason: 'engine stopped' });
    tt.same(changes, [[false, 'engine stopped']]);
    tt.equal(await sipp.exit, 0, 'the far end got the BYE');
    tt.equal(tcpSockets(), before, 'no TCP socket left open');
    await engine.stop(); // idempotent
  });

  t.test('stop() closes a TCP connection the far end keeps open', async (tt) => {
    const engine = await startEngine(tt);
    const accepted: net.Socket[] = [];
    const silent = net.createServer((socket) => accepted.push(socket.resume())); // reads INVITEs, never answers
    await new Promise<void>((resolve) => silent.listen(0, EAR_HOST, resolve));
    tt.teardown(() => {
      for (const s of accepted) s.destroy();
      silent.close();
    });
    const port = (silent.address() as net.AddressInfo).port;
    const leg = engine.dial({ requestUri: `sip:1@${EAR_HOST}`, fromUri: 'sip:2@cti.test', gateway: { name: 'tcp', host: EAR_HOST, port, transport: 'tcp' }, label: 'tcp' });
    while (accepted.length === 0) await new Promise((r) => setTimeout(r, 5));
    const end = ended(leg);
    await engine.stop();
    tt.equal((await end).by, 'engine');
    await new Promise<void>((resolve) => (accepted[0]!.closed ? resolve() : accepted[0]!.once('close', () => resolve())));
    tt.pass('the far end saw the engine close the connection');
  });

  t.test('no answer at all: ended with a local 408 after Timer B', { timeout: 60000 }, async (tt) => {
    const engine = await startEngine(tt);
    const blackHole = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => blackHole.bind(0, EAR_HOST, resolve));
    tt.teardown(() => blackHole.close());
    let invites = 0;
    blackHole.on('message', () => invites++);
    const leg = engine.dial({
      requestUri: `sip:1@${EAR_HOST}`,
      fromUri: 'sip:2@cti.test',
      gateway: { name: 'void', host: EAR_HOST, port: blackHole.address().port, transport: 'udp' },
      label: 'void',
    });
    tt.same(await ended(leg, 40000), { by: 'remote', sipStatus: 408, reason: '408 Request Timeout' });
    tt.ok(invites >= 6, `the INVITE was retransmitted (${invites} sent)`);
  });
}
