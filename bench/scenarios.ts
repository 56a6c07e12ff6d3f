/** The measurements of bench/run.ts; each returns raw numbers, run.ts judges them. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CpuMeter } from './CpuMeter.js';
import { DuoCallbackDriver, paced, percentile } from './DuoCallbackDriver.js';
import { IpcChild, type IpcReply } from './IpcChild.js';
import { monotonicMs } from '../lib/util/diagnostics.js';
import { LagSampler } from './probe/LagSampler.js';
import type { ProcessGroup } from './ProcessGroup.js';
import { RpcClient } from './RpcClient.js';
import type { ServerUnderTest } from './ServerUnderTest.js';

export const FARM_HOST = '127.0.0.3';
export const BASELINE_UAC_HOST = '127.0.0.4';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface Carrier {
  readonly host: string;
  readonly port: number;
}

// ---------------------------------------------------------------- setup rate

export interface SipBaselineResult {
  readonly offeredPerSec: number;
  readonly calls: number;
  readonly successful: number;
  readonly failed: number;
  readonly elapsedSec: number;
  readonly callsPerSec: number;
}

/** SIPp's built-in UAC straight at the carrier (answer, then BYE): what the far ends sustain without the server. */
export async function sipBaseline(group: ProcessGroup, carrier: Carrier, dir: string, o: { rate: number; seconds: number; earPort: number; cpu: string; port: number }): Promise<SipBaselineResult> {
  const calls = o.rate * o.seconds;
  const stats = join(dir, 'uac-stats.csv');
  const args = [
    '-a', '-c', o.cpu, 'timeout', '-k', '2', String(o.seconds * 4 + 20), 'sipp',
    '-sn', 'uac', '-s', `answer-${o.earPort}`, `${carrier.host}:${carrier.port}`,
    '-i', BASELINE_UAC_HOST, '-p', String(o.port), '-r', String(o.rate), '-m', String(calls), '-l', String(o.rate * 5),
    '-buff_size', '8388608', '-nostdin', '-trace_stat', '-stf', stats, '-fd', '1', '-timeout', String(o.seconds * 4 + 10),
  ];
  const child = group.spawn('taskset', args, { cwd: dir, stdio: 'ignore' });
  await new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const lines = readFileSync(stats, 'utf8').trim().split('\n');
  const header = lines[0]!.split(';');
  const last = lines[lines.length - 1]!.split(';');
  const col = (name: string): string => last[header.indexOf(name)] ?? '';
  const successful = Number(col('SuccessfulCall(C)'));
  const failed = Number(col('FailedCall(C)'));
  const elapsedSec = hms(col('ElapsedTime(C)'));
  return { offeredPerSec: o.rate, calls, successful, failed, elapsedSec, callsPerSec: successful / elapsedSec };
}

/** SIPp's "HH:MM:SS:uuuuuu" (or with a dot before the fraction). */
function hms(s: string): number {
  const [h, m, sec, frac] = s.split(/[:.]/).map(Number);
  return h! * 3600 + m! * 60 + sec! + (frac ?? 0) / 10 ** ((s.split(/[:.]/)[3] ?? '').length || 1);
}

export interface SetupRateResult {
  readonly offeredPerSec: number;
  readonly constructs: number;
  readonly connected: number;
  readonly failed: number;
  readonly failures: readonly unknown[];
  /** (connected − 1) / (last connect − first connect): completions per second. */
  readonly setupsPerSec: number;
  readonly latencyMs: Percentiles;
  /** construct sent → its reply (the resource's row is committed first when events are durable). */
  readonly replyMs: Percentiles;
  readonly serverCpuPct: number;
  /** Milliseconds per second the server's event loop waited for its core (other processes had it). */
  readonly serverWaitedMsPerSec: number;
  /** The row's span on the host-wide monotonic clock: first construct → every call connected or released. */
  readonly window: { readonly from: number; readonly to: number };
  /** [event_id, arrival at this client] of every event of the row (joined with the server probe's commit times). */
  readonly eventArrivals: ReadonlyArray<readonly [number, number]>;
  /** How late this client's own event loop ran during the row (is the measurement itself late?). */
  readonly clientLagMs: Percentiles;
}

