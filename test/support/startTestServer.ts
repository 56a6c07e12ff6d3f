/** Starts the real CtiServer on a free port over a given engine (the scripted stand-in by default). */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { Test } from 'tap';
import type { AccountLimits } from '../../lib/accounts/Account.js';
import { loadConfig } from '../../lib/config/loadConfig.js';
import type { ServerConfig, StoreConfig } from '../../lib/config/ServerConfig.js';
import { AccountStore } from '../../lib/accounts/AccountStore.js';
import { CtiServer } from '../../lib/CtiServer.js';
import { Store } from '../../lib/store/Store.js';
import type { TelephonyEngine } from '../../lib/telephony/TelephonyEngine.js';
import { RpcTestClient } from './RpcTestClient.js';
import { GATEWAYS } from './serviceHarness.js';
import { ScriptedTelephonyEngine } from './ScriptedTelephonyEngine.js';

/** The accounts of a test server, as an operator manages them (the real AccountStore over SQLite). */
export interface TestAccounts {
  /** Creates an enabled account, without limits unless given (any caller id); returns a new API key of it. */
  create(accountId: string, limits?: Partial<AccountLimits>): Promise<string>;
  createKey(accountId: string): Promise<string>;
  revokeKey(key: string): Promise<void>;
  setEnabled(accountId: string, enabled: boolean): Promise<void>;
  setLimits(accountId: string, limits: Partial<AccountLimits>): Promise<void>;
}

export interface TestServer<E extends TelephonyEngine> {
  readonly server: CtiServer;
  readonly engine: E;
  readonly config: ServerConfig;
  readonly url: string;
  /** Base URL of the HTTP API (`http://127.0.0.1:<port>`). */
  readonly httpUrl: string;
  /** The account every client of `connect()` uses, and a key of it. */
  readonly accountId: string;
  readonly apiKey: string;
  readonly accounts: TestAccounts;
  /** The server's store (events, CDRs, accounts). */
  readonly store: Store;
  /** A client authenticated with `apiKey` (Bearer header at the upgrade). */
  connect(): Promise<RpcTestClient>;
  /** Stops the server, then closes the account store (a PostgreSQL pool would keep the test process alive). */
  stop(): Promise<void>;
}

export const TEST_ACCOUNT = 'test';

export async function startTestServer<E extends TelephonyEngine = ScriptedTelephonyEngine>(
  options: {
    engine?: E;
    env?: Record<string, string>;
    media?: Record<string, Buffer | string>;
    /** The account store; default: SQLite in the server's temporary folder. */
    store?: StoreConfig;
  } = {},
): Promise<TestServer<E>> {
  const root = mkdtempSync(join(tmpdir(), 'cti-server-'));
  const config = loadConfig({
    env: {
      CTI_LISTEN__PORT: '0',
      CTI_HTTP__ENABLED: 'true',
      CTI_HTTP__PORT: '0',
      CTI_MEDIA_DIR: join(root, 'media'),
      CTI_DATA_DIR: join(root, 'data'),
      CTI_RECORDINGS_DIR: join(root, 'recordings'),
      CTI_GATEWAYS: JSON.stringify(GATEWAYS.map((g) => ({ ...g, maxConcurrentCalls: 100 }))),
      CTI_ENGINE__TYPE: 'none',
      CTI_LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
      ...(options.store ? { CTI_STORE: JSON.stringify(options.store) } : {}),
      ...options.env,
    },
  });
  const store = await Store.open(config.store);
  const directory = new AccountStore(store);
  const keyIds = new Map<string, string>();
  const createKey = async (accountId: string): Promise<string> => {
    const { key, keyId } = await directory.createKey(accountId);
    keyIds.set(key, keyId);
    return key;
  };
  const accounts: TestAccounts = {
    create: async (accountId, limits) => {
      await directory.create({ accountId, limits: { callerIds: null, ...limits } });
      return createKey(accountId);
    },
    createKey,
    revokeKey: async (key) => void (await directory.revokeKey(keyIds.get(key)!)),
    setEnabled: async (accountId, enabled) => void (await directory.setEnabled(accountId, enabled)),
    setLimits: async (accountId, limits) => void (await directory.setLimits(accountId, limits)),
  };
  // A store given again (a restart) already has the account: a new key of it.
  const apiKey = (await directory.get(TEST_ACCOUNT)) ? await createKey(TEST_ACCOUNT) : await accounts.create(TEST_ACCOUNT);
  const engine = options.engine ?? (new ScriptedTelephonyEngine() as unknown as E);
  const server = new CtiServer({ config, engine, log: pino({ level: config.logLevel }), accounts: directory, store });
  for (const [name, content] of Object.entries(options.media ?? { 'prompt.wav': 'RIFF', 'ring.wav': 'RIFF' })) {
    writeFileSync(join(config.mediaDir, name), content);
  }
  const address = await server.start();
  const url = `ws://127.0.0.1:${address.port}`;
  const httpUrl = `http://127.0.0.1:${server.httpAddress?.port}`;
  return {
    server,
    engine,
    config,
    url,
    httpUrl,
    store,
    accountId: TEST_ACCOUNT,
    apiKey,
    accounts,
    connect: () => RpcTestClient.connect(url, apiKey),
    stop: () => server.stop().then(() => store.close()),
  };
}

/** A test server with one connected client; both are closed when the test `t` ends. */
export async function startTestServerWithClient(t: Test, env: Record<string, string> = {}) {
  const ts = await startTestServer({ env });
  const client = await ts.connect();
  t.teardown(async () => {
    await client.close();
    await ts.stop();
  });
  return { ...ts, client };
}
