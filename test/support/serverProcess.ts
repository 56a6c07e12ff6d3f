/** The real server (`lib/main.ts`) as a child process, for crash (kill -9) and restart tests. */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface ServerProcess {
  readonly child: ChildProcess;
  /** ws://host:port from its `listening` log line. */
  readonly url: string;
  /** SIGKILL, resolves once it exited. */
  kill(): Promise<void>;
}

/** Starts `lib/main.ts` with `env` over this process's; resolves once it logs `listening` (CTI_LOG_LEVEL info or lower). */
export async function startServerProcess(env: NodeJS.ProcessEnv): Promise<ServerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'lib/main.ts'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const url = await new Promise<string>((resolve, reject) => {
    let buffered = '';
    const timer = setTimeout(() => reject(new Error(`server not listening after 20 s: ${buffered.slice(-2000)}`)), 20_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      buffered = (buffered + chunk.toString()).slice(-100_000);
      const line = buffered.split('\n').find((l) => l.includes('"listening"'));
      if (!line) return;
      clearTimeout(timer);
      resolve((JSON.parse(line) as { address: string }).address);
    });
    child.once('exit', (code) => reject(new Error(`server exited with ${code}: ${buffered.slice(-2000)}`)));
  });
  child.stdout!.removeAllListeners('data');
  child.stdout!.resume();
  child.stderr!.resume();
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    child,
    url,
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}