export interface Percentiles {
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  readonly max: number;
}

export function percentiles(sorted: readonly number[]): Percentiles {
  return { p50: percentile(sorted, 50), p95: percentile(sorted, 95), p99: percentile(sorted, 99), max: sorted[sorted.length - 1] ?? NaN };
}

/**
 * duo_callbacks at `rate`/s for `seconds`: both parties answer, party 2 hangs
 * up after 1 s. Measures construct → `connected`, failures and server CPU.
 */
export async function setupRate(server: ServerUnderTest, o: { rate: number; seconds: number; earPort: number }): Promise<SetupRateResult> {
  const client = await RpcClient.connect(server.url);
  const driver = new DuoCallbackDriver(client);
  const n = Math.round(o.rate * o.seconds);
  const lag: number[] = [];
  const sampler = new LagSampler(monotonicMs, (_at, late) => lag.push(late));
  sampler.start();
  const from = monotonicMs();
  const cpu0 = server.cpu.sample();
  await paced(o.rate, n, () =>
    driver.construct({ to1_uri: `sip:answer-${o.earPort}@carrier`, to2_uri: `sip:hangup-1-${o.earPort}@carrier`, max_answer_seconds: 60 }),
  );
  await driver.waitFor(() => driver.calls.every((c) => c.connectedAt !== undefined || c.releasedAt !== undefined), 20_000);
  const cpu1 = server.cpu.sample();
  const to = monotonicMs();
  sampler.stop();
  await driver.waitFor(() => driver.released === n, 20_000);
  client.close();
  const connectTimes = driver.calls.flatMap((c) => (c.connectedAt === undefined ? [] : [c.connectedAt])).sort((a, b) => a - b);
  const latencies = driver.calls.flatMap((c) => (c.connectedAt === undefined ? [] : [c.connectedAt - c.sentAt])).sort((a, b) => a - b);
  const replies = driver.calls.flatMap((c) => (c.repliedAt === undefined ? [] : [c.repliedAt - c.sentAt])).sort((a, b) => a - b);
  const span = (connectTimes[connectTimes.length - 1]! - connectTimes[0]!) / 1000;
  const failed = driver.failed;
  return {
    offeredPerSec: o.rate,
    constructs: n,
    connected: connectTimes.length,
    failed: failed.length + (n - driver.released),
    failures: failed.slice(0, 5).map((c) => c.error),
    setupsPerSec: connectTimes.length > 1 ? (connectTimes.length - 1) / span : 0,
    latencyMs: percentiles(latencies),
    replyMs: percentiles(replies),
    serverCpuPct: CpuMeter.percent(cpu0, cpu1),
    serverWaitedMsPerSec: CpuMeter.waitedMsPerSec(cpu0, cpu1),
    window: { from, to },
    eventArrivals: driver.eventArrivals,
    clientLagMs: percentiles(lag.sort((a, b) => a - b)),
  };
}

// ---------------------------------------------------------------- concurrency

interface FarmReport extends IpcReply {
  readonly expected: number;
  readonly received: number;
  readonly legsWithLoss: number;
  readonly worstLegLossPct: number;
  readonly windowMs: number;
  readonly legs: number;
}

interface FarmStatus extends IpcReply {
  readonly legs: number;
  readonly latched: number;
  readonly flowing: number;
}

export interface ConcurrencyResult {
  readonly calls: number;
  /** Calls connected when the window opened / legs hearing their peer. */
  readonly connected: number;
  readonly legsFlowing: number;
  readonly failed: number;
  readonly lossPct: number;
  readonly legsWithLoss: number;
  readonly worstLegLossPct: number;
  readonly packetsPerSec: number;
  readonly cpuPct: number;
  readonly windowSec: number;
}

