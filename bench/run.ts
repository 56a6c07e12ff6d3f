/**
 * `npm run bench [-- --quick] [-- --profile] [-- --drachtio-only | --setup-only] [-- --node-flags '…']
 * [-- --drachtio-rates 5,10,20]`: the
 * embedded engine's load benchmarks, then the drachtio engine's (when
 * drachtio-server and FreeSWITCH are on PATH; bench/drachtio/section.ts),
 * each next to a baseline measured in the same run, printed as one table and
 * saved as JSON under bench/results/. See docs/performance.md.
 *
 * Core 0 runs the system under test (the CTI server, or the baseline: a bare
 * UDP relay / SIPp's own UAC); core 1 runs everything else (this process,
 * the SIPp carrier, the phone farm). Every child process ends with the run.
 */
import { execFileSync } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { cpus, setPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { SippCarrier } from '../test/support/sipp/SippCarrier.js';
import { ProcessGroup } from './ProcessGroup.js';
import { BASELINE_UAC_HOST, constructPath, FARM_HOST, relayConcurrency, serverConcurrency, setupRate, sipBaseline, type ConcurrencyResult, type ConcurrencyTiming, type ConstructPathResult, type SetupRateResult } from './scenarios.js';
import { serverTimings, type ServerTimings } from './probe/ProbeReport.js';
import { ServerUnderTest } from './ServerUnderTest.js';
import { addDrachtioRows, drachtioSection, type DrachtioSection } from './drachtio/section.js';
import { Table } from './Table.js';

const { values: args } = parseArgs({ options: { quick: { type: 'boolean' }, profile: { type: 'boolean' }, 'drachtio-only': { type: 'boolean' }, 'normal-priority': { type: 'boolean' }, 'setup-only': { type: 'boolean' }, 'node-flags': { type: 'string' }, 'drachtio-rates': { type: 'string' } } });
const quick = args.quick ?? false;
const drachtioOnly = args['drachtio-only'] ?? false;
/** `--setup-only`: the setup-rate rows alone (memory and stored), for quick comparisons of server settings. */
const setupOnly = args['setup-only'] ?? false;
/**
 * The drachtio section: each rate for this long, bare app then CTI server (about 4 × 30 s with the pauses).
 * `--drachtio-rates` replaces the offered rates (callbacks/s), e.g. lower ones where FreeSWITCH saturates
 * below 20/s, so that the knee (the bare app's best rate without failures) is inside the run.
 */
const drachtioDefaults = quick ? { rates: [30, 40], seconds: 5 } : { rates: [20, 30, 40, 50], seconds: 8 };
const drachtioPlan = { ...drachtioDefaults, rates: offeredRates(args['drachtio-rates']) ?? drachtioDefaults.rates };
/** Time the drachtio section may take: about 2 minutes per offered rate, both systems. */
const DRACHTIO_BUDGET_SEC = Math.max(480, 120 * drachtioPlan.rates.length);

/** `--drachtio-rates`: comma-separated whole callbacks/s, 1 to 200 each, at most 8; anything else ends the bench. */
function offeredRates(option: string | undefined): number[] | undefined {
  if (option === undefined) return undefined;
  const rates = option.split(',').map(Number);
  if (rates.length > 8 || rates.some((r) => !Number.isInteger(r) || r < 1 || r > 200)) {
    console.error(`--drachtio-rates: expected up to 8 comma-separated whole numbers from 1 to 200, got "${option}"`);
    process.exit(2);
  }
  return rates;
}

/** Targets (issue text): 300 concurrent bridged calls under 0.1 % RTP loss on one core; 100 setups/s. */
const TARGET_CALLS = 300;
const TARGET_LOSS_PCT = 0.1;
const TARGET_SETUPS = 100;
/** Issue 9: at 200 constructs/s with durable events, the construct reply p99 stays under this. */
const TARGET_REPLY_P99_MS = 5;
/** Issue 9: at 200 constructs/s with durable events, event delivery p99 stays under this. */
const TARGET_DELIVERY_P99_MS = 10;

const plan = quick
  ? { setupRates: [100, 200], setupSeconds: 5, pathRate: 100, concurrency: [300], rampPerSec: 100, warmupSec: 1, holdSec: 8, uacRate: 400, uacSeconds: 3, deadlineSec: 300 }
  : { setupRates: [50, 100, 150, 200], setupSeconds: 10, pathRate: 100, concurrency: [100, 200, 300, 400], rampPerSec: 100, warmupSec: 2, holdSec: 20, uacRate: 800, uacSeconds: 6, deadlineSec: 600 };

/**
 * Nice value of the bench and (inherited) every process it starts: the run
 * measures the server, not whatever else shares the machine (docs/performance.md).
 */
const BENCH_NICE = -10;

/** Calls placed on each fresh server before its measured rows. */
const WARMUP = { rate: 50, seconds: 2 };

/**
 * V8 flags of the server on its one core (`--node-flags` replaces them; `--node-flags=` runs V8's defaults),
 * as docs/operations.md recommends for a server given one core
 * (docs/performance.md#one-core-gc): garbage collected on the main thread
 * (V8's GC helper threads would compete with it for the core), and a 4 MB
 * young generation, whose scavenges stop the loop about 2 ms instead of 5.
 */
const SERVER_NODE_FLAGS = '--single-threaded-gc --max-semi-space-size=4';
const serverNodeFlags = (args['node-flags'] ?? SERVER_NODE_FLAGS).split(' ').filter(Boolean);

const SERVER_CPU = '0';
const OTHERS_CPU = '1';

const group = new ProcessGroup();
let carrier: SippCarrier | undefined;
let server: ServerUnderTest | undefined;
let ear: dgram.Socket | undefined;

async function cleanup(): Promise<void> {
  try {
    ear?.close();
  } catch {
    // already closed
  }
  ear = undefined;
  await server?.stop(3000).catch(() => undefined);
  await carrier?.stop().catch(() => undefined);
  await group.killAll();
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.error(`\n${signal}: stopping every child process`);
    void cleanup().finally(() => process.exit(130));
  });
}
const deadline = setTimeout(() => {
  console.error(`bench: still running after ${plan.deadlineSec} s, giving up`);
  void cleanup().finally(() => process.exit(1));
}, (drachtioOnly ? DRACHTIO_BUDGET_SEC : plan.deadlineSec + DRACHTIO_BUDGET_SEC) * 1000);

