// Issue 11, kind 8 on the drachtio engine against a live drachtio-server +
// FreeSWITCH: reserve() creates a leg's endpoint before its INVITE and the
// leg uses that one; a FreeSWITCH that takes no more sessions fails reserve()
// (so a resource ends before anyone rings); endpoints waiting for creation
// saturate the engine (admission control), and the endpoint rate admitted is
// FreeSWITCH's own sessions-per-second unless configured; FreeSWITCH connects
// back on several ports in turn (OutboundListeners).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import type { MediaReservation } from '../../../lib/telephony/TelephonyEngine.js';
import { ended, next, openEar, request, startCarrier, startEngine } from './harness.js';
import { eslApi } from './eslApi.js';
import { findServices } from './services.js';
import { parseSessionsPerSecond } from '../../../lib/engines/drachtio/FreeswitchLink.js';
import { EndpointReservation } from '../../../lib/engines/drachtio/EndpointReservation.js';

/** FreeSWITCH's own count of channels (each endpoint is one). */
async function channels(fs: Parameters<typeof eslApi>[0]): Promise<number> {
  const reply = await eslApi(fs, 'show channels count');
  return Number(/(\d+) total/.exec(reply)?.[1] ?? NaN);
}

async function until(what: () => Promise<boolean>, ms = 5000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!(await what())) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

