// Availability of the drachtio engine, and what losing FreeSWITCH or
// drachtio-server does to calls that are up. The loss cases kill and restart
// the servers, so they run only on servers this test started itself.
import { pino } from 'pino';
import t from 'tap';
import { DrachtioEngine } from '../../../lib/engines/drachtio/DrachtioEngine.js';
import { eslApi } from './eslApi.js';
import { callOutcome, ended, next, openEar, request, sleep, startCarrier, startEngine, waitAvailable } from './harness.js';
import { findServices } from './services.js';

/** Availability changes as [available, reason] pairs. */
function watch(engine: DrachtioEngine): Array<[boolean, string]> {
  const seen: Array<[boolean, string]> = [];
  engine.on('availability', (available, reason) => seen.push([available, reason]));
  return seen;
}

const services = await findServices();
if ('skip' in services) {
  t.comment(`SKIP drachtio engine availability: ${services.skip}`);
  t.test('drachtio engine availability', { skip: services.skip }, () => {});
} else {
  t.teardown(() => services.local?.stop());
  const carrier = await startCarrier(t);

  t.test('no FreeSWITCH reachable: unavailable, and a dial ends by engine', async (tt) => {
    const config = { ...services.config, freeswitch: [{ host: '127.0.0.1', port: 9, secret: 'ClueCon' }] };
    const engine = new DrachtioEngine(config, pino({ level: 'silent' }));
    tt.teardown(() => engine.stop());
    const seen = watch(engine);
    await engine.start();
    await sleep(1500);
    tt.equal(engine.available, false);
    tt.same(seen, [], 'never became available');
    const leg = engine.dial(request(carrier, 'busy'));
    tt.same(await ended(leg), { by: 'engine', reason: 'no media server available' });
  });

  const local = services.local;
  t.test('losing FreeSWITCH ends its calls and makes the engine unavailable until it is back', { skip: local ? false : 'needs servers started by the test (unset DRACHTIO_HOST)' }, async (tt) => {
    const engine = await startEngine(tt, services.config);
    const seen = watch(engine);
    const ear = await openEar(tt);
    const leg = engine.dial(request(carrier, `answer-${ear.port}`));
    await next(leg, 'answered');
    const legEnded = ended(leg);
    await local!.stopFreeswitch();
    tt.teardown(() => local!.startFreeswitch()); // for the next test, should this one fail
    const end = await legEnded;
    tt.equal(end.by, 'engine');
    tt.match(end.reason, /media server|media endpoint/);
    await waitAvailable(engine, false, 5000);
    await sleep(500);
    tt.equal(await callOutcome(carrier, `answer-${ear.port}`), 'hung up', 'the party got a BYE');
    await local!.startFreeswitch();
    await waitAvailable(engine, true, 20_000);
    tt.same(seen.map(([available]) => available), [false, true]);
    const again = engine.dial(request(carrier, `answer-${ear.port}`));
    await next(again, 'answered');
    again.hangup();
    await ended(again);
  });

  t.test('losing drachtio-server ends the calls and releases their FreeSWITCH channels', { skip: local ? false : 'needs servers started by the test (unset DRACHTIO_HOST)' }, async (tt) => {
    const engine = await startEngine(tt, services.config);
    const ear = await openEar(tt);
    const leg = engine.dial(request(carrier, `answer-${ear.port}`));
    await next(leg, 'answered');
    const legEnded = ended(leg);
    await local!.stopDrachtio();
    tt.teardown(() => local!.startDrachtio());
    tt.same(await legEnded, { by: 'engine', reason: 'drachtio-server connection lost' });
    await waitAvailable(engine, false, 5000);
    await sleep(4000);
    const [fs] = services.config.freeswitch;
    tt.match(await eslApi(fs!, 'show channels count'), /^0 total/m, 'no FreeSWITCH channel left');
    await local!.startDrachtio();
    await waitAvailable(engine, true, 20_000);
    const again = engine.dial(request(carrier, 'busy'));
    tt.equal((await ended(again)).sipStatus, 486, 'calls go through again');
  });
}