async function freePort(host: string): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

const log = (s: string): void => console.log(`[${new Date().toISOString().slice(11, 19)}] ${s}`);
const f = (n: number, digits = 0): string => (Number.isFinite(n) ? n.toFixed(digits) : '-');

/** Raises this process's priority (children inherit it); needs root or CAP_SYS_NICE, else the run goes on at normal priority. */
function raisePriority(): string {
  try {
    setPriority(BENCH_NICE);
    return `nice ${BENCH_NICE} for every process of the run`;
  } catch (err) {
    return `normal priority (cannot raise it: ${(err as Error).message})`;
  }
}

async function main(): Promise<void> {
  if (cpus().length < 2) throw new Error('the bench needs 2 cores: one for the system under test, one for the load');
  if (drachtioOnly) return runDrachtioOnly();
  // This process and what it starts (SIPp carrier, phone farm) stay off the measured core.
  execFileSync('taskset', ['-a', '-p', '-c', OTHERS_CPU, String(process.pid)], { stdio: 'ignore' });
  const priority = args['normal-priority'] ? 'normal priority' : raisePriority();
  const dir = mkdtempSync(join(tmpdir(), 'cti-bench-'));
  log(`bench ${quick ? '--quick ' : ''}in ${dir}, ${priority}, server node flags: ${serverNodeFlags.join(' ') || 'none'}`);

  carrier = await SippCarrier.start({ host: '127.0.0.2', earHost: FARM_HOST, traceMessages: false, extraArgs: ['-buff_size', '8388608'], maxLifetimeSec: plan.deadlineSec + 60 });
  // Setup-rate calls carry no RTP; their SDP names this socket, which hears nothing.
  ear = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => ear!.bind(0, FARM_HOST, resolve));
  const earPort = ear.address().port;

  log(`baseline: SIPp UAC → carrier at ${plan.uacRate} calls/s`);
  const uac = await sipBaseline(group, carrier, dir, { rate: plan.uacRate, seconds: plan.uacSeconds, earPort, cpu: SERVER_CPU, port: await freePort(BASELINE_UAC_HOST) });
  log(`  ${uac.successful}/${uac.calls} calls in ${f(uac.elapsedSec, 1)} s = ${f(uac.callsPerSec)} calls/s, ${uac.failed} failed`);

  const startServer = async (durableEvents: boolean): Promise<ServerUnderTest> => {
    const started = await ServerUnderTest.start(group, {
      wsPort: await freePort('127.0.0.1'),
      httpPort: await freePort('127.0.0.1'),
      sipPort: await freePort('127.0.0.1'),
      rtpPortMin: 30000,
      rtpPortMax: 39999,
      carrierHost: carrier!.host,
      carrierPort: carrier!.port,
      dir,
      cpu: SERVER_CPU,
      cpuProfile: args.profile ?? false,
      nodeFlags: serverNodeFlags,
      durableEvents,
    });
    log(`server (events ${durableEvents ? 'stored' : 'in memory'}) pid ${started.cpu.pid} on core ${SERVER_CPU}, log ${started.logPath}`);
    return started;
  };

  // The same setup rates with the event log in memory, then stored (issue 9: what durability costs).
  const setups: Array<SetupRateResult & { durable: boolean; server: ServerUnderTest }> = [];
  let measured: ServerUnderTest | undefined;
  for (const durable of [false, true]) {
    measured = server = await startServer(durable);
    // A fresh server loads and compiles its code on first use (a stall of up to 1 s was seen here): not what a row measures.
    log(`warm-up: ${WARMUP.rate} duo_callbacks/s for ${WARMUP.seconds} s, not measured`);
    await setupRate(measured, { ...WARMUP, earPort });
    for (const rate of plan.setupRates) {
      log(`setup rate: ${rate} duo_callbacks/s for ${plan.setupSeconds} s, events ${durable ? 'stored' : 'in memory'}`);
      const r = await setupRate(measured, { rate, seconds: plan.setupSeconds, earPort });
      setups.push({ ...r, durable, server: measured });
      log(`  ${r.connected}/${r.constructs} connected, ${f(r.setupsPerSec, 1)}/s, p50/p95/p99 ${f(r.latencyMs.p50)}/${f(r.latencyMs.p95)}/${f(r.latencyMs.p99)} ms, reply p99 ${f(r.replyMs.p99, 1)} ms, ${r.failed} failed, CPU ${f(r.serverCpuPct)} %`);
      if (r.failures.length) log(`  failures: ${JSON.stringify(r.failures)}`);
    }
    if (!durable) await measured.stop();
  }
  // The concurrency runs use the server with stored events.
  const sut = measured!;

  // The construct path, WebSocket then HTTP, on the same server (events stored).
  const paths: ConstructPathResult[] = [];
  for (const api of setupOnly ? [] : (['ws', 'http'] as const)) {
    log(`construct path: ${plan.pathRate} duo_callbacks/s over ${api} for ${plan.setupSeconds} s`);
    const r = await constructPath(sut, { api, rate: plan.pathRate, seconds: plan.setupSeconds, earPort });
    paths.push(r);
    log(`  ${r.accepted}/${r.constructs} accepted, ${r.released} released, reply p50/p99/max ${f(r.replyMs.p50, 1)}/${f(r.replyMs.p99, 1)}/${f(r.replyMs.max, 1)} ms, CPU ${f(r.serverCpuPct)} %`);
  }

  const concurrency: { timing: ConcurrencyTiming; server: ConcurrencyResult; baseline: ConcurrencyResult }[] = [];
  for (const calls of setupOnly ? [] : plan.concurrency) {
    const timing: ConcurrencyTiming = { calls, rampPerSec: plan.rampPerSec, warmupSec: plan.warmupSec, holdSec: plan.holdSec };
    log(`concurrency: ${calls} bridged calls through the server, ${plan.holdSec} s window`);
    const s = await serverConcurrency(group, sut, timing, OTHERS_CPU);
    log(`  connected ${s.connected}, legs flowing ${s.legsFlowing}/${2 * calls}, loss ${f(s.lossPct, 3)} %, ${f(s.packetsPerSec)} pkt/s, CPU ${f(s.cpuPct)} %`);
    log(`baseline: ${calls} calls through a bare UDP relay`);
    const b = await relayConcurrency(group, timing, SERVER_CPU, OTHERS_CPU);
    log(`  legs flowing ${b.legsFlowing}/${2 * calls}, loss ${f(b.lossPct, 3)} %, ${f(b.packetsPerSec)} pkt/s, CPU ${f(b.cpuPct)} %`);
    concurrency.push({ timing, server: s, baseline: b });
  }

  await sut.stop();
  server = undefined;
  if (args.profile) log(`CPU profile (.cpuprofile) written in ${dir}`);
  // Both servers have exited now, so their probes wrote what they saw: join it with each row's client times.
  const timings = setups.map((r): ServerTimings | null => {
    const probe = r.server.probe();
    return probe && serverTimings(probe, r);
  });
  // drachtio-server and FreeSWITCH get both cores, like the bare app they are compared with.
  execFileSync('taskset', ['-a', '-p', '-c', `${SERVER_CPU},${OTHERS_CPU}`, String(process.pid)], { stdio: 'ignore' });
  const drachtio: DrachtioSection = setupOnly ? { skipped: '--setup-only' } : await drachtioSection(group, dir, drachtioPlan, log);
  if ('skipped' in drachtio) log(`drachtio section skipped: ${drachtio.skipped}`);

  const table = new Table();
  const best = setups.filter((r) => r.durable && r.failed === 0).reduce((m, r) => Math.max(m, r.setupsPerSec), 0);
  for (const [i, r] of setups.entries()) {
    const scenario = `setup ${r.offeredPerSec}/s, events ${r.durable ? 'stored' : 'in memory'}`;
    const replyTargeted = r.durable && r.offeredPerSec >= 200;
    const t = timings[i];
    table.add({ scenario, metric: 'duo_callbacks connected/s', server: f(r.setupsPerSec, 1), baseline: `${f(uac.callsPerSec)} SIP calls/s`, target: '', pass: undefined });
    table.add({ scenario, metric: 'SIP calls/s (2 per duo)', server: f(2 * r.setupsPerSec), baseline: f(uac.callsPerSec), target: '' });
    table.add({
      scenario,
      metric: 'construct reply p50/p95/p99 ms',
      server: `${f(r.replyMs.p50, 1)}/${f(r.replyMs.p95, 1)}/${f(r.replyMs.p99, 1)}`,
      baseline: '',
      target: replyTargeted ? `p99 < ${TARGET_REPLY_P99_MS}` : '',
      pass: replyTargeted ? r.replyMs.p99 < TARGET_REPLY_P99_MS : undefined,
    });
    table.add({
      scenario,
      metric: 'event delivery p50/p95/p99 ms',
      server: t ? `${f(t.deliveryMs.p50, 1)}/${f(t.deliveryMs.p95, 1)}/${f(t.deliveryMs.p99, 1)}` : 'no probe',
      baseline: '',
      target: replyTargeted ? `p99 < ${TARGET_DELIVERY_P99_MS}` : '',
      pass: replyTargeted ? t !== null && t.unmatched === 0 && t.deliveryMs.p99 < TARGET_DELIVERY_P99_MS : undefined,
    });
    if (t) {
      table.add({ scenario, metric: 'in server: reply p99 / commit p99 / loop late p99 ms', server: `${f(t.serverReplyMs.p99, 1)} / ${f(t.commitMs.p99, 1)} / ${f(t.serverLagMs.p99, 1)}`, baseline: '', target: '' });
    }
    table.add({ scenario, metric: 'bench client loop late p99 ms', server: f(r.clientLagMs.p99, 1), baseline: '', target: '' });
    table.add({ scenario, metric: 'server waited for its core, ms/s', server: f(r.serverWaitedMsPerSec, 1), baseline: '', target: '' });
    table.add({ scenario, metric: 'construct→connected p50/p95/p99 ms', server: `${f(r.latencyMs.p50)}/${f(r.latencyMs.p95)}/${f(r.latencyMs.p99)}`, baseline: '', target: '' });
    table.add({ scenario, metric: 'failed / constructs', server: `${r.failed}/${r.constructs}`, baseline: `${uac.failed}/${uac.calls}`, target: '0', pass: r.failed === 0 });
    table.add({ scenario, metric: 'server CPU % (1 core = 100)', server: f(r.serverCpuPct), baseline: '', target: '' });
  }
  table.add({ scenario: 'setup (best, no failures)', metric: 'duo_callbacks connected/s', server: f(best, 1), baseline: `${f(uac.callsPerSec / 2)} (far ends' ceiling ÷ 2)`, target: `≥ ${TARGET_SETUPS}`, pass: best >= TARGET_SETUPS });
  const [ws, http] = paths;
  if (ws && http) {
    const scenario = `construct path ${plan.pathRate}/s`;
    table.add({ scenario, metric: 'reply p50/p99 ms (server: HTTP, baseline: WS)', server: `${f(http.replyMs.p50, 1)}/${f(http.replyMs.p99, 1)}`, baseline: `${f(ws.replyMs.p50, 1)}/${f(ws.replyMs.p99, 1)}`, target: '' });
    table.add({ scenario, metric: 'server CPU % incl. the calls (HTTP / WS)', server: f(http.serverCpuPct), baseline: f(ws.serverCpuPct), target: '' });
    table.add({ scenario, metric: 'accepted / constructs', server: `${http.accepted}/${http.constructs}`, baseline: `${ws.accepted}/${ws.constructs}`, target: 'all', pass: http.accepted === http.constructs && ws.accepted === ws.constructs });
  }
  for (const { timing, server: s, baseline: b } of concurrency) {
    const scenario = `${timing.calls} bridged calls`;
    const targeted = timing.calls >= TARGET_CALLS;
    table.add({ scenario, metric: 'RTP loss % (both ways)', server: f(s.lossPct, 3), baseline: f(b.lossPct, 3), target: targeted ? `< ${TARGET_LOSS_PCT}` : '', pass: targeted ? s.lossPct < TARGET_LOSS_PCT && s.legsFlowing === 2 * timing.calls : undefined });
    table.add({ scenario, metric: 'legs with loss / worst leg %', server: `${s.legsWithLoss} / ${f(s.worstLegLossPct, 2)}`, baseline: `${b.legsWithLoss} / ${f(b.worstLegLossPct, 2)}`, target: '' });
    table.add({ scenario, metric: 'connected / legs flowing', server: `${s.connected} / ${s.legsFlowing}`, baseline: `- / ${b.legsFlowing}`, target: targeted ? `${timing.calls} / ${2 * timing.calls}` : '', pass: targeted ? s.connected === timing.calls && s.legsFlowing === 2 * timing.calls : undefined });
    table.add({ scenario, metric: 'packets/s relayed', server: f(s.packetsPerSec), baseline: f(b.packetsPerSec), target: '' });
    table.add({ scenario, metric: 'CPU % (1 core = 100)', server: f(s.cpuPct), baseline: f(b.cpuPct), target: targeted ? '< 100' : '', pass: targeted ? s.cpuPct < 100 : undefined });
  }

  addDrachtioRows(table, drachtio);
  const rows = setups.map(({ server: _server, eventArrivals: _arrivals, ...r }, i) => ({ ...r, timings: timings[i] }));
  report(table, { quick, plan, priority, serverNodeFlags, uac, setups: rows, paths, concurrency, drachtio });
}

