// test/setup/ensure-sipp.mjs with a fake PATH: present, installable, missing.
import { spawnSync } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), '..', 'setup', 'ensure-sipp.mjs');
const HINT = "SIPp is required: install it with 'apt-get install sip-tester'";
const isRoot = process.getuid?.() === 0;

async function fakeBin(tt: { teardown(fn: () => unknown): void }, files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ensure-sipp-'));
  tt.teardown(() => rm(dir, { recursive: true, force: true }));
  for (const [name, body] of Object.entries(files)) {
    await writeFile(join(dir, name), `#!/bin/sh\n${body.replaceAll('$DIR', dir)}\n`);
    await chmod(join(dir, name), 0o755);
  }
  return dir;
}

// Only the fake dir on PATH; node itself is run by absolute path.
const run = (pathDir: string) =>
  spawnSync(process.execPath, [SCRIPT], { env: { PATH: pathDir }, encoding: 'utf8', timeout: 20_000 });

t.test('sipp on PATH: exit 0, silent', async (tt) => {
  const dir = await fakeBin(tt, { sipp: 'exit 0' });
  const r = run(dir);
  tt.equal(r.status, 0);
  tt.equal(r.stdout + r.stderr, '');
});

t.test('no sipp and no apt-get: the one-line hint, exit 1', async (tt) => {
  const dir = await fakeBin(tt, {});
  const r = run(dir);
  tt.equal(r.status, 1);
  tt.equal(r.stderr.trim(), HINT);
  tt.equal(r.stderr.trim().split('\n').length, 1, 'one line');
});

t.test('as root with apt-get: update, then install sip-tester non-interactively', { skip: !isRoot && 'needs root' }, async (tt) => {
  const dir = await fakeBin(tt, {
    'apt-get': [
      'echo "$DEBIAN_FRONTEND $*" >> $DIR/apt.log',
      'if [ "$1" = install ]; then printf "#!/bin/sh\\nexit 0\\n" > $DIR/sipp; /bin/chmod +x $DIR/sipp; fi',
      'exit 0',
    ].join('\n'),
  });
  const r = run(dir);
  tt.equal(r.status, 0, r.stderr);
  tt.match(r.stderr, /installing/i, 'says it installs');
  tt.equal(r.stderr.trim().split('\n').length, 1, 'one line');
  const log = await readFile(join(dir, 'apt.log'), 'utf8');
  tt.same(log.trim().split('\n'), ['noninteractive update', 'noninteractive install -y sip-tester']);
});

t.test('as root, apt-get fails: the hint, exit 1', { skip: !isRoot && 'needs root' }, async (tt) => {
  const dir = await fakeBin(tt, { 'apt-get': 'exit 100' });
  const r = run(dir);
  tt.equal(r.status, 1);
  tt.equal(r.stderr.trim().split('\n').pop(), HINT);
});
