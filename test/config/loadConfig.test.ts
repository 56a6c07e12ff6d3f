import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execFileSync } from 'node:child_process';
import { EMBEDDED_LIMIT_DEFAULTS } from '../../lib/config/configSchema.js';
import { ConfigError, loadConfig } from '../../lib/config/loadConfig.js';

const dir = mkdtempSync(join(tmpdir(), 'cti-config-'));
const file = (name: string, content: unknown) => {
  const path = join(dir, name);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
};

t.test('defaults', async (t) => {
  const c = loadConfig({ env: {} });
  t.match(c, {
    nodeId: '0.0.0',
    listen: { host: '127.0.0.1', port: 8088, maxFrameBytes: 65536, allowedOrigins: [] },
    http: { enabled: false, host: '127.0.0.1', port: 8089, maxBodyBytes: 65536, requestTimeoutSeconds: 30 },
    auth: { mode: 'key', timeoutSeconds: 10, maxFailedAttempts: 10, failedAttemptsWindowSeconds: 60 },
    engine: { type: 'embedded', sipHost: '127.0.0.1', sipPort: 5060, rtpPortMin: 20000, mediaTimeoutSeconds: 30 },
    gateways: [],
    limits: { duoRingSeconds: 45, notifyRingSeconds: 50 },
  });
  t.same(
    Object.fromEntries(Object.keys(EMBEDDED_LIMIT_DEFAULTS).map((k) => [k, (c.engine as unknown as Record<string, unknown>)[k]])),
    { sipMaxMessageBytes: 65535, sipMaxTcpConnections: 256, sipMaxTcpConnectionsPerSource: 16, sipTcpIdleSeconds: 60, sipMaxServerTransactions: 20000, rtpLatchSeconds: 5 },
    'the SIP and RTP bounds of the embedded engine (docs/configuration.md)',
  );
});

t.test('file, then environment on top', async (t) => {
  const path = file('a.json', {
    nodeId: '1.2.3',
    listen: { port: 9000 },
    engine: { type: 'drachtio', drachtio: { secret: 's' }, freeswitch: [{ host: '10.0.0.5' }] },
    gateways: [{ name: 'gw1', host: '10.0.0.1', callerId: '100' }],
  });
  const c = loadConfig({ file: path, env: { CTI_LISTEN__PORT: '9100', CTI_LIMITS__MAX_RESOURCES: '7', CTI_NODE_ID: '4.5.6' } });
  t.equal(c.listen.port, 9100);
  t.equal(c.limits.maxResources, 7);
  t.equal(c.nodeId, '4.5.6');
  t.match(c.engine, {
    type: 'drachtio',
    drachtio: { host: '127.0.0.1', port: 9022, secret: 's' },
    freeswitch: [{ host: '10.0.0.5', port: 8021, secret: 'ClueCon' }],
  });
  t.match(c.gateways, [{ name: 'gw1', port: 5060, transport: 'udp', maxConcurrentCalls: 100 }]);
  const gw = loadConfig({ env: { CTI_GATEWAYS: '[{"name":"x","host":"h","callerId":"1","transport":"tcp"}]' } });
  t.equal(gw.gateways[0]!.transport, 'tcp', 'JSON values from the environment');
});

t.test('store: SQLite in the data folder by default, PostgreSQL from the environment', async (t) => {
  const c = loadConfig({ env: {} });
  t.equal(c.dataDir, resolve('data'));
  t.same(c.store, { type: 'sqlite', path: resolve('data', 'cti.sqlite') });
  const moved = loadConfig({ env: { CTI_DATA_DIR: '/var/lib/cti', CTI_STORE__PATH: 'accounts.db' } });
  t.same(moved.store, { type: 'sqlite', path: '/var/lib/cti/accounts.db' }, 'a relative path is inside dataDir');
  t.same(loadConfig({ env: { CTI_STORE__PATH: '/srv/cti.db' } }).store, { type: 'sqlite', path: '/srv/cti.db' });
  const pg = loadConfig({ env: { CTI_STORE__TYPE: 'postgres', CTI_STORE__URL: 'postgres://cti:pw@db:5432/cti' } });
  t.same(pg.store, { type: 'postgres', url: 'postgres://cti:pw@db:5432/cti', poolSize: 10 });
  const fromFile = loadConfig({ file: file('pg.json', { store: { type: 'postgres', url: 'postgresql://db/cti', poolSize: 3 } }), env: {} });
  t.same(fromFile.store, { type: 'postgres', url: 'postgresql://db/cti', poolSize: 3 });
});

