// The throwaway PostgreSQL of test/support/postgres.ts: databases, stop, and clean-up after a killed test run.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import pg from 'pg';
import t from 'tap';
import { PostgresCluster } from '../support/postgres.js';

t.test('fresh databases, and nothing left after stop', async (t) => {
  const cluster = await PostgresCluster.start();
  const [a, b] = [await cluster.createDatabase(), await cluster.createDatabase()];
  t.not(a, b);
  const client = new pg.Client({ connectionString: a });
  await client.connect();
  t.same((await client.query('select count(*)::int as n from pg_tables where schemaname = $1', ['public'])).rows, [{ n: 0 }], 'empty');
  await client.end();
  await cluster.stop();
  t.notOk(existsSync(cluster.dir), 'folder deleted');
});

t.test('a cluster whose test process was killed is stopped and deleted by the next start', async (t) => {
  const child = spawn(
    process.execPath,
    ['--import=tsx', '-e', "const { PostgresCluster } = await import('./test/support/postgres.ts'); const c = await PostgresCluster.start(); console.log(c.dir); setInterval(() => {}, 1000);"],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const dir = await new Promise<string>((resolve) => createInterface({ input: child.stdout! }).once('line', resolve));
  t.ok(existsSync(dir), `orphan-to-be running in ${dir}`);
  child.kill('SIGKILL');
  await new Promise((resolve) => child.once('exit', resolve));
  t.ok(existsSync(dir), 'SIGKILL left it behind');

  const next = await PostgresCluster.start();
  t.teardown(() => next.stop());
  t.notOk(existsSync(dir), 'reaped by the next start');
});
