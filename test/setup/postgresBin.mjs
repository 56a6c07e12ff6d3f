// Where Debian's postgresql package puts the server binaries (initdb, pg_ctl, postgres).
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

export const POSTGRES_HINT = "PostgreSQL is required for the store tests: install it with 'apt-get install postgresql'";

/**
 * The bin folder of the newest installed PostgreSQL major version, or null.
 * ENSURE_POSTGRES_ROOT replaces Debian's /usr/lib/postgresql (for the setup script's own tests).
 */
export function findPostgresBin(root = process.env.ENSURE_POSTGRES_ROOT || '/usr/lib/postgresql') {
  let versions;
  try {
    versions = readdirSync(root).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
  } catch {
    return null;
  }
  for (const v of versions) {
    const bin = join(root, v, 'bin');
    if (existsSync(join(bin, 'initdb')) && existsSync(join(bin, 'pg_ctl'))) return bin;
  }
  return null;
}
