import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
    listen: { host: '127.0.0.1', port: 8088, maxFrameBytes: 65536 },
    engine: { type: 'embedded', sipHost: '127.0.0.1', sipPort: 5060, rtpPortMin: 20000, mediaTimeoutSeconds: 30 },
    gateways: [],
    limits: { duoRingSeconds: 45, notifyRingSeconds: 50 },
  });
  t.same(
    Object.fromEntries(Object.keys(EMBEDDED_LIMIT_DEFAULTS).map((k) => [k, (c.engine as unknown as Record<string, unknown>)[k]])),
    { sipMaxMessageBytes: 65535, sipMaxTcpConnections: 256, sipMaxTcpConnectionsPerSource: 16, sipTcpIdleSeconds: 60, sipMaxServerTransactions: 2000, rtpLatchSeconds: 5 },
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

t.test('the server refuses a bad setting with exit code 2 and one line', async (t) => {
  let status = 0;
  let stderr = '';
  try {
    execFileSync(process.execPath, ['--import=tsx', 'lib/main.ts'], {
      env: { ...process.env, CTI_LISTEN__PORT: '-1' },
      stdio: 'pipe',
      timeout: 20_000,
    });
  } catch (err) {
    const e = err as { status: number; stderr: Buffer };
    status = e.status;
    stderr = e.stderr.toString();
  }
  t.equal(status, 2);
  t.equal(stderr.trim(), 'cti-server: invalid configuration: listen.port must be >= 0');
});
