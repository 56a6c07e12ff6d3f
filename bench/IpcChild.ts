/** A bench helper process (phone farm, baseline relay) driven over Node IPC: request → one reply with the same id. */
import type { ChildProcess } from 'node:child_process';
import type { ProcessGroup } from './ProcessGroup.js';

export interface IpcReply {
  readonly id: number;
  readonly error?: string;
  readonly [key: string]: unknown;
}

export class IpcChild {
  readonly #child: ChildProcess;
  readonly #pending = new Map<number, { resolve: (r: IpcReply) => void; reject: (e: Error) => void }>();
  #nextId = 1;

  private constructor(child: ChildProcess) {
    this.#child = child;
    child.on('message', (m: IpcReply) => {
      const p = this.#pending.get(m.id);
      if (!p) return;
      this.#pending.delete(m.id);
      if (m.error) p.reject(new Error(m.error));
      else p.resolve(m);
    });
    child.once('exit', (code, signal) => {
      for (const p of this.#pending.values()) p.reject(new Error(`helper exited (${code ?? signal})`));
      this.#pending.clear();
    });
  }

  /** Runs `script` (TypeScript, via tsx) pinned to `cpu`. */
  static start(group: ProcessGroup, script: string, cpu: string): IpcChild {
    const child = group.spawn('taskset', ['-a', '-c', cpu, process.execPath, '--import', 'tsx', script], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    return new IpcChild(child);
  }

  get pid(): number {
    return this.#child.pid ?? -1;
  }

  request<T extends IpcReply>(type: string, body: Record<string, unknown> = {}, timeoutMs = 30_000): Promise<T> {
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`helper did not answer ${type} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, {
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.#child.send({ ...body, id, type });
    });
  }

  async close(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.#child.once('exit', () => resolve()));
    this.#child.kill('SIGTERM');
    await exited;
  }
}
