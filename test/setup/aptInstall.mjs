// Shared by the pretest setup scripts: installs one Debian package with
// apt-get (run as root), output kept in a pipe so callers print one line.
import { spawnSync } from 'node:child_process';

export const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** Runs `apt-get update` then `apt-get install -y <pkg>`; returns the failing step's output, or null on success. */
export function aptInstall(pkg) {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const run = (args) => spawnSync('apt-get', args, { env, encoding: 'utf8', timeout: 600_000, stdio: ['ignore', 'pipe', 'pipe'] });
  const update = run(['update']);
  const install = update.status === 0 ? run(['install', '-y', pkg]) : update;
  return install.status === 0 ? null : `${install.stdout ?? ''}${install.stderr ?? ''}`;
}
