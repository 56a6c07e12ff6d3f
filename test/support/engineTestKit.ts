/** Small helpers shared by the engine tests and the conformance targets. */
import { randomInt } from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';
import type { CallLeg, CallLegEvents, LegEnd, TelephonyEngine } from '../../lib/telephony/TelephonyEngine.js';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A port free on `host` for both UDP and TCP now (SIP binds both). */
export async function freeSipPort(host: string): Promise<number> {
  for (;;) {
    const port = 20000 + randomInt(40000);
    const ok = await new Promise<boolean>((resolve) => {
      const s = dgram.createSocket('udp4');
      s.once('error', () => resolve(false));
      s.bind(port, host, () => {
        const server = net.createServer();
        server.once('error', () => s.close(() => resolve(false)));
        server.listen(port, host, () => server.close(() => s.close(() => resolve(true))));
      });
    });
    if (ok) return port;
  }
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

/** Resolves once `engine.available` is `wanted`; rejects after `ms`. */
export async function waitAvailable(engine: TelephonyEngine, wanted = true, ms = 15_000): Promise<void> {
  const until = Date.now() + ms;
  while (engine.available !== wanted) {
    if (Date.now() > until) throw new Error(`engine not ${wanted ? 'available' : 'unavailable'} after ${ms} ms`);
    await sleep(50);
  }
}
