/** CPU time of one process from /proc/<pid>/stat (user + system), as a share of one core between two samples. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface CpuSample {
  /** Seconds of CPU used so far (all threads). */
  readonly cpuSeconds: number;
  /** Wall clock, seconds (monotonic). */
  readonly at: number;
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
    return { cpuSeconds: ticks / CLK_TCK, at: performance.now() / 1000 };
  }

  /** 100 = one core fully busy. */
  static percent(from: CpuSample, to: CpuSample): number {
    return (100 * (to.cpuSeconds - from.cpuSeconds)) / (to.at - from.at);
  }
}
