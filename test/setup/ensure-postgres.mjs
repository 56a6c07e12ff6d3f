#!/usr/bin/env node
// pretest: the store tests run against a real PostgreSQL that test/support/postgres.ts
// starts as a throwaway cluster; make sure the server binaries exist before tap starts.
import { spawnSync } from 'node:child_process';
import { findPostgresBin, POSTGRES_HINT } from './postgresBin.mjs';

if (findPostgresBin()) process.exit(0);

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const hasAptGet = spawnSync('sh', ['-c', 'command -v apt-get'], { stdio: 'ignore' }).status === 0;
if (!isRoot || !hasAptGet) {
  console.error(POSTGRES_HINT);
  process.exit(1);
}

console.error('PostgreSQL server binaries not found: installing Debian package postgresql with apt-get');
// Output goes to a pipe so the one-line contract holds; it is shown only on failure.
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
const run = (args) =>
  spawnSync('apt-get', args, { env, encoding: 'utf8', timeout: 900_000, stdio: ['ignore', 'pipe', 'pipe'] });

const update = run(['update']);
const install = update.status === 0 ? run(['install', '-y', '--no-install-recommends', 'postgresql']) : update;
if (install.status !== 0 || !findPostgresBin()) {
  if (process.env.ENSURE_POSTGRES_VERBOSE) console.error(`${install.stdout ?? ''}${install.stderr ?? ''}`);
  console.error(POSTGRES_HINT);
  process.exit(1);
}
process.exit(0);
