/**
 * The drachtio-engine section of `npm run bench` (issue 11, kind 8): the bare
 * drachtio-srf + drachtio-fsmrf callback app (bareCallbackApp.ts, the
 * baseline) and the CTI server with the drachtio engine, measured in the
 * same run against one drachtio-server + FreeSWITCH (test/telephony-config,
 * started as the drachtio engine tests start them) at several offered rates.
 * SIPp (test/sipp/carrier.xml) plays both parties: party 1 answers at once,
 * party 2 answers at once and hangs up after 3 s (long enough that, even on
 * a loaded machine, its BYE never comes before the bridge: a failure after
 * party 1 answered is then always the system's own).
 *
 * Nothing is pinned to a core here: drachtio-server, FreeSWITCH, SIPp and
 * the system under test share the machine, the same way for both.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { LocalServers } from '../../test/engines/drachtio/LocalServers.js';
import { SippCarrier } from '../../test/support/sipp/SippCarrier.js';
import { CpuMeter } from '../CpuMeter.js';
import { DuoCallbackDriver, paced, percentile } from '../DuoCallbackDriver.js';
import { IpcChild, type IpcReply } from '../IpcChild.js';
import type { ProcessGroup } from '../ProcessGroup.js';
import { RpcClient } from '../RpcClient.js';
import { ServerUnderTest } from '../ServerUnderTest.js';
import type { Table } from '../Table.js';
import type { BareCallRecord } from './bareCallbackApp.js';

/** One system at one offered rate. */
export interface DrachtioRateResult {
  readonly system: 'bare app' | 'CTI server';
  readonly offeredPerSec: number;
  readonly calls: number;
  /** Constructs answered -32006/-32003 (admission control): nobody was called. */
  readonly refused: number;
  readonly connected: number;
  /** Party 1 answered, then the call failed before party 2 was connected: the failure a person notices. */
  readonly failedAfterAnswer: number;
  /** Failed before party 1 answered (nobody or only a ringing phone noticed). */
  readonly failedBeforeAnswer: number;
  /** (connected − 1) / (last connect − first connect). */
  readonly setupsPerSec: number;
  /** Call started (construct sent) → both parties bridged, ms. */
  readonly latencyMs: { readonly p50: number; readonly p95: number; readonly p99: number };
  /** CPU of the system under test (the bare app's or the CTI server's process) and of FreeSWITCH, % of one core. */
  readonly cpuPct: number;
  readonly freeswitchCpuPct: number;
  /** Up to 3 distinct failure reasons. */
  readonly reasons: readonly string[];
}

export type DrachtioSection = { readonly skipped: string } | { readonly results: readonly DrachtioRateResult[] };

export interface DrachtioPlan {
  readonly rates: readonly number[];
  readonly seconds: number;
}

