#!/usr/bin/env node
// pretest: the store tests run against a real PostgreSQL that test/support/postgres.ts
// starts as a throwaway cluster; make sure the server binaries exist before tap starts.
import { aptInstall, isRoot } from './aptInstall.mjs';
import { findPostgresBin, POSTGRES_HINT } from './postgresBin.mjs';

if (findPostgresBin()) process.exit(0);

if (!isRoot) {
  console.error(POSTGRES_HINT);
  process.exit(1);
}

console.error('PostgreSQL server binaries not found: installing Debian package postgresql with apt-get');
// Output goes to a pipe so the one-line contract holds; it is shown only on failure.
const failure = aptInstall('postgresql');
if (failure !== null || !findPostgresBin()) {
  if (process.env.ENSURE_POSTGRES_VERBOSE) console.error(failure ?? '');
  console.error(POSTGRES_HINT);
  process.exit(1);
}
process.exit(0);
