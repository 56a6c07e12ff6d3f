import t from 'tap';
import { LatencyGauge } from '../../lib/util/LatencyGauge.js';

/** A request the test settles by hand. */
function deferred(): { promise: Promise<string>; resolve: (v: string) => void; reject: (e: Error) => void } {
  let resolve!: (v: string) => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<string>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

t.test('idle: busyMs is 0 whatever the last requests took', async (t) => {
  const g = new LatencyGauge(5000);
  t.equal(g.averageMs, 5000, 'the initial average');
  t.equal(g.busyMs(performance.now()), 0, 'nothing in flight');
});

t.test('a request in flight counts with its age; settling it feeds the average', async (t) => {
  const g = new LatencyGauge(10, 0.5);
  const r = deferred();
  const timed = g.time(r.promise);
  t.equal(g.inFlight, 1);
  t.equal(g.busyMs(performance.now()), 10, 'just started: the average is the longer');
  await sleep(120);
  const busy = g.busyMs(performance.now());
  t.ok(busy >= 110, `a stalled request shows by its age (${busy} ms), since it feeds no average`);
  r.resolve('ok');
  t.equal(await timed, 'ok', 'resolves as the request does');
  t.equal(g.inFlight, 0);
  t.ok(g.averageMs >= 10 + 0.5 * (110 - 10), `the average moved halfway towards the request's time (${g.averageMs})`);
  t.equal(g.busyMs(performance.now()), 0, 'idle again');
});

t.test('a failed request (a timeout) counts as slowness too, and its error passes through', async (t) => {
  const g = new LatencyGauge(0, 1);
  const r = deferred();
  const timed = g.time(r.promise);
  await sleep(60);
  r.reject(new Error('timed out'));
  await t.rejects(timed, /timed out/);
  t.ok(g.averageMs >= 50, `weight 1: the average is that request's time (${g.averageMs})`);
});

t.test('the oldest request in flight is the one judged, after younger ones end', async (t) => {
  const g = new LatencyGauge(0, 1);
  const old = deferred();
  const oldTimed = g.time(old.promise);
  await sleep(100);
  const young = deferred();
  const youngTimed = g.time(young.promise);
  young.resolve('y');
  await youngTimed;
  t.equal(g.inFlight, 1);
  const busy = g.busyMs(performance.now());
  t.ok(busy >= 90, `the old request's age (${busy}), not the young one's short time (${g.averageMs})`);
  old.resolve('o');
  await oldTimed;
});