/** Why the section cannot run here, or undefined when drachtio-server and FreeSWITCH are on PATH. */
export function drachtioSkipReason(): string | undefined {
  for (const bin of ['drachtio', 'freeswitch', 'sipp']) {
    try {
      execFileSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' });
    } catch {
      return `${bin} is not on PATH (the drachtio section needs drachtio-server, FreeSWITCH and SIPp)`;
    }
  }
  return undefined;
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

/** Party 2 hangs up this long after answering. */
const PARTY2_TALK_SECONDS = 3;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function drachtioSection(group: ProcessGroup, dir: string, plan: DrachtioPlan, log: (s: string) => void): Promise<DrachtioSection> {
  const skip = drachtioSkipReason();
  if (skip) return { skipped: skip };
  const servers = await LocalServers.start();
  const carrier = await SippCarrier.start({ host: '127.0.0.2', traceMessages: false, extraArgs: ['-buff_size', '8388608'], maxLifetimeSec: 3600 });
  const bare = IpcChild.start(group, 'bench/drachtio/bareCallbackApp.ts', '0,1');
  let cti: ServerUnderTest | undefined;
  try {
    const engine = servers.engineConfig();
    mkdirSync(join(dir, 'drachtio'), { recursive: true });
    await bare.request('connect', { drachtio: engine.drachtio, freeswitch: engine.freeswitch[0] });
    cti = await ServerUnderTest.start(group, {
      wsPort: await freePort(),
      httpPort: await freePort(),
      sipPort: 0,
      rtpPortMin: 0,
      rtpPortMax: 0,
      carrierHost: carrier.host,
      carrierPort: carrier.port,
      dir: join(dir, 'drachtio'),
      cpu: '0,1',
      cpuProfile: false,
      durableEvents: true,
      engine: { ...engine },
    });
    log(`drachtio: drachtio-server + FreeSWITCH in ${servers.dir}; CTI server log ${cti.logPath}`);
    // Any ear port: these calls carry no RTP to the far ends that anyone listens to.
    const ear = 9;
    // The CTI server reaches the carrier as its gateway named "carrier".
    const to1 = `sip:answer-${ear}@carrier`;
    const to2 = `sip:hangup-${PARTY2_TALK_SECONDS}-${ear}@carrier`;
    const proxy = `sip:${carrier.host}:${carrier.port}`;
    const freeswitch = new CpuMeter(Number(readFileSync(join(servers.dir, 'fs', 'run', 'freeswitch.pid'), 'utf8').trim()));
    const bareCpu = new CpuMeter(bare.pid);
    /** Runs `work`, measuring its system's CPU and FreeSWITCH's over it. */
    const measured = async (cpu: CpuMeter, work: () => Promise<Omit<DrachtioRateResult, 'cpuPct' | 'freeswitchCpuPct'>>): Promise<DrachtioRateResult> => {
      const [s0, f0] = [cpu.sample(), freeswitch.sample()];
      const r = await work();
      return print(log, { ...r, cpuPct: CpuMeter.percent(s0, cpu.sample()), freeswitchCpuPct: CpuMeter.percent(f0, freeswitch.sample()) });
    };
    const results: DrachtioRateResult[] = [];
    // Each run's calls end (party 2's BYE, endpoint teardown) after it returns: pause so they do not load the next run,
    // and alternate which system goes first so neither always starts on a rested FreeSWITCH.
    const pause = (): Promise<void> => sleep(PARTY2_TALK_SECONDS * 1000 + 5000);
    for (const [i, rate] of plan.rates.entries()) {
      const count = Math.round(rate * plan.seconds);
      const runBare = async (): Promise<void> => {
        log(`drachtio: bare app, ${rate} callbacks/s for ${plan.seconds} s`);
        const run = { rate, count, to1: carrier.uri(`answer-${ear}`), to2: carrier.uri(`hangup-${PARTY2_TALK_SECONDS}-${ear}`), proxy };
        results.push(await measured(bareCpu, async () => bareResult(rate, (await bare.request<IpcReply & { records: BareCallRecord[] }>('run', run, 120_000)).records)));
        await pause();
      };
      const runCti = async (): Promise<void> => {
        log(`drachtio: CTI server, ${rate} duo_callbacks/s for ${plan.seconds} s`);
        results.push(await measured(cti!.cpu, () => ctiRun(cti!, rate, count, to1, to2)));
        await pause();
      };
      for (const run of i % 2 === 0 ? [runBare, runCti] : [runCti, runBare]) await run();
    }
    return { results };
  } finally {
    await cti?.stop(5000).catch(() => undefined);
    await bare.close().catch(() => undefined);
    await carrier.stop().catch(() => undefined);
    await servers.stop().catch(() => undefined);
  }
}

function print(log: (s: string) => void, r: DrachtioRateResult): DrachtioRateResult {
  const f = (n: number): string => (Number.isFinite(n) ? n.toFixed(0) : '-');
  log(
    `  ${r.connected}/${r.calls} connected, ${r.setupsPerSec.toFixed(1)}/s, refused ${r.refused}, failed after answer ${r.failedAfterAnswer}, before ${r.failedBeforeAnswer}, p50/p95/p99 ${f(r.latencyMs.p50)}/${f(r.latencyMs.p95)}/${f(r.latencyMs.p99)} ms, CPU ${f(r.cpuPct)} %, FreeSWITCH ${f(r.freeswitchCpuPct)} %${r.reasons.length ? `; ${r.reasons.join(' | ')}` : ''}`,
  );
  return r;
}

type Counted = Omit<DrachtioRateResult, 'cpuPct' | 'freeswitchCpuPct'>;

function summarize(
  system: DrachtioRateResult['system'],
  offeredPerSec: number,
  calls: readonly { connected?: number; latency?: number; answered: boolean; refused: boolean; reason?: string }[],
): Counted {
  const connectTimes = calls.flatMap((c) => (c.connected === undefined ? [] : [c.connected])).sort((a, b) => a - b);
  const latencies = calls.flatMap((c) => (c.latency === undefined ? [] : [c.latency])).sort((a, b) => a - b);
  const failed = calls.filter((c) => c.connected === undefined && !c.refused);
  const span = (connectTimes[connectTimes.length - 1]! - connectTimes[0]!) / 1000;
  return {
    system,
    offeredPerSec,
    calls: calls.length,
    refused: calls.filter((c) => c.refused).length,
    connected: connectTimes.length,
    failedAfterAnswer: failed.filter((c) => c.answered).length,
    failedBeforeAnswer: failed.filter((c) => !c.answered).length,
    setupsPerSec: connectTimes.length > 1 ? (connectTimes.length - 1) / span : 0,
    latencyMs: { p50: percentile(latencies, 50), p95: percentile(latencies, 95), p99: percentile(latencies, 99) },
    // Failures after answer first, then the others, then a refusal's reason.
    reasons: [...new Set([...failed.filter((c) => c.answered), ...failed, ...calls.filter((c) => c.refused)].flatMap((c) => (c.reason ? [c.reason] : [])))].slice(0, 3),
  };
}

function bareResult(rate: number, records: readonly BareCallRecord[]): Counted {
  const start = (i: number): number => (i * 1000) / rate;
  return summarize(
    'bare app',
    rate,
    records.map((r, i) => ({
      ...(r.connectedMs === undefined ? {} : { connected: start(i) + r.connectedMs, latency: r.connectedMs }),
      answered: r.party1AnsweredMs !== undefined,
      refused: false,
      ...(r.error ? { reason: r.error } : {}),
    })),
  );
}

async function ctiRun(server: ServerUnderTest, rate: number, count: number, to1: string, to2: string): Promise<Counted> {
  const client = await RpcClient.connect(server.url);
  const driver = new DuoCallbackDriver(client);
  await paced(rate, count, () => driver.construct({ to1_uri: to1, to2_uri: to2, max_answer_seconds: 60 }));
  await driver.waitFor(() => driver.calls.every((c) => c.connectedAt !== undefined || c.releasedAt !== undefined), 60_000);
  await driver.waitFor(() => driver.released === count, 30_000);
  client.close();
  return summarize(
    'CTI server',
    rate,
    driver.calls.map((c) => {
      const error = c.error as { code?: string; rpcCode?: number; message?: string } | null | undefined;
      const refused = error?.code === 'rpc' && (error.rpcCode === -32006 || error.rpcCode === -32003);
      return {
        ...(c.connectedAt === undefined ? {} : { connected: c.connectedAt, latency: c.connectedAt - c.sentAt }),
        answered: c.party1AnsweredAt !== undefined,
        refused,
        ...(c.connectedAt !== undefined
          ? {}
          : error
            ? { reason: `${error.code}: ${error.message ?? ''}`.slice(0, 120) }
            : error === null
              ? { reason: `party 2 hung up (after ${PARTY2_TALK_SECONDS} s) before the bridge was up` }
              : {}),
      };
    }),
  );
}

/** The section's rows: per rate, both systems side by side; the knee judged against the bare app. */
export function addDrachtioRows(table: Table, section: DrachtioSection): void {
  if ('skipped' in section) {
    table.add({ scenario: 'drachtio engine', metric: 'skipped', server: section.skipped, baseline: '', target: '' });
    return;
  }
  const rates = [...new Set(section.results.map((r) => r.offeredPerSec))];
  for (const rate of rates) {
    const cti = section.results.find((r) => r.system === 'CTI server' && r.offeredPerSec === rate)!;
    const bare = section.results.find((r) => r.system === 'bare app' && r.offeredPerSec === rate)!;
    const scenario = `drachtio ${rate}/s`;
    table.add({ scenario, metric: 'callbacks connected/s', server: cti.setupsPerSec.toFixed(1), baseline: bare.setupsPerSec.toFixed(1), target: '' });
    table.add({ scenario, metric: 'connected / refused / calls', server: `${cti.connected} / ${cti.refused} / ${cti.calls}`, baseline: `${bare.connected} / - / ${bare.calls}`, target: '' });
    table.add({ scenario, metric: 'failed after party 1 answered', server: String(cti.failedAfterAnswer), baseline: String(bare.failedAfterAnswer), target: '0', pass: cti.failedAfterAnswer === 0 });
    table.add({ scenario, metric: 'start→connected p50/p95/p99 ms', server: ms(cti), baseline: ms(bare), target: '' });
    table.add({ scenario, metric: 'CPU % app / FreeSWITCH', server: `${cti.cpuPct.toFixed(0)} / ${cti.freeswitchCpuPct.toFixed(0)}`, baseline: `${bare.cpuPct.toFixed(0)} / ${bare.freeswitchCpuPct.toFixed(0)}`, target: '' });
  }
  // The knee: the bare app's best rate without failures; the CTI server at that offered rate.
  const clean = section.results.filter((r) => r.system === 'bare app' && r.failedAfterAnswer + r.failedBeforeAnswer === 0);
  const knee = clean.reduce<DrachtioRateResult | undefined>((best, r) => (!best || r.setupsPerSec > best.setupsPerSec ? r : best), undefined);
  if (knee) {
    const cti = section.results.find((r) => r.system === 'CTI server' && r.offeredPerSec === knee.offeredPerSec)!;
    const pct = (100 * cti.setupsPerSec) / knee.setupsPerSec;
    table.add({ scenario: `drachtio knee (${knee.offeredPerSec}/s)`, metric: 'CTI rate % of bare app', server: `${pct.toFixed(0)} %`, baseline: '100 %', target: '≥ 90 %', pass: pct >= 90 });
  } else {
    // Not a pass and not a miss: the run holds no rate to judge at (FreeSWITCH saturated below all of them).
    table.add({ scenario: 'drachtio knee', metric: 'CTI rate % of bare app', server: 'no knee: the bare app failed at every offered rate', baseline: '', target: 'lower --drachtio-rates' });
  }
}

function ms(r: DrachtioRateResult): string {
  const f = (n: number): string => (Number.isFinite(n) ? n.toFixed(0) : '-');
  return `${f(r.latencyMs.p50)}/${f(r.latencyMs.p95)}/${f(r.latencyMs.p99)}`;
}