/** `--drachtio-only`: the drachtio section alone. */
async function runDrachtioOnly(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'cti-bench-'));
  // As the full run: both systems, drachtio-server, FreeSWITCH and SIPp alike, ahead of other work on the machine.
  const priority = args['normal-priority'] ? 'normal priority' : raisePriority();
  log(`bench --drachtio-only${quick ? ' --quick' : ''} in ${dir}, ${priority}`);
  const drachtio: DrachtioSection = await drachtioSection(group, dir, drachtioPlan, log);
  const table = new Table();
  addDrachtioRows(table, drachtio);
  report(table, { quick, drachtioPlan, priority, drachtio }, '-drachtio');
}

/** Prints the table and saves it with the raw numbers under bench/results/. */
function report(table: Table, raw: Record<string, unknown>, suffix = ''): void {
  const rendered = table.render();
  console.log(`\n${rendered}\n`);
  const resultsDir = join(process.cwd(), 'bench', 'results');
  mkdirSync(resultsDir, { recursive: true });
  const file = join(resultsDir, `${new Date().toISOString().replace(/[:.]/g, '-')}${quick ? '-quick' : ''}${suffix}.json`);
  writeFileSync(file, JSON.stringify({ ...raw, machine: { cpus: cpus().map((c) => c.model), node: process.version }, table: table.rows, allPassed: table.allPassed }, null, 2));
  console.log(`${table.allPassed ? 'all targets met' : 'SOME TARGETS MISSED'}; raw numbers: ${file}`);
}

main()
  .catch((err: unknown) => {
    console.error('bench failed:', err);
    process.exitCode = 1;
  })
  .finally(async () => {
    clearTimeout(deadline);
    await cleanup();
  });
