/**
 * Loaded into the server under test (`node --import tsx --import
 * ./bench/probe/serverProbe.ts lib/main.ts`) when the bench runs it; never
 * part of the server. Subscribes to the server's diagnostics channels
 * (lib/util/diagnostics.ts) and samples the event loop's lateness, all on the
 * host-wide monotonic clock, and writes what it saw as JSON to
 * `BENCH_PROBE_FILE` when the bench stops it (SIGTERM: before the server's
 * own shutdown, which may outlast the bench's patience and end in SIGKILL).
 */
import { subscribe } from 'node:diagnostics_channel';
import { writeFileSync } from 'node:fs';
import { monotonicMs, type EventCommittedMessage, type FrameAnsweredMessage } from '../../lib/util/diagnostics.js';
import { LagSampler } from './LagSampler.js';

export interface ProbeRecord {
  /** [eventId, queuedAt, committedAt] per committed event (one account: the bench's). */
  readonly events: Array<[number, number, number]>;
  /** [receivedAt, answeredAt] per answered WebSocket frame. */
  readonly frames: Array<[number, number]>;
  /** [at, lateMs, cpuMs] per event-loop sample (LagSampler). */
  readonly lag: Array<[number, number, number]>;
}

const file = process.env['BENCH_PROBE_FILE'];
if (file) {
  const record: ProbeRecord = { events: [], frames: [], lag: [] };
  subscribe('cti:event-log:committed', (m) => {
    const e = m as EventCommittedMessage;
    record.events.push([e.eventId, e.queuedAt, e.committedAt]);
  });
  subscribe('cti:ws:answered', (m) => {
    const f = m as FrameAnsweredMessage;
    record.frames.push([f.receivedAt, f.answeredAt]);
  });
  const lag = new LagSampler(monotonicMs, (at, late, cpuMs) => record.lag.push([at, late, cpuMs]));
  lag.start();
  let written = false;
  const write = (): void => {
    if (written) return;
    written = true;
    lag.stop();
    writeFileSync(file, JSON.stringify(record));
  };
  // The server's own SIGTERM handler (lib/main.ts) still runs: both are listeners.
  process.once('SIGTERM', write);
  process.once('exit', write);
}
