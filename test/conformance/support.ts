// Shared fixture of the conformance suite: per test, SIPp carrier(s) as the far
// ends, the target's engine under the real CtiServer, a WebSocket client that
// timestamps every event, and RTP ears; plus the checks every flow ends with.
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TAP, Test } from 'tap';
import { RpcContract } from '../../lib/api/RpcContract.js';
import type { GatewayConfig } from '../../lib/config/ServerConfig.js';
import type { TelephonyEngine } from '../../lib/telephony/TelephonyEngine.js';
import { goertzelPower, rms } from '../support/audio/signal.js';
import { encodeWav } from '../support/audio/wav.js';
import { RpcTestClient, type RpcMessage } from '../support/RpcTestClient.js';
import { RtpEar, type RtpPacket } from '../support/sipp/RtpEar.js';
import { SippCarrier } from '../support/sipp/SippCarrier.js';
import { startTestServer, type TestServer } from '../support/startTestServer.js';
import { isSkip, selectedTargets, targetLogger, type EngineTarget, type EngineTuning } from './targets.js';
import { decodeAlaw, decodeUlaw } from '../support/audio/g711.js';
import { concatSamples, silence, toneSamples } from '../support/audio/signal.js';

export const contract = new RpcContract();

/** Tones used across the suite: each source of audio has its own frequency. */
export const TONE = {
  prompt: 1000,
  ringFile: 600,
  /** The carrier's early media (party 2's ringback in early-<secs>-<ear>). */
  early: 440,
  party1Talks: 1300,
  party2Talks: 900,
  /** The server's own ringback tone (440 + 480 Hz), reported as one value. */
  ringback: 460,
} as const;
const ALL_TONES = [TONE.prompt, TONE.ringFile, TONE.early, TONE.party1Talks, TONE.party2Talks];

export const PROMPT_TONE_MS = 300;
export const PROMPT_GAP_MS = 500;
export const RING_FILE_MS = 800;
/** Seconds of early media of the carrier's `early-<secs>-<ear>` users in the duo_callback flows. */
export const EARLY_SECS = 1.5;

/** Media files every test server gets (8 kHz mono 16-bit PCM). */
export const MEDIA: Record<string, Buffer> = {
  // One burst per play: 300 ms of 1 kHz then 500 ms of silence.
  'prompt.wav': encodeWav({ format: 'pcm16', samples: concatSamples(toneSamples(TONE.prompt, PROMPT_TONE_MS), silence(PROMPT_GAP_MS)) }),
  // The ring file: a steady tone, so a loop of it is one continuous sound.
  'ring.wav': encodeWav({ format: 'pcm16', samples: toneSamples(TONE.ringFile, RING_FILE_MS) }),
  // 10 s of silence: repeated, it keeps a notify_call up for minutes (session timer tests).
  'silence.wav': encodeWav({ format: 'pcm16', samples: silence(10_000) }),
};

export const CARRIER_AUTH = { user: 'carrier', password: 'secret' };

// ---------------------------------------------------------------- SIP log of the carrier

export interface LoggedSip {
  /** Epoch ms (SIPp's local timestamp). */
  at: number;
  direction: 'received' | 'sent';
  firstLine: string;
  method: string;
  status: number | undefined;
  callId: string;
  /** The To header's tag (the far end's dialog tag, or ours on a request from it), '' when none. */
  toTag: string;
  /** The CSeq number (a response's is its request's). */
  cseq: number;
  /** The start line and header block, LF line ends. */
  head: string;
  body: string;
}