const services = await findServices();
if ('skip' in services) {
  t.comment(`SKIP drachtio engine overload: ${services.skip}`);
  t.test('drachtio engine overload', { skip: services.skip }, () => {});
} else {
  t.teardown(() => services.local?.stop());
  const fs = services.config.freeswitch[0]!;
  const carrier = await startCarrier(t, 'udp');

  t.test('a reserved endpoint is the one the leg uses: one FreeSWITCH channel per leg', async (t) => {
    const engine = await startEngine(t, services.config);
    const before = await channels(fs);
    const reserved = await engine.reserve('g1');
    if (!reserved.ok) return t.fail(`reserve failed: ${reserved.reason}`);
    // FreeSWITCH's channel list lags a little behind its channels.
    t.ok(await until(async () => (await channels(fs)) === before + 1), 'the endpoint exists before any INVITE');
    const ear = await openEar(t);
    const leg = engine.dial({ ...request(carrier, `answer-${ear.port}`), group: 'g1', reservation: reserved.reservation });
    await next(leg, 'answered');
    reserved.reservation.release(); // taken by the leg: a no-op
    await new Promise((r) => setTimeout(r, 500));
    t.equal(await channels(fs), before + 1, 'no second endpoint was created for the leg, and release() after the leg took it left it alone');
    let endedEarly = false;
    leg.once('ended', () => (endedEarly = true));
    t.notOk(endedEarly, 'the call is still up');
    leg.hangup();
    await ended(leg);
    t.ok(await until(async () => (await channels(fs)) === before), 'the leg hung its endpoint up');
  });

  t.test('a FreeSWITCH that takes no more sessions fails reserve() with the reason; release() frees the held one', async (t) => {
    const engine = await startEngine(t, services.config);
    // FreeSWITCH's own session count (what max_sessions limits), once the last test's are gone.
    const sessions = async (): Promise<number> => Number(/(\d+) session\(s\) -/.exec(await eslApi(fs, 'status'))?.[1] ?? NaN);
    t.ok(await until(async () => (await sessions()) === 0), 'no session left from earlier tests');
    const before = await channels(fs);
    // Measured: with max_sessions 1 FreeSWITCH refused even the first endpoint; 2 lets exactly one through.
    await eslApi(fs, 'fsctl max_sessions 2');
    t.teardown(() => eslApi(fs, 'fsctl max_sessions 2000'));
    const first = await engine.reserve('g2');
    const second = await engine.reserve('g2');
    t.ok(first.ok, 'one session left: the first reservation succeeds');
    t.notOk(second.ok, 'the second fails');
    if (!second.ok) t.match(second.reason, /^cannot create media endpoint: /, `reason: ${second.reason}`);
    if (first.ok) first.reservation.release();
    t.ok(await until(async () => (await channels(fs)) === before), 'the released endpoint is hung up');
  });

  t.test('unconfigured, the endpoint rate admitted is what FreeSWITCH reports as its sessions-per-second', async (t) => {
    const original = parseSessionsPerSecond(await eslApi(fs, 'status'));
    t.ok(original, `FreeSWITCH status names its sessions-per-second (${original})`);
    await eslApi(fs, 'fsctl sps 3');
    t.teardown(() => eslApi(fs, `fsctl sps ${original ?? 200}`));
    const engine = await startEngine(t, services.config);
    t.equal(engine.saturation(3), undefined, 'three endpoints fit in one second');
    const reserved = await Promise.all([engine.reserve('r'), engine.reserve('r'), engine.reserve('r')]);
    t.ok(reserved.every((r) => r.ok), 'and are created (FreeSWITCH takes three)');
    const saturation = engine.saturation(1);
    t.equal(saturation?.cause, 'endpoint_rate', `a fourth is refused: ${saturation?.message}`);
    t.match(saturation?.message, /at 3 per second/, 'at FreeSWITCH\'s own rate');
    t.ok((saturation?.retryAfterMs ?? 0) > 0 && (saturation?.retryAfterMs ?? 0) <= 1000, 'retry within the second');
    for (const r of reserved) if (r.ok) r.reservation.release();
  });

  t.test('a FreeSWITCH slower than maxEndpointCreateMs to create an endpoint saturates the engine', { skip: services.local ? false : 'needs a FreeSWITCH this run started (it is paused with SIGSTOP)' }, async (t) => {
    const pid = Number(readFileSync(join(services.local!.dir, 'fs', 'run', 'freeswitch.pid'), 'utf8').trim());
    const engine = await startEngine(t, { ...services.config, admission: { maxEndpointCreateMs: 300 } });
    // Warm up: one creation at FreeSWITCH's normal speed sets the recent average below the limit.
    const warm = await engine.reserve('w');
    if (warm.ok) warm.reservation.release();
    // A stalled FreeSWITCH completes nothing: only the age of the creation in progress shows it.
    process.kill(pid, 'SIGSTOP');
    t.teardown(() => process.kill(pid, 'SIGCONT'));
    const stalled = engine.reserve('s');
    t.equal(engine.saturation(2), undefined, 'a creation just started: admitted');
    await new Promise((r) => setTimeout(r, 500));
    const saturation = engine.saturation(2);
    t.equal(saturation?.cause, 'endpoints_pending', `refused while the creation hangs: ${saturation?.message}`);
    t.match(saturation?.message, /FreeSWITCH takes \d+ ms to create an endpoint \(limit 300 ms\)/);
    t.ok((saturation?.retryAfterMs ?? 0) >= 500, `retry after about the creation's age (${saturation?.retryAfterMs})`);
    process.kill(pid, 'SIGCONT');
    const result = await stalled;
    if (result.ok) result.reservation.release();
    t.ok(result.ok || /Connection timeout|timed out/.test(result.reason), `the stalled creation completes or fails (${result.ok || result.reason})`);
    t.equal(engine.saturation(2), undefined, 'nothing being created: admitted again, whatever the last creation took');
  });

  t.test('a FreeSWITCH slower than maxMediaRequestMs to bridge answered calls saturates the engine', { skip: services.local ? false : 'needs a FreeSWITCH this run started (it is paused with SIGSTOP)' }, async (t) => {
    const pid = Number(readFileSync(join(services.local!.dir, 'fs', 'run', 'freeswitch.pid'), 'utf8').trim());
    const engine = await startEngine(t, { ...services.config, admission: { maxMediaRequestMs: 300 } });
    const [earA, earB] = [await openEar(t), await openEar(t)];
    const a = engine.dial(request(carrier, `answer-${earA.port}`));
    const b = engine.dial(request(carrier, `answer-${earB.port}`));
    await Promise.all([next(a, 'answered'), next(b, 'answered')]); // each far end's SDP given to its endpoint
    t.equal(engine.saturation(2), undefined, 'both answered, nothing in flight: admitted');
    // A stalled FreeSWITCH answers nothing: the bridge in flight shows it by its age.
    process.kill(pid, 'SIGSTOP');
    t.teardown(() => process.kill(pid, 'SIGCONT'));
    const bridging = engine.bridge(a, b);
    bridging.catch(() => undefined);
    await new Promise((r) => setTimeout(r, 500));
    const saturation = engine.saturation(2);
    t.equal(saturation?.cause, 'media_requests_slow', `refused while the bridge hangs: ${saturation?.message}`);
    t.match(saturation?.message, /FreeSWITCH takes \d+ ms to apply an SDP or a bridge \(limit 300 ms\)/);
    t.ok((saturation?.retryAfterMs ?? 0) >= 500, `retry after about the bridge's age (${saturation?.retryAfterMs})`);
    process.kill(pid, 'SIGCONT');
    const bridged = await bridging.then(() => 'bridged', (err: Error) => err.message);
    t.equal(bridged, 'bridged', 'the bridge completes once FreeSWITCH resumes');
    t.equal(engine.saturation(2), undefined, 'nothing in flight: admitted again, whatever the last bridge took');
    a.hangup();
    b.hangup();
    await Promise.all([ended(a), ended(b)]);
  });

  t.test('FreeSWITCH connects back on eight ports in turn (one accept per event-loop turn each), and every endpoint comes up', async (t) => {
    const engine = await startEngine(t, services.config);
    const reserved = await Promise.all(Array.from({ length: 9 }, (_, i) => engine.reserve(`p${i}`)));
    t.ok(
      reserved.every((r) => r.ok),
      'all nine endpoints are created, whichever port their channel connected to',
    );
    // Only these nine channels are looked at: FreeSWITCH may still hold a
    // channel of an earlier test (the stalled creation above ends late).
    const uuids: string[] = [];
    for (const r of reserved) {
      const endpoint = r.ok && r.reservation instanceof EndpointReservation ? await r.reservation.endpoint : undefined;
      if (endpoint && !(endpoint instanceof Error)) uuids.push(endpoint.uuid);
    }
    t.equal(new Set(uuids).size, 9, 'nine endpoints, nine channels');
    const ports = new Map<string, number>();
    for (const uuid of uuids) {
      const address = (await eslApi(fs, `uuid_getvar ${uuid} sip_h_X-esl-outbound`)).trim();
      const port = /^127\.0\.0\.1:(\d+)$/.exec(address)?.[1] ?? `unexpected ${address}`;
      ports.set(port, (ports.get(port) ?? 0) + 1);
    }
    t.same(
      [...ports.values()].sort(),
      [1, 1, 1, 1, 1, 1, 1, 2],
      `the nine INVITEs named eight ports in turn: ${JSON.stringify(Object.fromEntries(ports))}`,
    );
    for (const r of reserved) if (r.ok) r.reservation.release();
    const live = async (): Promise<number> => {
      let n = 0;
      for (const uuid of uuids) if ((await eslApi(fs, `uuid_exists ${uuid}`)).trim() === 'true') n++;
      return n;
    };
    t.ok(await until(async () => (await live()) === 0), 'all nine hung up');
  });

  t.test('endpoints waiting for creation saturate the engine; creation is bounded per server', async (t) => {
    const engine = await startEngine(t, { ...services.config, endpointCreateConcurrency: 1, admission: { maxEndpointsPending: 2 } });
    t.equal(engine.saturation(2), undefined, 'idle: two legs fit');
    const pending = [engine.reserve('a'), engine.reserve('b'), engine.reserve('c')];
    const saturation = engine.saturation(1);
    t.equal(saturation?.cause, 'endpoints_pending', `saturated: ${saturation?.message}`);
    t.ok((saturation?.retryAfterMs ?? 0) >= 100, 'retry after one creation time at least');
    const results = await Promise.all(pending);
    t.ok(results.every((r) => r.ok), 'all three are created, one after another');
    t.equal(engine.saturation(2), undefined, 'nothing pending: admitted again');
    for (const r of results) if (r.ok) (r.reservation as MediaReservation).release();
  });
}
