/**
 * The phone farm (a child of bench/run.ts): 2·N UDP sockets standing in for
 * the media ports of N pairs of phones. Legs 2i and 2i+1 are peers. Each leg
 * sends 50 packets/s (spread over the 20 ms period in 10 slots so the relay
 * sees a steady stream, not bursts) and counts its peer's packets by counter.
 * Driven over IPC: open, targets, mark, markEnd, report, status.
 */
import dgram from 'node:dgram';
import { FarmLeg, type Address } from './FarmLeg.js';

interface Request {
  readonly id: number;
  readonly type: string;
  readonly [key: string]: unknown;
}

const PERIOD_MS = 20;
const SLOTS = 10;

const legs: FarmLeg[] = [];
let c0: number[] = [];
let c1: number[] = [];
let windowMs = 0;
let markAt = 0;
let loop: NodeJS.Timeout | undefined;
const slotDue: number[] = [];

function reply(id: number, body: Record<string, unknown>): void {
  process.send?.({ id, ...body });
}

async function open(pairs: number, host: string, symmetric: boolean): Promise<number[]> {
  const base = legs.length;
  for (let i = 0; i < 2 * pairs; i++) {
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, host, () => resolve());
    });
    const index = base + i;
    legs.push(new FarmLeg(index, index % 2 === 0 ? index + 1 : index - 1, socket, symmetric));
  }
  return legs.slice(base).map((l) => l.socket.address().port);
}

function tick(): void {
  const now = performance.now();
  for (let s = 0; s < SLOTS; s++) {
    if (slotDue[s]! < now - 5 * PERIOD_MS) slotDue[s] = now; // after a stall, no burst of stale packets
    while (slotDue[s]! <= now) {
      for (let i = s; i < legs.length; i += SLOTS) legs[i]!.send();
      slotDue[s]! += PERIOD_MS;
    }
  }
}

function start(): void {
  if (loop) return;
  const now = performance.now();
  for (let s = 0; s < SLOTS; s++) slotDue[s] = now + (s * PERIOD_MS) / SLOTS;
  loop = setInterval(tick, 1);
}

function report(): Record<string, unknown> {
  let expected = 0;
  let received = 0;
  let legsWithLoss = 0;
  let worstLoss = 0;
  for (const leg of legs) {
    const from = c0[leg.peerIndex]!;
    const to = c1[leg.peerIndex]!;
    const e = to - from;
    const r = leg.receivedBetween(from, to);
    expected += e;
    received += r;
    if (r < e) legsWithLoss++;
    if (e > 0) worstLoss = Math.max(worstLoss, (e - r) / e);
  }
  return { expected, received, legsWithLoss, worstLegLossPct: 100 * worstLoss, windowMs, legs: legs.length };
}

process.on('message', (m: Request) => {
  void (async () => {
    try {
      switch (m.type) {
        case 'open':
          return reply(m.id, { ports: await open(m.pairs as number, m.host as string, m.symmetric as boolean) });
        case 'targets': {
          const targets = m.targets as (Address | null)[];
          targets.forEach((t, i) => {
            if (t) legs[i]!.target = t;
          });
          return reply(m.id, {});
        }
        case 'start':
          start();
          return reply(m.id, {});
        case 'status':
          return reply(m.id, {
            legs: legs.length,
            latched: legs.filter((l) => l.target).length,
            flowing: legs.filter((l) => l.markedReceived > 0).length,
          });
        case 'mark':
          c0 = legs.map((l) => l.sent);
          markAt = performance.now();
          return reply(m.id, {});
        case 'markEnd':
          c1 = legs.map((l) => l.sent);
          windowMs = performance.now() - markAt;
          return reply(m.id, {});
        case 'report':
          return reply(m.id, report());
        default:
          return reply(m.id, { error: `unknown request ${m.type}` });
      }
    } catch (err) {
      reply(m.id, { error: String(err) });
    }
  })();
});

function shutdown(): void {
  clearInterval(loop);
  for (const leg of legs) leg.close();
  process.exit(0);
}
process.on('SIGTERM', shutdown);
process.on('disconnect', shutdown);
