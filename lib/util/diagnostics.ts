/**
 * Timing points published on Node's diagnostics channels
 * (https://nodejs.org/api/diagnostics_channel.html). Nothing in the server
 * subscribes: publishing costs one `hasSubscribers` check then. `npm run
 * bench` loads a probe into the server process (bench/probe/serverProbe.ts)
 * that subscribes and writes what it saw to a file (docs/performance.md).
 */
import diagnosticsChannel from 'node:diagnostics_channel';

/**
 * Host-wide monotonic time in milliseconds (CLOCK_MONOTONIC through libuv's
 * hrtime): every process on one machine reads the same clock, so a stamp
 * taken here can be compared with one taken by a client on the same host.
 */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** An event the log committed: when it was queued (the resource emitted it) and when its commit finished. */
export interface EventCommittedMessage {
  readonly accountId: string;
  readonly eventId: number;
  /** {@link monotonicMs} when EventLog.append queued it. */
  readonly queuedAt: number;
  /** {@link monotonicMs} when its commit had finished, just before it was published to sinks. */
  readonly committedAt: number;
}

/** A WebSocket text frame answered: from its arrival in the session to its reply handed to the socket. */
export interface FrameAnsweredMessage {
  /** {@link monotonicMs} when the frame reached the session's handler. */
  readonly receivedAt: number;
  /** {@link monotonicMs} after the reply was handed to `ws` (published only when a reply was due). */
  readonly answeredAt: number;
}

export const eventCommittedChannel = diagnosticsChannel.channel('cti:event-log:committed');
export const frameAnsweredChannel = diagnosticsChannel.channel('cti:ws:answered');
