/** `npm start`: load the configuration, open the account store, start the server, stop cleanly on SIGINT/SIGTERM. */
import { parseArgs } from 'node:util';
import { AccountStore } from './accounts/AccountStore.js';
import { ConfigError, loadConfig } from './config/loadConfig.js';
import { CtiServer } from './CtiServer.js';
import { createEngine } from './engines/createEngine.js';
import { Store, StoreError } from './store/Store.js';
import { createLogger } from './util/logger.js';

const { values } = parseArgs({ options: { config: { type: 'string', short: 'c' } } });

let config;
try {
  const file = values.config ?? process.env.CTI_CONFIG;
  config = loadConfig({ ...(file ? { file } : {}), env: process.env });
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  console.error(`cti-server: ${err.message}`);
  process.exit(2);
}

const log = createLogger(config.logLevel);

// The store holds the event log and CDRs always, and the API keys unless authentication is off (loopback only).
let store: Store;
try {
  store = await Store.open(config.store, { log: log.child({ layer: 'store' }), backgroundCheckpoints: true });
} catch (err) {
  if (!(err instanceof StoreError)) throw err;
  console.error(`cti-server: ${err.message}`);
  process.exit(1);
}
let accounts: AccountStore | undefined;
if (config.auth.mode === 'key') {
  accounts = new AccountStore(store, { log: log.child({ layer: 'accounts' }) });
  const keyFile = await accounts.bootstrap(config.dataDir);
  // The path only: the key itself is never logged.
  if (keyFile) log.warn({ keyFile }, 'first start: created account "default" with an API key, written to keyFile (readable only by this user); give it to your application, then delete the file');
} else {
  log.warn({ host: config.listen.host }, 'authentication is off (auth.mode "none"): every connection acts for the account "default"');
}

const server = new CtiServer({
  config,
  engine: createEngine(config.engine, log.child({ layer: 'engine' }), config),
  log,
  ...(accounts ? { accounts } : {}),
  ...(config.durableEvents ? { store } : {}),
  ...(store ? { storeCheck: store } : {}),
});

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log.info({ signal }, 'shutdown requested');
    server
      .stop()
      .then(() => store.close())
      .then(
        () => process.exit(0),
        (err: unknown) => {
          log.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
  });
}

server.start().catch((err: unknown) => {
  log.fatal({ err }, 'start failed');
  process.exit(1);
});
