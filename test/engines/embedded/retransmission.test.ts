// Loss on UDP: a relay between the engine and SIPp drops chosen SIP packets;
// the `sip` transaction layer must resend them and the call must go on.
import dgram from 'node:dgram';
import t from 'tap';
import type { DialRequest } from '../../../lib/telephony/TelephonyEngine.js';
import { FAR_HOST, SIPP_MISSING, ended, next, runSipp, sippInstalled, sleep, startEngine, type Sipp, type Teardown } from './harness.js';

const RELAY_HOST = '127.0.0.4';

/** Forwards SIP between the engine and SIPp, dropping the first packet that starts with each of `drop`. */
class LossyRelay {
  /** First lines, in order. */
  readonly seen: string[] = [];
  readonly messages: string[] = [];
  readonly #socket = dgram.createSocket('udp4');
  readonly #drop: Set<string>;
  #engine: dgram.RemoteInfo | undefined;

  constructor(sipp: Sipp, drop: string[]) {
    this.#drop = new Set(drop);
    this.#socket.on('message', (msg, from) => {
      const line = msg.toString('latin1', 0, msg.indexOf('\r\n'));
      const fromSipp = from.address === sipp.host && from.port === sipp.port;
      if (!fromSipp) this.#engine = from;
      this.seen.push(line);
      this.messages.push(msg.toString('latin1'));
      const method = [...this.#drop].find((m) => line.startsWith(m));
      if (method) return void this.#drop.delete(method);
      if (fromSipp) {
        if (this.#engine) this.#socket.send(msg, this.#engine.port, this.#engine.address);
      } else this.#socket.send(msg, sipp.port, sipp.host);
    });
  }

  static async open(t: Teardown, sipp: Sipp, drop: string[]): Promise<LossyRelay> {
    const relay = new LossyRelay(sipp, drop);
    await new Promise<void>((resolve) => relay.#socket.bind(0, RELAY_HOST, resolve));
    t.teardown(() => relay.#socket.close());
    return relay;
  }

  get port(): number {
    return this.#socket.address().port;
  }

  count(prefix: string): number {
    return this.seen.filter((l) => l.startsWith(prefix)).length;
  }
}

function viaRelay(sipp: Sipp, relay: LossyRelay): DialRequest {
  return {
    requestUri: `sip:13800000000@${FAR_HOST}:${sipp.port}`,
    fromUri: 'sip:075500000000@cti.test',
    gateway: { name: 'relay', host: RELAY_HOST, port: relay.port, transport: 'udp' },
    label: 'lossy',
  };
}

if (!sippInstalled()) {
  t.fail(SIPP_MISSING);
} else {
  t.test('a lost INVITE is resent and the call is answered', async (tt) => {
    const engine = await startEngine(tt);
    const sipp = await runSipp(tt, 'answer', { mediaPort: 9 });
    const relay = await LossyRelay.open(tt, sipp, ['INVITE']);
    const leg = engine.dial(viaRelay(sipp, relay));
    await next(leg, 'answered', 5000);
    tt.equal(relay.count('INVITE'), 2, 'the INVITE went out twice');
    leg.hangup();
    await ended(leg);
    tt.equal(await sipp.exit, 0);
  });

  t.test('a lost BYE is resent', async (tt) => {
    const engine = await startEngine(tt);
    const sipp = await runSipp(tt, 'answer', { mediaPort: 9 });
    const relay = await LossyRelay.open(tt, sipp, ['BYE']);
    const leg = engine.dial(viaRelay(sipp, relay));
    await next(leg, 'answered', 5000);
    leg.hangup();
    await ended(leg);
    tt.equal(await sipp.exit, 0, 'SIPp got the resent BYE');
    tt.equal(relay.count('BYE'), 2);
  });

  t.test('hangup before any provisional: the CANCEL waits for one', async (tt) => {
    const engine = await startEngine(tt);
    const sipp = await runSipp(tt, 'ring-cancel', { mediaPort: 9 });
    const relay = await LossyRelay.open(tt, sipp, ['INVITE']);
    const leg = engine.dial(viaRelay(sipp, relay));
    while (relay.count('INVITE') === 0) await sleep(5);
    leg.hangup(); // the first INVITE was dropped: no provisional can have arrived
    tt.same(await ended(leg), { by: 'local', reason: 'hangup' });
    tt.equal(relay.count('CANCEL'), 0, 'no CANCEL yet');
    tt.equal(await sipp.exit, 0, 'CANCEL sent after the 180 to the resent INVITE');
    const order = relay.seen.filter((l) => /^(INVITE|CANCEL|SIP\/2.0 180)/.test(l));
    tt.match(order, ['INVITE', 'INVITE', 'SIP/2.0 180', 'CANCEL']);
  });

  t.test('our branch ids are long random strings, not the 1e6 range of sip', async (tt) => {
    const engine = await startEngine(tt);
    const sipp = await runSipp(tt, 'busy', { mediaPort: 9 });
    const relay = await LossyRelay.open(tt, sipp, []);
    const leg = engine.dial(viaRelay(sipp, relay));
    await ended(leg);
    tt.equal(await sipp.exit, 0);
    const invite = relay.messages.find((m) => m.startsWith('INVITE')) ?? '';
    const vias = invite.split('\r\n').filter((l) => /^Via:/i.test(l));
    tt.equal(vias.length, 1, 'one Via');
    tt.match(vias[0], /;branch=z9hG4bK[\w-]{21}(;|$)/, 'a nanoid branch');
  });
}
