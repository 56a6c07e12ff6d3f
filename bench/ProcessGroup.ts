/** Every child process of a bench run, so all of them end with it: normally, on error, on SIGINT or at the deadline. */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

export class ProcessGroup {
  readonly #children = new Set<ChildProcess>();

  spawn(command: string, args: readonly string[], options: SpawnOptions): ChildProcess {
    const child = spawn(command, args, options);
    this.#children.add(child);
    child.once('exit', () => this.#children.delete(child));
    child.once('error', () => this.#children.delete(child));
    return child;
  }

  /** SIGTERM to each child still running, SIGKILL to those left after `graceMs`. */
  async killAll(graceMs = 2000): Promise<void> {
    const alive = [...this.#children].filter((c) => c.exitCode === null && c.signalCode === null);
    for (const child of alive) child.kill('SIGTERM');
    const deadline = Date.now() + graceMs;
    while (alive.some((c) => c.exitCode === null && c.signalCode === null) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    for (const child of alive) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}
