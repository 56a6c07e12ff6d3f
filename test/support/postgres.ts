/**
 * A throwaway PostgreSQL cluster for tests: initdb in a temp folder, started
 * with pg_ctl on a Unix socket of its own (no TCP port, so parallel test files
 * and other users of the machine never clash), a fresh database per test,
 * stopped and deleted at the end (or at process exit if a test crashes).
 *
 * initdb and postgres refuse to run as root, so under root every command runs
 * as the `postgres` user (runuser) and the temp folder is handed to it.
 * test/setup/ensure-postgres.mjs (pretest) installs the binaries when missing.
 */
import { execFile, spawnSync } from 'node:child_process';
import { chownSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { findPostgresBin, POSTGRES_HINT } from '../setup/postgresBin.mjs';

const run = promisify(execFile);
const isRoot = process.getuid?.() === 0;

export class PostgresCluster {
  #databases = 0;
  #stopped = false;
  readonly #onExit = () => this.#stopNow();

  private constructor(
    private readonly bin: string,
    /** Temp folder: holds `data/`, the socket and the server log. */
    readonly dir: string,
  ) {
    process.once('exit', this.#onExit);
  }

  /** initdb + start; rejects with the one-line install hint when PostgreSQL is missing. */
  static async start(): Promise<PostgresCluster> {
    const bin = findPostgresBin();
    if (!bin) throw new Error(POSTGRES_HINT);
    reapOrphans(bin);
    const dir = mkdtempSync(join(tmpdir(), PREFIX));
    writeFileSync(join(dir, OWNER_FILE), String(process.pid));
    if (isRoot) {
      const uid = Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout.trim());
      const gid = Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim());
      chownSync(dir, uid, gid);
    }
    const cluster = new PostgresCluster(bin, dir);
    try {
      await cluster.#pg('initdb', ['-D', join(dir, 'data'), '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--locale=C', '--no-sync', '--no-instructions']);
      // Durability off: a test cluster never survives a crash anyway, and fsync is slow on a shared machine.
      const options = `-k ${dir} -h '' -c fsync=off -c synchronous_commit=off -c full_page_writes=off`;
      await cluster.#pg('pg_ctl', ['-D', join(dir, 'data'), '-l', join(dir, 'server.log'), '-w', '-t', '60', '-o', options, 'start']);
    } catch (err) {
      cluster.#stopNow();
      throw err;
    }
    return cluster;
  }

  /** Connection URL of database `name` (over the cluster's own socket). */
  url(name: string): string {
    return `postgres://postgres@localhost/${name}?host=${encodeURIComponent(this.dir)}`;
  }

  /** Creates an empty database and returns its URL. */
  async createDatabase(): Promise<string> {
    const name = `t${process.pid}_${++this.#databases}`;
    const client = new pg.Client({ connectionString: this.url('postgres') });
    await client.connect();
    try {
      await client.query(`create database ${name}`);
    } finally {
      await client.end();
    }
    return this.url(name);
  }

  /** Stops the server (fast shutdown) and deletes the folder. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    process.removeListener('exit', this.#onExit);
    await this.#pg('pg_ctl', ['-D', join(this.dir, 'data'), '-m', 'fast', '-w', 'stop']).catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Synchronous last resort at process exit: immediate shutdown, then delete. */
  #stopNow(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    const [cmd, args] = this.#command('pg_ctl', ['-D', join(this.dir, 'data'), '-m', 'immediate', '-w', 'stop']);
    spawnSync(cmd, args, { stdio: 'ignore' });
    rmSync(this.dir, { recursive: true, force: true });
  }

  async #pg(tool: string, args: string[]): Promise<void> {
    const [cmd, fullArgs] = this.#command(tool, args);
    try {
      await run(cmd, fullArgs, { timeout: 90_000, cwd: this.dir });
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new Error(`${tool} failed: ${(e.stderr ?? e.message).trim().split('\n').slice(-3).join(' | ')}`);
    }
  }

  #command(tool: string, args: string[]): [string, string[]] {
    return command(this.bin, tool, args);
  }
}

const PREFIX = 'cti-pg-';
/** Pid of the test process that owns a cluster folder. */
const OWNER_FILE = 'owner.pid';

function command(bin: string, tool: string, args: string[]): [string, string[]] {
  const path = join(bin, tool);
  return isRoot ? ['runuser', ['-u', 'postgres', '--', path, ...args]] : [path, args];
}

/**
 * Clusters whose test process died without cleaning up (SIGKILL, a tap
 * timeout) would run forever: stop and delete those whose owner is gone.
 */
function reapOrphans(bin: string): void {
  for (const name of readdirSync(tmpdir()).filter((n) => n.startsWith(PREFIX))) {
    const dir = join(tmpdir(), name);
    try {
      process.kill(Number(readFileSync(join(dir, OWNER_FILE), 'utf8')), 0);
      continue; // alive: not ours to touch
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') continue; // no owner file yet, or not ours to signal
    }
    const [cmd, args] = command(bin, 'pg_ctl', ['-D', join(dir, 'data'), '-m', 'immediate', '-w', 'stop']);
    spawnSync(cmd, args, { stdio: 'ignore', timeout: 30_000 });
    rmSync(dir, { recursive: true, force: true });
  }
}
