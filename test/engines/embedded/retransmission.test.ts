// Loss on UDP: a relay between the engine and SIPp drops chosen SIP packets;
// the `sip` transaction layer must resend them and the call must go on.
import dgram from 'node:dgram';
import t from 'tap';
import type { DialRequest } from '../../../lib/telephony/TelephonyEngine.js';
import { FAR_HOST, SIPP_MISSING, ended, next, runSipp, sippInstalled, sleep, startEngine, type Sipp, type Teardown } from './harness.js';

const RELAY_HOST = '127.0.0.4';

/** Forwards SIP between the engine and SIPp, dropping the first packet that starts with (or, a RegExp, matches) each of `drop`. */
class LossyRelay {
  /** First lines, in order. */
  readonly seen: string[] = [];
  readonly messages: string[] = [];
  readonly #socket = dgram.createSocket('udp4');
  readonly #drop: Set<string | RegExp>;
  #engine: dgram.RemoteInfo | undefined;

  constructor(sipp: Sipp, drop: (string | RegExp)[]) {
    this.#drop = new Set(drop);
    this.#socket.on('message', (msg, from) => {
      const line = msg.toString('latin1', 0, msg.indexOf('\r\n'));
      const fromSipp = from.address === sipp.host && from.port === sipp.port;
      if (!fromSipp) this.#engine = from;
      const text = msg.toString('latin1');
      this.seen.push(line);
      this.messages.push(text);
      const rule = [...this.#drop].find((d) => (typeof d === 'string' ? line.startsWith(d) : d.test(text)));
      if (rule) return void this.#drop.delete(rule);
      if (fromSipp) {
        if (this.#engine) this.#socket.send(msg, this.#engine.port, this.#engine.address);
      } else this.#socket.send(msg, sipp.port, sipp.host);
    });
  }

  static async open(t: Teardown, sipp: Sipp, drop: (string | RegExp)[]): Promise<LossyRelay> {
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

  t.test('our lost 200 to a re-INVITE is resent, the same 200, until the ACK', async (tt) => {
    const engine = await startEngine(tt);
    const sipp = await runSipp(tt, 'reinvite', { mediaPort: 9 });
    const ours200 = /^SIP\/2\.0 200 [^]*\r\no=- /; // our 200s carry our SDP
    const relay = await LossyRelay.open(tt, sipp, [ours200]);
    const leg = engine.dial(viaRelay(sipp, relay));
    await next(leg, 'answered', 5000);
    const acked = (seq: number): boolean => relay.messages.some((m) => m.startsWith('ACK') && m.includes(`CSeq: ${seq} ACK`));
    for (let i = 0; i < 500 && !acked(103); i++) await sleep(10);
    tt.ok(acked(103), 'SIPp got through all three re-INVITEs');
    await sleep(600); // one T1: a resend after the ACK would show now
    const answers = (seq: number): string[] => relay.messages.filter((m) => ours200.test(m) && m.includes(`CSeq: ${seq} INVITE`));
    tt.equal(answers(101).length, 2, 'the lost 200 went out again, once, and stopped at the ACK');
    tt.equal(answers(101)[0], answers(101)[1], 'the very same 200');
    tt.same([answers(102).length, answers(103).length], [1, 1], 'acknowledged 200s are not resent');
    leg.hangup();
    await ended(leg);
    tt.equal(await sipp.exit, 0, 'SIPp ran its scenario to the end', { errors: sipp.errors() });
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