export interface ConcurrencyTiming {
  readonly calls: number;
  readonly rampPerSec: number;
  readonly warmupSec: number;
  readonly holdSec: number;
}

/** Opens the window, holds it, closes it, and reads the farm's counts once late packets had time to land. */
async function measureWindow(farm: IpcChild, cpu: CpuMeter, holdSec: number): Promise<{ report: FarmReport; cpuPct: number }> {
  await farm.request('mark');
  const cpu0 = cpu.sample();
  await sleep(holdSec * 1000);
  await farm.request('markEnd');
  const cpu1 = cpu.sample();
  await sleep(1000);
  return { report: await farm.request<FarmReport>('report'), cpuPct: CpuMeter.percent(cpu0, cpu1) };
}

function result(calls: number, connected: number, failed: number, status: FarmStatus, m: { report: FarmReport; cpuPct: number }): ConcurrencyResult {
  const r = m.report;
  return {
    calls,
    connected,
    legsFlowing: status.flowing,
    failed,
    lossPct: r.expected === 0 ? 100 : (100 * (r.expected - r.received)) / r.expected,
    legsWithLoss: r.legsWithLoss,
    worstLegLossPct: r.worstLegLossPct,
    packetsPerSec: r.received / (r.windowMs / 1000),
    cpuPct: m.cpuPct,
    windowSec: r.windowMs / 1000,
  };
}

/**
 * N bridged duo_callbacks through the server with RTP both ways. Party 1
 * answers at once; party 2 rings 0.5 s first, so party 1 hears the server's
 * ringback: the farm latches to where that comes from (symmetric RTP) and
 * starts talking, and party 2's leg latches on the first relayed packet.
 */
export async function serverConcurrency(group: ProcessGroup, server: ServerUnderTest, t: ConcurrencyTiming, farmCpu: string): Promise<ConcurrencyResult> {
  const farm = IpcChild.start(group, 'bench/farm/main.ts', farmCpu);
  const client = await RpcClient.connect(server.url);
  try {
    const { ports } = await farm.request<IpcReply & { ports: number[] }>('open', { pairs: t.calls, host: FARM_HOST, symmetric: true });
    await farm.request('start');
    const driver = new DuoCallbackDriver(client);
    const rampSec = t.calls / t.rampPerSec;
    // Every call ends by itself (max_answer_seconds) a little after the window closes.
    const endAt = performance.now() + (rampSec + 5 + t.warmupSec + t.holdSec + 3) * 1000;
    await paced(t.rampPerSec, t.calls, (i) =>
      driver.construct({
        to1_uri: `sip:answer-${ports[2 * i]}@carrier`,
        to2_uri: `sip:ringans-0.5-${ports[2 * i + 1]}@carrier`,
        max_answer_seconds: Math.ceil((endAt - performance.now()) / 1000),
      }),
    );
    await driver.waitFor(() => driver.calls.every((c) => c.connectedAt !== undefined || c.releasedAt !== undefined), 5000);
    const flowing = async (): Promise<boolean> => (await farm.request<FarmStatus>('status')).flowing === 2 * t.calls;
    for (let i = 0; i < 20 && !(await flowing()); i++) await sleep(100);
    await sleep(t.warmupSec * 1000);
    const status = await farm.request<FarmStatus>('status');
    const connected = driver.connected;
    const m = await measureWindow(farm, server.cpu, t.holdSec);
    const failedInWindow = driver.failed.length;
    await driver.waitFor(() => driver.released === t.calls, 15_000);
    return result(t.calls, connected, failedInWindow, status, m);
  } finally {
    client.close();
    await farm.close();
  }
}