/** Parses SIPp's -trace_msg file into messages. */
export function parseMessagesLog(text: string): LoggedSip[] {
  const out: LoggedSip[] = [];
  const blocks = text.split(/^-{20,} (\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d\.\d+)\s*$/m);
  for (let i = 1; i + 2 < blocks.length + 1; i += 3) {
    const [date, time, rest = ''] = [blocks[i], blocks[i + 1], blocks[i + 2]];
    const m = /^\s*(UDP|TCP|TLS) message (received|sent)[^\n]*\n\s*\n([\s\S]*)$/i.exec(rest);
    if (!m) continue;
    const msg = m[3]!.replace(/\r\n/g, '\n');
    const split = msg.indexOf('\n\n');
    const head = split >= 0 ? msg.slice(0, split) : msg;
    const body = split >= 0 ? msg.slice(split + 2).trim() : '';
    const firstLine = head.split('\n')[0]!.trim();
    const status = /^SIP\/2\.0 (\d{3})/.exec(firstLine)?.[1];
    const cseqMethod = /^(?:CSeq|cseq):\s*\d+\s+(\S+)/im.exec(head)?.[1] ?? '';
    out.push({
      at: new Date(`${date}T${time!.slice(0, 8)}`).getTime() + Number(`0.${time!.slice(9)}`) * 1000,
      direction: m[2]!.toLowerCase() as 'received' | 'sent',
      firstLine,
      method: status ? cseqMethod : firstLine.split(' ')[0]!,
      status: status ? Number(status) : undefined,
      callId: /^(?:Call-ID|i):\s*(\S+)/im.exec(head)?.[1] ?? '',
      toTag: /^(?:To|t):.*;\s*tag=([^;\s>]+)/im.exec(head)?.[1] ?? '',
      cseq: Number(/^CSeq:\s*(\d+)/im.exec(head)?.[1] ?? 0),
      head,
      body,
    });
  }
  return out;
}

/** What the carrier saw of the call(s) to one user part. */
export class CarrierCall {
  constructor(
    readonly user: string,
    readonly messages: LoggedSip[],
  ) {}

  get invite(): LoggedSip | undefined {
    return this.messages.find((m) => m.direction === 'received' && m.method === 'INVITE' && m.status === undefined);
  }

  received(method: string): LoggedSip[] {
    return this.messages.filter((m) => m.direction === 'received' && m.status === undefined && m.method === method);
  }

  sentStatuses(): number[] {
    return this.messages.filter((m) => m.direction === 'sent' && m.status !== undefined).map((m) => m.status!);
  }

  /** The media address the server offered in its INVITE (where to talk to it). */
  offer(): { address: string; port: number } | undefined {
    const sdp = this.invite?.body ?? '';
    const address = /^c=IN IP4 (\S+)/m.exec(sdp)?.[1];
    const port = /^m=audio (\d+)/m.exec(sdp)?.[1];
    return address && port ? { address, port: Number(port) } : undefined;
  }
}

/** The messages of every dialog whose INVITE went to `user` (all Call-IDs). */
export async function carrierCall(carrier: SippCarrier, user: string): Promise<CarrierCall> {
  const all = parseMessagesLog(await carrier.messages());
  const ids = new Set(
    all.filter((m) => m.direction === 'received' && m.method === 'INVITE' && m.status === undefined && m.firstLine.startsWith(`INVITE sip:${user}@`)).map((m) => m.callId),
  );
  return new CarrierCall(user, all.filter((m) => ids.has(m.callId)));
}

/**
 * Waits (bounded) until what the carrier saw of `user` satisfies `ok`; returns
 * the last view either way. Hang-ups may reach the carrier a moment after on_released.
 */
