/** CPU time of one process from /proc/<pid>/stat (user + system), as a share of one core between two samples. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface CpuSample {
  /** Seconds of CPU used so far (all threads). */
  readonly cpuSeconds: number;
  /** Wall clock, seconds (monotonic). */
  readonly at: number;
  /**
   * Seconds the main thread (the event loop) was runnable but waiting for a
   * core so far (/proc/<pid>/schedstat, second field): time other processes
   * took from it, not time it spent computing.
   */
  readonly runQueueSeconds: number;
}

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

export class CpuMeter {
  readonly pid: number;

  constructor(pid: number) {
    this.pid = pid;
  }

  sample(): CpuSample {
    const stat = readFileSync(`/proc/${this.pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start at state (field 3): utime is 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    const waitNs = Number(readFileSync(`/proc/${this.pid}/schedstat`, 'utf8').split(' ')[1]);
    return { cpuSeconds: ticks / CLK_TCK, at: performance.now() / 1000, runQueueSeconds: waitNs / 1e9 };
  }

  /** Milliseconds per second the event loop waited for its core between two samples. */
  static waitedMsPerSec(from: CpuSample, to: CpuSample): number {
    return (1000 * (to.runQueueSeconds - from.runQueueSeconds)) / (to.at - from.at);
  }

  /** 100 = one core fully busy. */
  static percent(from: CpuSample, to: CpuSample): number {
    return (100 * (to.cpuSeconds - from.cpuSeconds)) / (to.at - from.at);
  }
}
