// Test harness of the drachtio engine: a started DrachtioEngine against a live
// drachtio-server + FreeSWITCH, SIPp far ends (test/sipp/carrier.xml) and RTP
// "ears", all torn down with the test. Where the servers come from: see
// services.ts (environment variables, or started here from test/telephony-config/).
import { pino } from 'pino';
import type { DrachtioEngineConfig } from '../../../lib/config/ServerConfig.js';
import type { CallLeg, DialRequest } from '../../../lib/telephony/TelephonyEngine.js';
import { DrachtioEngine, type DrachtioHostSettings } from '../../../lib/engines/drachtio/DrachtioEngine.js';
import { RtpEar } from '../../support/sipp/RtpEar.js';
import { SippCarrier, type SipTransport } from '../../support/sipp/SippCarrier.js';
import { waitAvailable } from '../../support/engineTestKit.js';

export { ended, next, sleep, waitAvailable } from '../../support/engineTestKit.js';

export interface Teardown {
  teardown(fn: () => unknown): void;
}

const logger = pino({ level: process.env.LOG_LEVEL ?? 'silent' });

/** A started engine, available, stopped with the test. */
export async function startEngine(t: Teardown, config: DrachtioEngineConfig, host?: DrachtioHostSettings): Promise<DrachtioEngine> {
  const engine = new DrachtioEngine(config, logger, host);
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