/** The same phone farm through a bare two-socket relay per call (the baseline), pinned like the server. */
export async function relayConcurrency(group: ProcessGroup, t: ConcurrencyTiming, relayCpu: string, farmCpu: string): Promise<ConcurrencyResult> {
  const relay = IpcChild.start(group, 'bench/relay/main.ts', relayCpu);
  const farm = IpcChild.start(group, 'bench/farm/main.ts', farmCpu);
  try {
    const { ports: relayPorts } = await relay.request<IpcReply & { ports: number[] }>('open', { pairs: t.calls, host: '127.0.0.1' });
    await farm.request('open', { pairs: t.calls, host: FARM_HOST, symmetric: false });
    await farm.request('targets', { targets: relayPorts.map((port) => ({ address: '127.0.0.1', port })) });
    await farm.request('start');
    for (let i = 0; i < 30 && (await farm.request<FarmStatus>('status')).flowing < 2 * t.calls; i++) await sleep(100);
    await sleep(t.warmupSec * 1000);
    const status = await farm.request<FarmStatus>('status');
    const m = await measureWindow(farm, new CpuMeter(relay.pid), t.holdSec);
    return result(t.calls, t.calls, 0, status, m);
  } finally {
    await farm.close();
    await relay.close();
  }
}

// ---------------------------------------------------------------- construct path: WebSocket vs HTTP

export interface ConstructPathResult {
  readonly api: 'ws' | 'http';
  readonly offeredPerSec: number;
  readonly constructs: number;
  readonly accepted: number;
  readonly released: number;
  /** Request sent → construct reply received. */
  readonly replyMs: { readonly p50: number; readonly p99: number; readonly max: number };
  readonly serverCpuPct: number;
}

/**
 * The same duo_callbacks as `setupRate` (both answer, party 2 hangs up after
 * 1 s) constructed over the WebSocket API or the HTTP API (one keep-alive
 * client, fetch): what the transport adds to a construct, reply latency and
 * server CPU, with identical call work behind it. Releases are counted through
 * a WebSocket subscription (HTTP has no event channel of its own yet).
 */
export async function constructPath(server: ServerUnderTest, o: { api: 'ws' | 'http'; rate: number; seconds: number; earPort: number }): Promise<ConstructPathResult> {
  const watcher = await RpcClient.connect(server.url);
  let released = 0;
  watcher.onNotification = (method) => {
    if (method === 'ext.duo_callback.on_released') released++;
  };
  await watcher.call('sys.subscribe', { class: 'ext.duo_callback', event: 'on_released' });
  const client = o.api === 'ws' ? await RpcClient.connect(server.url) : undefined;
  const n = Math.round(o.rate * o.seconds);
  const params = { to1: `sip:answer-${o.earPort}@carrier`, to2: `sip:hangup-1-${o.earPort}@carrier`, max_call_duration: 60 };
  const replies: number[] = [];
  let accepted = 0;
  const pending: Promise<void>[] = [];
  const cpu0 = server.cpu.sample();
  await paced(o.rate, n, () => {
    const sentAt = performance.now();
    const reply =
      client !== undefined
        ? client.call('ext.duo_callback.construct', { to1_uri: params.to1, to2_uri: params.to2, max_answer_seconds: params.max_call_duration }).then(() => true)
        : fetch(`${server.httpUrl}/account/default/call/duo_callback`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(params) }).then(async (r) => {
            await r.arrayBuffer();
            return r.ok;
          });
    pending.push(
      reply.then(
        (ok) => {
          replies.push(performance.now() - sentAt);
          if (ok) accepted++;
        },
        () => undefined,
      ),
    );
  });
  await Promise.all(pending);
  const until = performance.now() + 20_000;
  while (released < accepted && performance.now() < until) await sleep(50);
  const cpu1 = server.cpu.sample();
  client?.close();
  watcher.close();
  replies.sort((a, b) => a - b);
  return {
    api: o.api,
    offeredPerSec: o.rate,
    constructs: n,
    accepted,
    released,
    replyMs: { p50: percentile(replies, 50), p99: percentile(replies, 99), max: replies[replies.length - 1] ?? NaN },
    serverCpuPct: CpuMeter.percent(cpu0, cpu1),
  };
}