t.test('bad values stop with one line naming the setting', async (t) => {
  const cases: Array<[Parameters<typeof loadConfig>[0], RegExp]> = [
    [{ env: { CTI_LISTEN__PORT: '70000' } }, /^invalid configuration: listen\.port must be <= 65535$/],
    [{ env: { CTI_LISTEN__PORT: 'abc' } }, /listen\.port must be integer/],
    [{ env: { CTI_ENGINE__TYPE: 'asterisk' } }, /engine\.type must be equal to one of/],
    [{ env: { CTI_ENGINE__TYPE: 'drachtio' } }, /engine must have required property 'drachtio'/],
    [{ env: { CTI_ENGINE__SIP_PROT: '1' } }, /engine\.sipProt is not a known setting/],
    [{ env: { CTI_ENGINE__SIP_MAX_MESSAGE_BYTES: '512' } }, /engine\.sipMaxMessageBytes must be >= 1500/],
    [{ env: { CTI_COLOUR: 'red' } }, /colour is not a known setting/],
    [{ env: { CTI_GATEWAYS: '[{"name":"a","host":"h"}]' } }, /gateways\.0 must have required property 'callerId'/],
    [
      { env: { CTI_GATEWAYS: '[{"name":"a","host":"h","callerId":"1"},{"name":"a","host":"i","callerId":"1"}]' } },
      /name 'a' is used twice/,
    ],
    [{ env: { CTI_DEFAULT_GATEWAY: 'nope' } }, /defaultGateway: no gateway is named 'nope'/],
    [{ env: { CTI_ENGINE__RTP_PORT_MIN: '30000', CTI_ENGINE__RTP_PORT_MAX: '20000' } }, /rtpPortMin must be below/],
    [{ env: { CTI_RINGBACK_FILE: '../ring.wav' } }, /ringbackFile must be a file name inside mediaDir/],
    [{ env: { CTI_RINGBACK_FILE: '/etc/ring.wav' } }, /ringbackFile must be a file name inside mediaDir/],
    [{ env: { CTI_STORE__TYPE: 'mysql' } }, /store\.type must be equal to one of/],
    [{ env: { CTI_STORE__TYPE: 'postgres' } }, /store must have required property 'url'/],
    [{ env: { CTI_STORE__TYPE: 'postgres', CTI_STORE__URL: 'mysql://x:secret@db/cti' } }, /^invalid configuration: store\.url must match pattern "\^postgres\(ql\)\?:\/\/"$/],
    [{ env: { CTI_STORE__URL: 'postgres://db/cti' } }, /store\.url is not a known setting/],
    [{ env: { CTI_STORE__TYPE: 'postgres', CTI_STORE__URL: 'postgres://db/cti', CTI_STORE__POOL_SIZE: '0' } }, /store\.poolSize must be >= 1/],
    [{ env: { CTI_AUTH__MODE: 'none', CTI_LISTEN__HOST: '0.0.0.0' } }, /^invalid configuration: auth\.mode "none" is allowed only on a loopback listen\.host, not 0\.0\.0\.0$/],
    [{ env: { CTI_AUTH__MODE: 'none', CTI_LISTEN__HOST: '192.0.2.1' } }, /allowed only on a loopback/],
    [{ env: { CTI_AUTH__MODE: 'none', CTI_LISTEN__HOST: '::' } }, /allowed only on a loopback/],
    [{ env: { CTI_AUTH__MODE: 'none', CTI_LISTEN__HOST: '127.evil.example' } }, /allowed only on a loopback/],
    [{ env: { CTI_AUTH__MODE: 'open' } }, /auth\.mode must be equal to one of/],
    [{ env: { CTI_LISTEN__ALLOWED_ORIGINS: '["https://a.example/path"]' } }, /listen\.allowedOrigins\.0 must match pattern/],
    [{ env: { CTI_LISTEN__ALLOWED_ORIGINS: '["*"]' } }, /listen\.allowedOrigins\.0 must match pattern/],
    [{ file: join(dir, 'missing.json'), env: {} }, /cannot read config file/],
    [{ file: file('bad.json', '{nope'), env: {} }, /is not valid JSON/],
  ];
  for (const [sources, message] of cases) {
    let error: unknown;
    try {
      loadConfig(sources);
    } catch (err) {
      error = err;
    }
    t.ok(error instanceof ConfigError, `${String(message)} is a ConfigError`);
    t.match((error as Error).message, message);
    t.notOk((error as Error).message.includes('\n'), 'one line');
  }
});

t.test('authentication off only on loopback addresses', async (t) => {
  for (const host of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', '::ffff:127.0.0.1']) {
    t.equal(loadConfig({ env: { CTI_AUTH__MODE: 'none', CTI_LISTEN__HOST: host } }).auth.mode, 'none', host);
  }
  const http = { CTI_AUTH__MODE: 'none', CTI_HTTP__ENABLED: 'true', CTI_HTTP__HOST: '0.0.0.0' };
  t.throws(() => loadConfig({ env: http }), { message: 'invalid configuration: auth.mode "none" is allowed only on a loopback http.host, not 0.0.0.0' });
  t.equal(loadConfig({ env: { ...http, CTI_HTTP__ENABLED: 'false' } }).auth.mode, 'none', 'a disabled HTTP API binds nothing');
});

t.test('the server refuses a bad setting with exit code 2 and one line', async (t) => {
  const cases: Array<[Record<string, string>, string]> = [
    [{ CTI_LISTEN__PORT: '-1' }, 'cti-server: invalid configuration: listen.port must be >= 0'],
    [
      { CTI_AUTH__MODE: 'none', CTI_LISTEN__HOST: '0.0.0.0' },
      'cti-server: invalid configuration: auth.mode "none" is allowed only on a loopback listen.host, not 0.0.0.0',
    ],
  ];
  for (const [env, line] of cases) {
    let status = 0;
    let stderr = '';
    try {
      execFileSync(process.execPath, ['--import=tsx', 'lib/main.ts'], { env: { ...process.env, ...env }, stdio: 'pipe', timeout: 20_000 });
    } catch (err) {
      const e = err as { status: number; stderr: Buffer };
      status = e.status;
      stderr = e.stderr.toString();
    }
    t.equal(status, 2, JSON.stringify(env));
    t.equal(stderr.trim(), line);
  }
});
