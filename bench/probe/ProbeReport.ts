/** Joins the server probe's record (bench/probe/serverProbe.ts) with what one setup-rate row's client saw. */
import { percentiles, type Percentiles, type SetupRateResult } from '../scenarios.js';
import type { ProbeRecord } from './serverProbe.js';

export interface ServerTimings {
  /** Event queued in the server's log (the resource emitted it) → its notification read by the client. */
  readonly deliveryMs: Percentiles;
  /** Event queued → its commit finished (group-commit wait + transaction), inside the server. */
  readonly commitMs: Percentiles;
  /** Events the client got that the probe did not see (should be 0). */
  readonly unmatched: number;
  /** A frame's arrival in its session → its reply handed to the socket, for frames answered in the row's window. */
  readonly serverReplyMs: Percentiles;
  /** How late the server's event loop ran during the row. */
  readonly serverLagMs: Percentiles;
}

const sorted = (values: number[]): number[] => values.sort((a, b) => a - b);

export function serverTimings(probe: ProbeRecord, row: Pick<SetupRateResult, 'window' | 'eventArrivals'>): ServerTimings {
  const commits = new Map(probe.events.map(([eventId, queuedAt, committedAt]) => [eventId, { queuedAt, committedAt }]));
  const delivery: number[] = [];
  const commit: number[] = [];
  let unmatched = 0;
  for (const [eventId, arrivedAt] of row.eventArrivals) {
    const c = commits.get(eventId);
    if (!c) {
      unmatched++;
      continue;
    }
    delivery.push(arrivedAt - c.queuedAt);
    commit.push(c.committedAt - c.queuedAt);
  }
  const inWindow = (at: number): boolean => at >= row.window.from && at <= row.window.to;
  return {
    deliveryMs: percentiles(sorted(delivery)),
    commitMs: percentiles(sorted(commit)),
    unmatched,
    serverReplyMs: percentiles(sorted(probe.frames.filter(([at]) => inWindow(at)).map(([at, answered]) => answered - at))),
    serverLagMs: percentiles(sorted(probe.lag.filter(([at]) => inWindow(at)).map(([, late]) => late))),
  };
}
