// Issue 7 points 1, 6 and 8 on the embedded engine, call by call: URIs that
// could inject SIP are refused before anything is sent, `sips:` is refused
// (no TLS), a callee BYE on an early dialog CANCELs our INVITE and counts as
// the callee's doing, and shutdown waits for a pending INVITE, ACKing and
// BYEing the 2xx that arrives after SIGTERM — also when stdout is gone.
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { BOOTSTRAP_KEY_FILE } from '../../lib/accounts/AccountStore.js';
import { pcmWavHeader } from '../../lib/engines/embedded/Wav.js';
import { droppedByFor, errorForFailedLeg } from '../../lib/resources/releaseError.js';
import type { DialRequest } from '../../lib/telephony/TelephonyEngine.js';
import {
  EAR_HOST,
  ENGINE_HOST,
  Ear,
  SIPP_MISSING,
  ended,
  next,
  requestTo,
  runSipp,
  sippInstalled,
  sleep,
  startEngine,
} from '../engines/embedded/harness.js';
import { freeSipPort } from '../support/engineTestKit.js';
import { RpcTestClient } from '../support/RpcTestClient.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

if (!sippInstalled()) {
  t.fail(SIPP_MISSING);
} else {
  t.test('URIs that could forge SIP, and sips:, fail the dial at once; nothing reaches the gateway', async (tt) => {
    const engine = await startEngine(tt);
    const gateway = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => gateway.bind(0, EAR_HOST, resolve));
    tt.teardown(() => gateway.close());
    let received = 0;
    gateway.on('message', () => received++);
    const base: DialRequest = {
      requestUri: `sip:1@${EAR_HOST}`,
      fromUri: 'sip:2@cti.test',
      gateway: { name: 'gw', host: EAR_HOST, port: gateway.address().port, transport: 'udp' },
      label: 'evil',
    };
    const bad = 'invalid request URI: control, space or non-ASCII character';
    const cases: [string, Partial<DialRequest>, string][] = [
      ['the issue’s U+010D U+010A', { requestUri: 'sip:a@gw\u010d\u010aX-Evil:\u0120 1' }, bad],
      ['CR LF', { requestUri: `sip:1@${EAR_HOST}\r\nX-Evil: 1` }, bad],
      ['NUL', { requestUri: `sip:1\0@${EAR_HOST}` }, bad],
      ['a space', { requestUri: `sip:1@${EAR_HOST} SIP/2.0` }, bad],
      ['CR LF in From', { fromUri: 'sip:2@cti.test\r\nContent-Length: 0' }, 'invalid From URI: control, space or non-ASCII character'],
      ['sips:', { requestUri: `sips:1@${EAR_HOST}` }, 'unsupported request URI scheme "sips:" (only sip:; this engine has no TLS)'],
      ['tel:', { requestUri: 'tel:+8613800000000' }, 'invalid request URI'],
    ];
    for (const [name, change, reason] of cases) {
      const leg = engine.dial({ ...base, ...change });
      tt.same(await ended(leg), { by: 'engine', reason }, name);
    }
    await sleep(200);
    tt.equal(received, 0, 'not one datagram reached the gateway');
  });

  t.test('a callee BYE on an early dialog: 200, our INVITE is CANCELled (487, ACK), the attempt ends as the callee’s refusal', async (tt) => {
    const engine = await startEngine(tt);
    const ear = await Ear.open(tt);
    const sipp = await runSipp(tt, 'early-bye', { mediaPort: ear.port });
    const leg = engine.dial(requestTo(sipp, {}, 'early-bye'));
    await next(leg, 'progress');
    const end = await ended(leg);
    tt.same(end, { by: 'remote', reason: 'BYE before answer' });
    tt.same(errorForFailedLeg(end, 2), { code: 'rejected', message: 'party 2: BYE before answer', party: 2 }, 'not engine_error');
    tt.equal(droppedByFor(end), 'usr');
    tt.equal(await sipp.exit, 0, 'the far end got 200 for its BYE, our CANCEL, and the ACK of its 487', { errors: sipp.errors() });
    tt.same(sipp.received().map((m) => m.split(' ')[0]), ['INVITE', 'SIP/2.0', 'CANCEL', 'ACK']);
  });

  t.test('engine stop with an INVITE pending: the 200 that comes after is ACKed and BYEd before stop() returns', async (tt) => {
    const engine = await startEngine(tt);
    const ear = await Ear.open(tt);
    const sipp = await runSipp(tt, 'late-answer', { mediaPort: ear.port, transport: 'tcp' });
    const leg = engine.dial(requestTo(sipp, { transport: 'tcp' }, 'late'));
    await sleep(500);
    const end = ended(leg);
    const started = performance.now();
    await engine.stop();
    tt.same(await end, { by: 'engine', reason: 'engine stopped' });
    tt.ok(performance.now() - started >= 2000, 'stop() waited for the late answer');
    tt.equal(await sipp.exit, 0, 'the callee got its ACK and BYE', { errors: sipp.errors() });
    tt.same(sipp.received().map((m) => m.split(' ')[0]), ['INVITE', 'ACK', 'BYE']);
  });

  t.test('SIGTERM with a notify_call ringing and stdout gone: the late 200 is ACKed and BYEd and the process exits', { timeout: 60_000 }, async (tt) => {
    const ear = await Ear.open(tt);
    const sipp = await runSipp(tt, 'late-answer', { mediaPort: ear.port, transport: 'tcp' });
    const media = mkdtempSync(join(tmpdir(), 'hostile-shutdown-'));
    const samples = Buffer.alloc(1600, 1);
    writeFileSync(join(media, 'prompt.wav'), Buffer.concat([pcmWavHeader(samples.length, 1), samples]));
    const rtpMin = 50000 + 2 * Math.floor(Math.random() * 2000);
    const child = spawn(process.execPath, ['--import', 'tsx', 'lib/main.ts'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        CTI_LISTEN__HOST: '127.0.0.1',
        CTI_LISTEN__PORT: '0',
        CTI_LOG_LEVEL: 'info',
        CTI_ENGINE__TYPE: 'embedded',
        CTI_ENGINE__SIP_HOST: ENGINE_HOST,
        CTI_ENGINE__SIP_PORT: String(await freeSipPort(ENGINE_HOST)),
        CTI_ENGINE__RTP_HOST: ENGINE_HOST,
        CTI_ENGINE__RTP_PORT_MIN: String(rtpMin),
        CTI_ENGINE__RTP_PORT_MAX: String(rtpMin + 99),
        CTI_GATEWAYS: JSON.stringify([{ name: 'far', host: sipp.host, port: sipp.port, transport: 'tcp', callerId: '1000' }]),
        CTI_MEDIA_DIR: media,
        CTI_RECORDINGS_DIR: join(media, 'rec'),
        CTI_DATA_DIR: join(media, 'data'),
      },
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    tt.teardown(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    let out = '';
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const address = /"address":"(ws:\/\/[^"]+)"/.exec(out)?.[1];
        if (address) resolve(address);
      });
      void exited.then(() => reject(new Error(`server exited before listening: ${out}`)));
    });
    // A fresh data folder: the server's first start wrote its bootstrap key there.
    const apiKey = readFileSync(join(media, 'data', BOOTSTRAP_KEY_FILE), 'utf8').trim();
    const client = await RpcTestClient.connect(url, apiKey);
    tt.teardown(() => client.socket.close());
    const reply = await client.call('ext.notify_call.construct', { to_uri: 'sip:1@far', play_content: 'prompt.wav', user_data: 'late' });
    tt.notOk(reply.error, 'constructed');
    await sleep(500); // the INVITE is out; the callee answers at 3 s
    child.stdout.destroy(); // the log reader goes away: every later log line hits EPIPE
    child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([exited, new Promise((resolve) => (timer = setTimeout(resolve, 45_000, 'still running')))]);
    clearTimeout(timer);
    tt.equal(code, 0, 'the first SIGTERM ends the process');
    tt.equal(await sipp.exit, 0, 'the callee got its ACK and BYE', { errors: sipp.errors() });
    tt.same(sipp.received().map((m) => m.split(' ')[0]), ['INVITE', 'ACK', 'BYE']);
  });
}