export async function carrierCallWhen(carrier: SippCarrier, user: string, ok: (c: CarrierCall) => boolean, ms = 5000): Promise<CarrierCall> {
  const deadline = Date.now() + ms;
  for (;;) {
    const call = await carrierCall(carrier, user);
    if (ok(call) || Date.now() > deadline) return call;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The number of `method` requests the carrier received for `user`, once at least `n` arrived (or after ms). */
export async function receivedCount(carrier: SippCarrier, user: string, method: string, n = 1, ms = 5000): Promise<number> {
  return (await carrierCallWhen(carrier, user, (c) => c.received(method).length >= n, ms)).received(method).length;
}

// ---------------------------------------------------------------- audio analysis

function decode(p: RtpPacket): Int16Array {
  return p.payloadType === 8 ? decodeAlaw(p.payload) : decodeUlaw(p.payload);
}

/** The suite tone a 20 ms packet carries, or 0 for silence / none of them. */
export function toneOf(p: RtpPacket, silenceRms = 200): number {
  if (p.payloadType !== 0 && p.payloadType !== 8) return 0;
  const pcm = decode(p);
  if (rms(pcm) < silenceRms) return 0;
  // 440 and 480 Hz sit under one 50 Hz Goertzel bin of a 20 ms frame and beat
  // within it, so the pair counts as ringback when each holds a fair share;
  // a pure 440 Hz tone leaks only ~5 % into 480.
  const [p440, p480] = [goertzelPower(pcm, 440), goertzelPower(pcm, 480)];
  const others = ALL_TONES.filter((f) => f !== 440).reduce((sum, f) => sum + goertzelPower(pcm, f), 0);
  const pair = p440 + p480;
  if (pair > 2 * others && Math.min(p440, p480) / pair > 0.2) return TONE.ringback;
  let best = 0;
  let bestPower = 0;
  let total = 0;
  for (const f of ALL_TONES) {
    const power = goertzelPower(pcm, f);
    total += power;
    if (power > bestPower) {
      bestPower = power;
      best = f;
    }
  }
  return total > 0 && bestPower / total > 0.5 ? best : -1;
}

export interface Hearing {
  /** Packets received in the window. */
  packets: number;
  /** Sounding packets per tone (-1: sound that is none of the suite's tones). */
  tones: Record<number, number>;
  /** Milliseconds of sound heard. */
  soundMs: number;
  /** The tone of most sounding packets (0 when silent). */
  main: number;
  /** Share of sounding packets that carry `main`. */
  purity: number;
}

/** What an ear heard in [t0, t1) (epoch ms). */
export function hearing(ear: RtpEar, t0: number, t1: number): Hearing {
  const packets = ear.packetsBetween(t0, t1);
  const tones: Record<number, number> = {};
  let sounding = 0;
  for (const p of packets) {
    const tone = toneOf(p);
    if (tone === 0) continue;
    sounding++;
    tones[tone] = (tones[tone] ?? 0) + 1;
  }
  const [main = 0, count = 0] = Object.entries(tones).map(([k, v]) => [Number(k), v] as const).sort((a, b) => b[1] - a[1])[0] ?? [];
  return { packets: packets.length, tones, soundMs: sounding * 20, main, purity: sounding ? count / sounding : 0 };
}

export const describeHearing = (h: Hearing): string =>
  `${h.packets} packets, ${h.soundMs} ms of sound, tones ${JSON.stringify(h.tones)}`;

// ---------------------------------------------------------------- the fixture

export interface TimedEvent {
  at: number;
  method: string;
  params: Record<string, unknown>;
}

export interface SetupOptions {
  /** Start a second carrier on TCP, reachable as gateway `carrier-tcp`. */
  tcp?: boolean;
  /** More server env (limits etc.). */
  env?: Record<string, string>;
  /** Engine settings beyond the target's defaults. */
  tuning?: EngineTuning;
}

export interface Fixture {
  readonly target: string;
  readonly carrier: SippCarrier;
  readonly tcpCarrier: SippCarrier | undefined;
  readonly ts: TestServer<TelephonyEngine>;
  readonly client: RpcTestClient;
  /** Every notification with its arrival time (RtpEar.now() clock). */
  readonly events: TimedEvent[];
  /** A fresh ear on an OS-chosen port, closed with the test. */
  ear(): Promise<RtpEar>;
  construct(method: 'ext.notify_call.construct' | 'ext.duo_callback.construct', params: unknown): Promise<string>;
  /** The first event of resId matching, waiting up to ms. */
  waitEvent(resId: string, match: (e: TimedEvent) => boolean, ms?: number, what?: string): Promise<TimedEvent>;
  released(resId: string, ms?: number): Promise<TimedEvent>;
  progress(resId: string, progress: string, party?: number, ms?: number): Promise<TimedEvent>;
  resourceEvents(resId: string): TimedEvent[];
}

/** Gateways of every test server; all but carrier-tcp point at the UDP carrier. */
function gatewaysFor(carrier: SippCarrier, tcp: SippCarrier | undefined): GatewayConfig[] {
  const base = { host: carrier.host, port: carrier.port, transport: 'udp' as const, maxConcurrentCalls: 50 };
  const gws: GatewayConfig[] = [
    { ...base, name: 'carrier', callerId: 'sip:075500000001@cti.test' },
    { ...base, name: 'carrier-auth', callerId: 'sip:075500000002@cti.test', username: CARRIER_AUTH.user, password: CARRIER_AUTH.password },
    { ...base, name: 'carrier-badauth', callerId: 'sip:075500000003@cti.test', username: CARRIER_AUTH.user, password: 'wrong' },
    { ...base, name: 'carrier-small', callerId: 'sip:075500000004@cti.test', maxConcurrentCalls: 1 },
  ];
  if (tcp) gws.push({ host: tcp.host, port: tcp.port, transport: 'tcp', maxConcurrentCalls: 50, name: 'carrier-tcp', callerId: 'sip:075500000005@cti.test' });
  return gws;
}

export async function setup(t: Test, target: EngineTarget, opts: SetupOptions = {}): Promise<Fixture | undefined> {
  const early = await target.unavailable?.();
  if (early) {
    t.pass(`${target.name} target skipped`, { skip: early });
    return undefined;
  }
  const carrier = await SippCarrier.start({ earlyToneHz: TONE.early });
  t.teardown(() => carrier.stop());
  let tcpCarrier: SippCarrier | undefined;
  if (opts.tcp) {
    tcpCarrier = await SippCarrier.start({ transport: 'tcp', earlyToneHz: TONE.early });
    t.teardown(() => tcpCarrier!.stop());
  }
  const root = mkdtempSync(join(tmpdir(), `cti-conformance-${target.name}-`));
  const mediaDir = join(root, 'media');
  const recordingsDir = join(root, 'recordings');
  mkdirSync(mediaDir, { recursive: true });
  mkdirSync(recordingsDir, { recursive: true });
  const gateways = gatewaysFor(carrier, tcpCarrier);
  const log = targetLogger();
  const prepared = await target.prepare({ gateways, mediaDir, recordingsDir, log, ...(opts.tuning ? { tuning: opts.tuning } : {}) });
  if (isSkip(prepared)) {
    t.pass(`${target.name} target skipped`, { skip: prepared.skip });
    return undefined;
  }
  const ts = await startTestServer({
    engine: prepared.engine,
    media: MEDIA,
    env: {
      CTI_MEDIA_DIR: mediaDir,
      CTI_RECORDINGS_DIR: recordingsDir,
      CTI_GATEWAYS: JSON.stringify(gateways),
      CTI_DEFAULT_GATEWAY: 'carrier',
      CTI_LIMITS__DIAL_TIMEOUT_SECONDS: '5',
      CTI_SHUTDOWN_GRACE_SECONDS: '3',
      ...prepared.env,
      ...opts.env,
    },
  });
  const client = await ts.connect();
  // Registered in this order, torn down in reverse: client, server (+engine), then the carriers.
  t.teardown(() => ts.stop());
  t.teardown(() => client.close());
  const events: TimedEvent[] = [];
  client.socket.on('message', (data) => {
    const m = JSON.parse(data.toString()) as RpcMessage;
    if (!Array.isArray(m) && m.method && m.id === undefined) events.push({ at: RtpEar.now(), method: m.method, params: m.params ?? {} });
  });
  t.comment(`target ${target.name}: carrier ${carrier.uri('x')}, logs in ${carrier.logDir}`);

  const forRes = (resId: string): TimedEvent[] => events.filter((e) => e.params.res_id === resId);
  const waitEvent: Fixture['waitEvent'] = async (resId, match, ms = 10_000, what = 'event') => {
    try {
      return await client.until(() => forRes(resId).find(match), ms);
    } catch {
      throw new Error(`no ${what} for ${resId} within ${ms} ms; got ${JSON.stringify(forRes(resId).map((e) => [e.method, e.params.progress ?? e.params.error]))}`);
    }
  };
  return {
    target: target.name,
    carrier,
    tcpCarrier,
    ts,
    client,
    events,
    async ear() {
      const ear = await RtpEar.open();
      t.teardown(() => ear.close());
      return ear;
    },
    async construct(method, params) {
      const reply = await client.call(method, params);
      if (reply.error) throw new Error(`${method} failed: ${JSON.stringify(reply.error)}`);
      const result = reply.result as { res_id: string };
      return result.res_id;
    },
    waitEvent,
    released: (resId, ms = 15_000) => waitEvent(resId, (e) => e.method.endsWith('.on_released'), ms, 'on_released'),
    progress: (resId, progress, party = 1, ms = 10_000) =>
      waitEvent(resId, (e) => e.method.endsWith('.on_progress') && e.params.progress === progress && e.params.party === party, ms, `${progress} of party ${party}`),
    resourceEvents: forRes,
  };
}

let disposing = false;

/**
 * Runs `body` once per selected target as a subtest named `<target>: <name>`.
 * `knownFailures` names targets known to fail the flow, with the reason: their
 * subtest still runs and reports each failure, as TODO (tap does not count it).
 */
export function forEachTarget(
  t: TAP,
  name: string,
  body: (t: Test, target: EngineTarget) => Promise<void>,
  knownFailures: Readonly<Record<string, string>> = {},
): void {
  if (!disposing) {
    disposing = true;
    t.teardown(async () => {
      for (const target of selectedTargets()) await target.dispose?.();
    });
  }
  for (const target of selectedTargets()) {
    const todo = knownFailures[target.name];
    void t.test(`${target.name}: ${name}`, todo ? { todo } : {}, (tt) => body(tt, target));
  }
}

// ---------------------------------------------------------------- checks every flow ends with

type ProgressParams = { progress: string; party: number; state: string; time: number; sip_status: number | null };

/** Expected resource state carried by a progress event. */
function expectedState(cls: string, p: ProgressParams): string {
  if (cls === 'ext.notify_call') return p.progress === 'answered' || p.progress === 'dtmf' ? 'Answered' : 'Initiated';
  if (p.progress === 'connected' || p.progress === 'countdown') return 'Connected';
  if (p.party === 1) return p.progress === 'answered' ? 'Answer1' : 'Initiated';
  return p.progress === 'answered' ? 'Answer2' : 'Answer1';
}

/** Problems with the order and content of one resource's progress events (empty = sane). */
export function progressProblems(cls: string, events: TimedEvent[]): string[] {
  const problems: string[] = [];
  const seen: Array<{ progress: string; party: number }> = [];
  let lastTime = 0;
  const has = (progress: string, party: number): boolean => seen.some((s) => s.progress === progress && s.party === party);
  for (const e of events) {
    const p = e.params as unknown as ProgressParams;
    const label = `${p.progress}#${p.party}`;
    if (p.time < lastTime) problems.push(`${label}: time goes back (${p.time} < ${lastTime})`);
    lastTime = p.time;
    if (p.state !== expectedState(cls, p)) problems.push(`${label}: state ${p.state}, expected ${expectedState(cls, p)}`);
    if (cls === 'ext.notify_call' && p.party !== 1) problems.push(`${label}: notify_call has one party`);
    if (p.progress === 'countdown') {
      if (cls !== 'ext.duo_callback') problems.push('countdown on a notify_call');
      if (!has('connected', 2)) problems.push('countdown before connected');
      if (has('countdown', 2)) problems.push('countdown twice');
    } else if (p.progress === 'dtmf') {
      if (cls !== 'ext.notify_call') problems.push('dtmf on a duo_callback');
      if (!has('answered', p.party)) problems.push('dtmf before answered');
    } else if (p.progress === 'connected') {
      if (cls !== 'ext.duo_callback') problems.push('connected on a notify_call');
      if (!has('answered', 2)) problems.push('connected before party 2 answered');
      if (has('connected', 2)) problems.push('connected twice');
    } else {
      if (p.progress === 'dialing') {
        if (has('dialing', p.party)) problems.push(`${label}: dialled twice`);
        if (p.party === 2 && !has('answered', 1)) problems.push('party 2 dialled before party 1 answered');
        if (p.sip_status !== null) problems.push(`${label}: sip_status ${p.sip_status}, expected null`);
      } else {
        if (!has('dialing', p.party)) problems.push(`${label}: before dialing`);
        if (has('answered', p.party)) problems.push(`${label}: after answered`);
      }
      if (p.progress === 'answered' && p.sip_status !== 200) problems.push(`${label}: sip_status ${p.sip_status}`);
      if ((p.progress === 'ringing' || p.progress === 'early_media') && !(p.sip_status! >= 180 && p.sip_status! < 200)) {
        problems.push(`${label}: sip_status ${p.sip_status}`);
      }
      if (p.progress === 'redirected' && !(p.sip_status! >= 300 && p.sip_status! < 400)) problems.push(`${label}: sip_status ${p.sip_status}`);
    }
    seen.push({ progress: p.progress, party: p.party });
  }
  return problems;
}

/**
 * What every flow ends with: exactly one on_released, last, valid against the
 * schema; every progress event valid and in a sane order; user_data carried;
 * times consistent; the registry empty. Returns the on_released params.
 */
export async function checkResource(t: Test, fx: Fixture, resId: string, userData: string | null): Promise<Record<string, unknown>> {
  const cls = resId.includes('ext.duo_callback') ? 'ext.duo_callback' : 'ext.notify_call';
  await fx.released(resId);
  const events = fx.resourceEvents(resId);
  const released = events.filter((e) => e.method === `${cls}.on_released`);
  t.equal(released.length, 1, 'exactly one on_released');
  t.equal(events.at(-1)?.method, `${cls}.on_released`, 'on_released is the last event');
  const progress = events.filter((e) => e.method === `${cls}.on_progress`);
  t.equal(progress.length + released.length, events.length, 'only on_progress and on_released events');
  for (const e of events) {
    t.same(contract.eventProblems(e.method, e.params), [], `${e.method} ${String(e.params.progress ?? '')} matches the schema`);
    t.equal(e.params.user_data, userData, `${e.method} carries user_data`);
  }
  t.same(progressProblems(cls, progress), [], `progress order: ${progress.map((e) => `${String(e.params.progress)}#${String(e.params.party)}`).join(' ')}`);
  const r = released[0]!.params as Record<string, number | null>;
  const order = [r.begin_time, r.answer_time, r.connect_time, r.end_time].filter((x): x is number => typeof x === 'number');
  t.ok(order.every((x, i) => i === 0 || x >= order[i - 1]!), `begin ≤ answer ≤ connect ≤ end: ${JSON.stringify(order)}`);
  for (const e of progress) {
    const time = e.params.time as number;
    t.ok(time >= r.begin_time! && time <= r.end_time!, `progress time ${time} within [begin, end]`);
  }
  t.equal(fx.ts.server.registry.get(resId, fx.ts.accountId), undefined, 'the registry forgot it');
  t.equal((await fx.client.call('sys.resource.exists', [resId])).result, false, 'sys.resource.exists is false');
  return released[0]!.params;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * The end of every flow: the server's registry is empty, and each carrier
 * saw the given number of calls, none left up, none failed.
 */
export async function checkEnd(t: Test, fx: Fixture, calls: number, tcpCalls?: number): Promise<void> {
  t.equal(fx.ts.server.registry.size, 0, 'server registry is empty');
  await checkIdleCarrier(t, fx.carrier, calls);
  if (fx.tcpCarrier) await checkIdleCarrier(t, fx.tcpCarrier, tcpCalls ?? 0);
}

/**
 * No call left up at the carrier: waits (bounded) until SIPp counts `calls`
 * dialogs and none current, then stops it for exact final counters.
 */
async function checkIdleCarrier(t: Test, carrier: SippCarrier, calls: number, ms = 6000): Promise<void> {
  const deadline = Date.now() + ms;
  let stats = await carrier.stats();
  while (!(stats.totalCalls >= calls && stats.currentCalls === 0) && Date.now() < deadline) {
    await sleep(100);
    stats = await carrier.stats();
  }
  await carrier.stop();
  stats = await carrier.stats();
  const label = `carrier ${carrier.transport}`;
  t.equal(stats.currentCalls, 0, `${label}: no call left up`);
  t.equal(stats.totalCalls, calls, `${label}: ${calls} call(s) reached it`);
  t.equal(stats.failedCalls, 0, `${label}: no dialog failed${stats.failedCalls ? ` (see ${carrier.logDir}/errors.log)` : ''}`);
}

/** Makes an ear talk its tone to the media address the server offered in its INVITE to `user`. */
export async function talkToServer(t: Test, fx: Fixture, ear: RtpEar, user: string, freq: number): Promise<void> {
  const call = await carrierCall(fx.carrier, user);
  const to = call.offer();
  if (!to) {
    t.fail(`no SDP offer in the INVITE to ${user}`);
    return;
  }
  await ear.talk({ to, freq });
}

/** Waits for the party's answer and starts its ear talking; both parties talk during the call. */
export async function talkOnceAnswered(t: Test, fx: Fixture, resId: string, party: 1 | 2, ear: RtpEar, user: string): Promise<void> {
  await fx.progress(resId, 'answered', party);
  await talkToServer(t, fx, ear, user, party === 1 ? TONE.party1Talks : TONE.party2Talks);
}

export interface CdrParty {
  party: number;
  from_uri: string | null;
  to_uri: string | null;
  gateway: string | null;
  sip_status: number | null;
  dial_time: number | null;
  ring_time: number | null;
  answer_time: number | null;
  end_time: number | null;
}

/**
 * The CDR (sys.cdr.get) of a finished two-party call through gateway
 * `carrier`: per party the numbers, the gateway, 200, and dial ≤ ring ≤
 * answer ≤ end (ring only when a 18x came). Returns it for further checks.
 */
export async function checkCdr(t: Test, fx: Fixture, resId: string, users: readonly [string, string]): Promise<{ released: Record<string, unknown>; parties: CdrParty[] }> {
  const cdr = (await fx.client.call('sys.cdr.get', [resId])).result as { released: Record<string, unknown>; context: { parties: CdrParty[] } };
  const parties = cdr.context.parties;
  t.equal(parties.length, 2, 'the CDR has both parties');
  for (const [i, p] of parties.entries()) {
    t.match(p, { party: i + 1, to_uri: new RegExp(`^sip:${users[i]}@`), from_uri: String, gateway: 'carrier', sip_status: 200 }, `party ${i + 1}: numbers, gateway, SIP status`);
    const times = [p.dial_time, p.ring_time, p.answer_time, p.end_time].filter((x): x is number => x !== null);
    t.ok(p.dial_time !== null && p.answer_time !== null && p.end_time !== null, `party ${i + 1}: dial, answer and end times: ${JSON.stringify(p)}`);
    t.ok(times.every((x, j) => j === 0 || x >= times[j - 1]!), `party ${i + 1}: dial ≤ ring ≤ answer ≤ end: ${JSON.stringify(times)}`);
  }
  return { released: cdr.released, parties };
}
