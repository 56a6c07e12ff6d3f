// README "The HTTP API": its sh blocks run as written with bash and curl
// against a real server (only the port in CTI_HTTP differs), as a user would
// after the first start (account `default`, key in data/initial-api-key).
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { startTestServer } from '../support/startTestServer.js';

const README = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const section = README.slice(README.indexOf('## The HTTP API'), README.indexOf('\n## ', README.indexOf('## The HTTP API') + 1));

t.test('the README curl examples work as written', async (t) => {
  const ts = await startTestServer();
  t.teardown(() => ts.stop());
  const key = await ts.accounts.create('default');
  const cwd = mkdtempSync(join(tmpdir(), 'cti-readme-'));
  mkdirSync(join(cwd, 'data'));
  writeFileSync(join(cwd, 'data/initial-api-key'), `${key}\n`);
  const blocks = [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
  t.equal(blocks.length, 2, 'two blocks');
  const port = new URL(ts.httpUrl).port;
  const script = ['set -euo pipefail', ...blocks].join('\n').replace('http://127.0.0.1:8089', `http://127.0.0.1:${port}`);
  t.not(script, ['set -euo pipefail', ...blocks].join('\n'), 'the port was replaced');
  const { stdout } = await promisify(execFile)('bash', ['-c', script], { cwd });
  const lines = stdout.trim().split('\n');
  t.match(lines[0], /^placed 0\.0\.0-ext\.duo_callback-\d+$/);
  const id = lines[0]!.slice('placed '.length);
  t.match(JSON.parse(lines[1]!), { res_id: id, class: 'ext.duo_callback', parties: [{}, {}] }, 'live context');
  t.same(JSON.parse(lines[2]!), { id }, 'cancelled');
  t.same(JSON.parse(lines[3]!), { status: 'ready', engine: true, store: true });
  t.match(lines[4], /^cti_constructs_total\{class="ext\.duo_callback"\} 1$/);
  t.match(ts.engine.legs[0]?.request, { requestUri: /13967446745/ }, 'party 1 was dialled');
});
