// README's quick start, as a user runs it: `npm start` (lib/main.ts) on an
// empty store creates account "default" and a key file, logs the file's path
// (never the key), and that key opens an authenticated connection; a restart
// keeps it and creates nothing.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import t, { type Test } from 'tap';
import { RpcTestClient } from '../support/RpcTestClient.js';

interface Started {
  readonly child: ChildProcess;
  readonly url: string;
  /** Every log line until 'listening' (pino JSON). */
  readonly lines: Array<Record<string, unknown>>;
  readonly output: string;
}

async function start(t: Test, root: string): Promise<Started> {
  const child = spawn(process.execPath, ['--import=tsx', 'lib/main.ts'], {
    env: {
      ...process.env,
      CTI_LISTEN__PORT: '0',
      CTI_ENGINE__TYPE: 'none',
      CTI_DATA_DIR: join(root, 'data'),
      CTI_MEDIA_DIR: join(root, 'media'),
      CTI_RECORDINGS_DIR: join(root, 'recordings'),
      CTI_LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const lines: Array<Record<string, unknown>> = [];
  let output = '';
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not listening after 20 s: ${output}`)), 20_000);
    child.once('exit', (code) => reject(new Error(`exited with ${code}: ${output}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      output += `${line}\n`;
      const entry = JSON.parse(line) as Record<string, unknown>;
      lines.push(entry);
      if (entry.msg === 'listening') {
        clearTimeout(timer);
        resolve((entry.address as string).replace('0.0.0.0', '127.0.0.1'));
      }
    });
  });
  return { child, url, lines, output };
}

async function stop(child: ChildProcess): Promise<number | null> {
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  return exited;
}

t.test('first start: a key file, its path logged, never the key; a restart keeps it', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'cti-first-start-'));
  const keyFile = join(root, 'data', 'initial-api-key');
  const first = await start(t, root);
  const announced = first.lines.find((l) => l.keyFile !== undefined);
  t.equal(announced?.keyFile, keyFile, 'the log names the key file');
  const key = readFileSync(keyFile, 'utf8').trim();
  t.match(key, /^cti_/, 'the file holds one key');
  t.equal(statSync(keyFile).mode & 0o777, 0o600, 'readable only by the server user');
  t.notOk(first.output.includes(key) || first.output.includes(key.split('_').at(-1)!), 'the key (or its secret) is not in the log');

  const anonymous = await RpcTestClient.connect(first.url, null);
  t.match(await anonymous.call('sys.resource.exists', ['x']), { error: { code: -32004 } }, 'authentication is on by default');
  await anonymous.close();
  const client = await RpcTestClient.connect(first.url, key);
  t.equal((await client.call('sys.resource.exists', ['x'])).result, false, 'the key from the file authenticates (README: wscat -H "Authorization: Bearer ...")');
  await client.close();
  t.equal(await stop(first.child), 0, 'SIGTERM: clean exit');

  const second = await start(t, root);
  t.notOk(second.lines.some((l) => l.keyFile !== undefined), 'a restart creates no account');
  const again = await RpcTestClient.connect(second.url, key);
  t.equal((await again.call('sys.resource.exists', ['x'])).result, false, 'the account and key survived the restart');
  await again.close();
  t.equal(await stop(second.child), 0);
});
