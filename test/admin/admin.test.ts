/**
 * The admin command as operators and scripts use it: a real subprocess,
 * JSON on stdout, one-line errors on stderr, exit codes 0/1/2, against both
 * store backends; the server-side AccountStore sees what it did.
 */
import t, { type Test } from 'tap';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AccountStore } from '../../lib/accounts/AccountStore.js';
import type { StoreConfig } from '../../lib/config/ServerConfig.js';
import { Store } from '../../lib/store/Store.js';
import { storeBackends } from '../support/storeBackends.js';

// About 80 CLI processes on two stores, each 1–2.5 s of tsx start-up: more than tap's 120 s default on a busy machine.
t.setTimeout(360_000);

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

const dataDir = t.testdir();

/** CTI_* environment selecting `store`, as an operator would set it. */
function storeEnv(store: StoreConfig): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, CTI_DATA_DIR: dataDir, CTI_STORE__TYPE: store.type };
  for (const key of Object.keys(env)) if (key.startsWith('CTI_') && !['CTI_DATA_DIR', 'CTI_STORE__TYPE'].includes(key)) delete env[key];
  if (store.type === 'sqlite') env.CTI_STORE__PATH = store.path;
  else env.CTI_STORE__URL = store.url;
  return env;
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve) => {
    execFile(command, args, { env, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

const admin = (env: NodeJS.ProcessEnv, ...args: string[]) => run(process.execPath, ['--import=tsx', 'lib/admin/main.ts', ...args], env);

/** A run that must succeed with one JSON document on stdout and nothing on stderr. */
async function json(t: Test, env: NodeJS.ProcessEnv, ...args: string[]): Promise<any> {
  const r = await admin(env, '--json', ...args);
  t.equal(r.code, 0, `${args.join(' ')}: exit 0 (${r.stderr.trim()})`);
  t.equal(r.stderr, '', 'nothing on stderr');
  return JSON.parse(r.stdout);
}

/** A run that must fail with `code` and one line on stderr. */
async function fails(t: Test, env: NodeJS.ProcessEnv, code: number, message: RegExp, ...args: string[]): Promise<void> {
  const r = await admin(env, '--json', ...args);
  t.equal(r.code, code, `${args.join(' ')}: exit ${code}`);
  t.equal(r.stdout, '', 'no JSON for a failure');
  t.match(r.stderr, /^cti-admin: [^\n]+\n$/, 'one line on stderr');
  t.match(r.stderr, message);
}

for (const backend of storeBackends(t)) {
  t.test(backend.name, async (t) => {
    const config = await backend.newStore();
    const env = storeEnv(config);

    const created = await json(t, env, 'account', 'create', 'acme', '--name', 'Acme Corp', '--caller-ids', '075512345678,+8610', '--max-live-resources', '20');
    t.same(created, {
      account_id: 'acme',
      name: 'Acme Corp',
      enabled: true,
      limits: { max_live_resources: 20, constructs_per_second: null, gateways: null, caller_ids: ['075512345678', '+8610'] },
      created_at: created.created_at,
      updated_at: created.created_at,
    });
    t.ok(Math.abs(created.created_at - Date.now() / 1000) < 120, 'times in Unix seconds');

    const key = await json(t, env, 'key', 'create', 'acme', '--label', 'crm');
    t.match(key, { account_id: 'acme', label: 'crm', key: /^cti_[A-Za-z0-9]{16}_[A-Za-z0-9]{40}$/, last_used_at: null, revoked_at: null });

    // The server's side of the same store: the key works there.
    const store = await Store.open(config);
    t.teardown(() => store.close());
    const server = new AccountStore(store, { authCacheMs: 0 });
    t.match(await server.authenticate(key.key), { accountId: 'acme', limits: { maxLiveResources: 20 } });

    const listed = await json(t, env, 'key', 'list', 'acme');
    t.equal(listed.length, 1);
    t.equal(listed[0].key_id, key.key_id);
    t.notOk('key' in listed[0], 'a listed key has no secret');
    t.type(listed[0].last_used_at, 'number', 'last use recorded by the server');

    const limited = await json(t, env, 'account', 'limits', 'acme', '--constructs-per-second', '5', '--max-live-resources', 'none', '--caller-ids', 'any');
    t.same(limited.limits, { max_live_resources: null, constructs_per_second: 5, gateways: null, caller_ids: null });
    t.match(await server.get('acme'), { limits: { constructsPerSecond: 5, callerIds: null } });

    t.match(await json(t, env, 'account', 'disable', 'acme'), { enabled: false });
    t.equal(await server.authenticate(key.key), null, 'disabled from the command line: refused by the server');
    t.match(await json(t, env, 'account', 'enable', 'acme'), { enabled: true });
    t.match(await server.authenticate(key.key), { accountId: 'acme' });

    t.match(await json(t, env, 'key', 'revoke', key.key_id), { key_id: key.key_id, revoked_at: Number });
    t.equal(await server.authenticate(key.key), null, 'revoked from the command line: refused by the server');

    t.same((await json(t, env, 'account', 'list')).map((a: { account_id: string }) => a.account_id), ['acme']);
    t.match(await json(t, env, 'account', 'show', 'acme'), { account_id: 'acme', name: 'Acme Corp' });

    // Webhooks: the secret comes with the first URL and survives --clear and a new URL.
    t.same(await json(t, env, 'account', 'webhook', 'acme'), { account_id: 'acme', event_url: null, secret: null });
    const hook = await json(t, env, 'account', 'webhook', 'acme', '--url', 'https://hooks.example.com/cti');
    t.match(hook, { account_id: 'acme', event_url: 'https://hooks.example.com/cti', secret: /^whsec_[A-Za-z0-9+/]{32}$/ });
    t.same(await json(t, env, 'account', 'webhook', 'acme', '--clear'), { account_id: 'acme', event_url: null, secret: hook.secret });
    t.same(await json(t, env, 'account', 'webhook', 'acme', '--url', 'http://hooks.example.com/b'), { account_id: 'acme', event_url: 'http://hooks.example.com/b', secret: hook.secret });

    // Failures (exit 1) and usage errors (exit 2); none writes, so they run side by side.
    const refused: Array<[number, RegExp, ...string[]]> = [
      [1, /account acme already exists/, 'account', 'create', 'acme'],
      [1, /no account nobody/, 'account', 'show', 'nobody'],
      [1, /no account nobody/, 'key', 'create', 'nobody'],
      [1, /no key AAAAAAAAAAAAAAAA/, 'key', 'revoke', 'AAAAAAAAAAAAAAAA'],
      [2, /account_id must match pattern/, 'account', 'create', 'bad id'],
      [2, /key_id must match pattern/, 'key', 'revoke', '../../etc/passwd'],
      [2, /account_id must match pattern/, 'account', 'show', '\u001b[2J'],
      [2, /unknown command 'frobnicate'/, 'account', 'frobnicate'],
      [2, /unknown option '--colour'/, 'account', 'list', '--colour'],
      [2, /missing required argument 'account_id'/, 'key', 'create'],
      [2, /--max-live-resources: expected an integer from 1 to 1000000, or none/, 'account', 'limits', 'acme', '--max-live-resources', '-1'],
      [2, /no gateway named 'gw9' in the configuration/, 'account', 'limits', 'acme', '--gateways', 'gw9'],
      [2, /^cti-admin: limits\.caller_ids\.0 must match pattern/, 'account', 'limits', 'acme', '--caller-ids', 'x@evil'],
      [1, /no account nobody/, 'account', 'webhook', 'nobody', '--url', 'https://x.example/'],
      [2, /--url: webhook URL must be http or https/, 'account', 'webhook', 'acme', '--url', 'file:///etc/passwd'],
      [2, /--url: webhook URL must not carry a user name or password/, 'account', 'webhook', 'acme', '--url', 'https://u:p@x.example/'],
      [2, /--url: webhook URL longer than 2048/, 'account', 'webhook', 'acme', '--url', `https://x.example/${'a'.repeat(2100)}`],
      [2, /--url and --clear exclude each other/, 'account', 'webhook', 'acme', '--url', 'https://x.example/', '--clear'],
    ];
    await Promise.all(refused.map(([code, message, ...args]) => fails(t, env, code, message, ...args)));
    t.same((await json(t, env, 'account', 'list')).length, 1, 'no failed command changed anything');
  });
}

t.test('configuration: --config file, bad settings, unreachable store', async (t) => {
  const dir = t.testdir();
  const file = join(dir, 'cti.json');
  writeFileSync(file, JSON.stringify({ dataDir: dir, gateways: [{ name: 'gw1', host: '192.0.2.1', callerId: '100' }] }));
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of Object.keys(env)) if (key.startsWith('CTI_')) delete env[key];
  const ok = await admin(env, '--config', file, '--json', 'account', 'create', 'a1', '--gateways', 'gw1');
  t.equal(ok.code, 0, ok.stderr);
  t.match(JSON.parse(ok.stdout), { limits: { gateways: ['gw1'] } }, 'gateways checked against the config file');

  const badConfig = await admin({ ...env, CTI_STORE__TYPE: 'mysql' }, '--config', file, 'account', 'list');
  t.equal(badConfig.code, 2);
  t.match(badConfig.stderr, /^cti-admin: invalid configuration: store\.type must be equal to one of the allowed values\n$/);

  const down = await admin({ ...env, CTI_STORE__TYPE: 'postgres', CTI_STORE__URL: 'postgres://cti:hunter2@localhost/cti?host=/nonexistent' }, 'account', 'list');
  t.equal(down.code, 1);
  t.match(down.stderr, /^cti-admin: cannot open the postgres store: [^\n]*\n$/);
  t.notMatch(down.stderr, /hunter2/, 'no password in the message');
});

t.test('npm run -s admin works as documented, human output by default', async (t) => {
  const dir = t.testdir();
  const env: NodeJS.ProcessEnv = { ...process.env, CTI_DATA_DIR: dir };
  for (const key of Object.keys(env)) if (key.startsWith('CTI_') && key !== 'CTI_DATA_DIR') delete env[key];
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const created = await run(npm, ['run', '-s', 'admin', '--', 'account', 'create', 'shop'], env);
  t.equal(created.code, 0, created.stderr);
  t.match(created.stdout, /^account shop \(enabled\): shop\n/);
  const key = await run(npm, ['run', '-s', 'admin', '--', 'key', 'create', 'shop'], env);
  t.equal(key.code, 0, key.stderr);
  t.match(key.stdout, /^cti_[A-Za-z0-9]{16}_[A-Za-z0-9]{40}\n\(key id /, 'the key alone on the first line');
});
