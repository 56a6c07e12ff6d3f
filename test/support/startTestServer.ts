/** Starts the real CtiServer on a free port over a given engine (the scripted stand-in by default). */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { Test } from 'tap';
import { loadConfig } from '../../lib/config/loadConfig.js';
import type { ServerConfig } from '../../lib/config/ServerConfig.js';
import { CtiServer } from '../../lib/CtiServer.js';
import type { TelephonyEngine } from '../../lib/telephony/TelephonyEngine.js';
import { RpcTestClient } from './RpcTestClient.js';
import { GATEWAYS } from './serviceHarness.js';
import { ScriptedTelephonyEngine } from './ScriptedTelephonyEngine.js';

export interface TestServer<E extends TelephonyEngine> {
  readonly server: CtiServer;
  readonly engine: E;
  readonly config: ServerConfig;
  readonly url: string;
}

export async function startTestServer<E extends TelephonyEngine = ScriptedTelephonyEngine>(
  options: { engine?: E; env?: Record<string, string>; media?: Record<string, Buffer | string> } = {},
): Promise<TestServer<E>> {
  const root = mkdtempSync(join(tmpdir(), 'cti-server-'));
  const config = loadConfig({
    env: {
      CTI_LISTEN__PORT: '0',
      CTI_MEDIA_DIR: join(root, 'media'),
      CTI_RECORDINGS_DIR: join(root, 'recordings'),
      CTI_GATEWAYS: JSON.stringify(GATEWAYS.map((g) => ({ ...g, maxConcurrentCalls: 100 }))),
      CTI_ENGINE__TYPE: 'none',
      CTI_LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
      ...options.env,
    },
  });
  const engine = options.engine ?? (new ScriptedTelephonyEngine() as unknown as E);
  const server = new CtiServer({ config, engine, log: pino({ level: config.logLevel }) });
  for (const [name, content] of Object.entries(options.media ?? { 'prompt.wav': 'RIFF', 'ring.wav': 'RIFF' })) {
    writeFileSync(join(config.mediaDir, name), content);
  }
  const address = await server.start();
  return { server, engine, config, url: `ws://127.0.0.1:${address.port}` };
}

/** A test server with one connected client; both are closed when the test `t` ends. */
export async function startTestServerWithClient(t: Test, env: Record<string, string> = {}) {
  const ts = await startTestServer({ env });
  const client = await RpcTestClient.connect(ts.url);
  t.teardown(async () => {
    await client.close();
    await ts.server.stop();
  });
  return { ...ts, client };
}
