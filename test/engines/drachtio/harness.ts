// Test harness of the drachtio engine: a started DrachtioEngine against a live
// drachtio-server + FreeSWITCH, SIPp far ends (test/sipp/carrier.xml) and RTP
// "ears", all torn down with the test. Where the servers come from: see
// services.ts (environment variables, or started here from test/telephony-config/).
import { pino } from 'pino';
import type { DrachtioEngineConfig } from '../../../lib/config/ServerConfig.js';
import type { CallLeg, CallLegEvents, DialRequest, LegEnd } from '../../../lib/telephony/TelephonyEngine.js';
import { DrachtioEngine } from '../../../lib/engines/drachtio/DrachtioEngine.js';
import { RtpEar } from '../../support/sipp/RtpEar.js';
import { SippCarrier, type SipTransport } from '../../support/sipp/SippCarrier.js';

export interface Teardown {
  teardown(fn: () => unknown): void;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const logger = pino({ level: process.env.LOG_LEVEL ?? 'silent' });

/** Resolves once `engine.available` is true, or rejects after `ms`. */
export async function waitAvailable(engine: DrachtioEngine, wanted = true, ms = 15_000): Promise<void> {
  const until = Date.now() + ms;
  while (engine.available !== wanted) {
    if (Date.now() > until) throw new Error(`engine not ${wanted ? 'available' : 'unavailable'} after ${ms} ms`);
    await sleep(50);
  }
}

export async function startEngine(t: Teardown, config: DrachtioEngineConfig): Promise<DrachtioEngine> {
  const engine = new DrachtioEngine(config, logger);
  t.teardown(() => engine.stop());
  await engine.start();
  await waitAvailable(engine);
  return engine;
}

export async function startCarrier(t: Teardown, transport: SipTransport = 'udp'): Promise<SippCarrier> {
  const carrier = await SippCarrier.start({ transport, maxLifetimeSec: 120 });
  t.teardown(() => carrier.stop());
  return carrier;
}

export async function openEar(t: Teardown): Promise<RtpEar> {
  const ear = await RtpEar.open('127.0.0.1');
  t.teardown(() => ear.close());
  return ear;
}

/** A DialRequest for carrier user `user` (see test/sipp/carrier.xml), through the carrier as gateway. */
export function request(carrier: SippCarrier, user: string, auth = false): DialRequest {
  return {
    requestUri: carrier.uri(user),
    fromUri: 'sip:075500000000@cti.test',
    gateway: {
      name: 'carrier',
      host: carrier.host,
      port: carrier.port,
      transport: carrier.transport,
      ...(auth ? { username: carrier.authUser, password: carrier.authPassword } : {}),
    },
    label: `test#${user}`,
  };
}

/** The arguments of a leg's next `event`, or a rejection after `ms`. */
export function next(leg: CallLeg, event: keyof CallLegEvents, ms = 10_000): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} within ${ms} ms`)), ms);
    const listener = (...args: unknown[]): void => {
      clearTimeout(timer);
      resolve(args);
    };
    leg.once(event, listener as never);
  });
}

export async function ended(leg: CallLeg, ms = 10_000): Promise<LegEnd> {
  return (await next(leg, 'ended', ms))[0] as LegEnd;
}

/** Counts every `ended` of a leg, to prove there is exactly one. */
export function countEnded(leg: CallLeg): () => number {
  let n = 0;
  leg.on('ended', () => n++);
  return () => n;
}

/**
 * How the carrier saw the call to `user` end, from its message log: 'hung up'
 * when it got a BYE, or a CANCEL it answered with 487; 'open' otherwise.
 */
export async function callOutcome(carrier: SippCarrier, user: string): Promise<'hung up' | 'open'> {
  const log = await carrier.messages();
  const invite = log.indexOf(`INVITE sip:${user}@`);
  const callId = invite < 0 ? undefined : /Call-ID:\s*(\S+)/i.exec(log.slice(invite))?.[1];
  if (!callId) return 'open';
  const messages = log.split(/-{10,}/).filter((m) => m.includes(callId));
  const bye = messages.some((m) => /^\s*BYE sip:/m.test(m));
  const cancelled = messages.some((m) => /^\s*SIP\/2\.0 487/m.test(m));
  return bye || cancelled ? 'hung up' : 'open';
}
