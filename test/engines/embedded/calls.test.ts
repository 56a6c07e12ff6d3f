// The engine's SIP call flows against a real SIPp far end (UDP and TCP).
import t from 'tap';

/** The assertions sippPassed() needs. */
interface Asserts {
  equal(found: unknown, wanted: unknown, message?: string, extra?: object): boolean;
}
import type { DialRequest, LegProgress } from '../../../lib/telephony/TelephonyEngine.js';
import { Ear, FAR_HOST, SIPP_MISSING, ended, next, runSipp, sippInstalled, sleep, startEngine, type Sipp } from './harness.js';

function request(sipp: Sipp, extra: Partial<DialRequest['gateway']> = {}): DialRequest {
  return {
    requestUri: `sip:13800000000@${FAR_HOST}:${sipp.port}`,
    fromUri: 'sip:075500000000@cti.test',
    gateway: { name: 'gw', host: sipp.host, port: sipp.port, transport: 'udp', ...extra },
    label: 'test',
  };
}

async function sippPassed(tt: Asserts, sipp: Sipp): Promise<void> {
  const code = await sipp.exit;
  tt.equal(code, 0, 'SIPp ran its scenario to the end', { errors: code === 0 ? '' : sipp.errors() });
}

if (!sippInstalled()) {
  t.fail(SIPP_MISSING);
} else {
  for (const transport of ['udp', 'tcp'] as const) {
    t.test(`${transport}: answered, then our BYE`, async (tt) => {
      const engine = await startEngine(tt);
      const ear = await Ear.open(tt);
      const sipp = await runSipp(tt, 'answer', { transport, mediaPort: ear.port });
      const leg = engine.dial(request(sipp, { transport }));
      await next(leg, 'answered');
      leg.hangup();
      leg.hangup(); // idempotent
      tt.same(await ended(leg), { by: 'local', reason: 'hangup' });
      await sippPassed(tt, sipp);
    });
  }
}
