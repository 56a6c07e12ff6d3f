// test/setup/ensure-postgres.mjs with a fake PostgreSQL folder and PATH: present, installable, missing.
import { spawnSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { POSTGRES_HINT } from '../setup/postgresBin.mjs';

const SCRIPT = join(import.meta.dirname, '..', 'setup', 'ensure-postgres.mjs');
const isRoot = process.getuid?.() === 0;

/** A fake PATH folder with these shell scripts, and an empty PostgreSQL root beside it. */
async function fake(t: Test, files: Record<string, string>): Promise<{ bin: string; root: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'ensure-postgres-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const bin = join(dir, 'bin');
  const root = join(dir, 'postgresql');
  await mkdir(bin);
  await mkdir(root);
  for (const [name, body] of Object.entries(files)) {
    await writeFile(join(bin, name), `#!/bin/sh\n${body.replaceAll('$DIR', dir)}\n`);
    await chmod(join(bin, name), 0o755);
  }
  return { bin, root };
}

const run = ({ bin, root }: { bin: string; root: string }) =>
  spawnSync(process.execPath, [SCRIPT], { env: { PATH: bin, ENSURE_POSTGRES_ROOT: root }, encoding: 'utf8', timeout: 20_000 });

t.test('binaries present: exit 0, silent', async (t) => {
  const dirs = await fake(t, {});
  await mkdir(join(dirs.root, '15', 'bin'), { recursive: true });
  for (const tool of ['initdb', 'pg_ctl']) await writeFile(join(dirs.root, '15', 'bin', tool), '');
  const r = run(dirs);
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout + r.stderr, '');
});

t.test('missing and apt-get unusable: the one-line hint, exit 1', async (t) => {
  const r = run(await fake(t, {}));
  t.equal(r.status, 1);
  t.equal(r.stderr.trim().split('\n').pop(), POSTGRES_HINT);
});

t.test('as root with apt-get: update, then install postgresql non-interactively', { skip: !isRoot && 'needs root' }, async (t) => {
  const dirs = await fake(t, {
    'apt-get': [
      'echo "$DEBIAN_FRONTEND $*" >> $DIR/apt.log',
      'if [ "$1" = install ]; then /bin/mkdir -p $DIR/postgresql/15/bin && : > $DIR/postgresql/15/bin/initdb && : > $DIR/postgresql/15/bin/pg_ctl; fi',
      'exit 0',
    ].join('\n'),
  });
  const r = run(dirs);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stderr, /installing Debian package postgresql/);
  t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
  const log = await readFile(join(dirs.root, '..', 'apt.log'), 'utf8');
  t.same(log.trim().split('\n'), ['noninteractive update', 'noninteractive install -y postgresql']);
});

t.test('as root, apt-get fails: the hint, exit 1', { skip: !isRoot && 'needs root' }, async (t) => {
  const r = run(await fake(t, { 'apt-get': 'exit 100' }));
  t.equal(r.status, 1);
  t.equal(r.stderr.trim().split('\n').pop(), POSTGRES_HINT);
});
