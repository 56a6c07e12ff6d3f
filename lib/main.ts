/** `npm start`: load the configuration, start the server, stop cleanly on SIGINT/SIGTERM. */
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from './config/loadConfig.js';
import { CtiServer } from './CtiServer.js';
import { createEngine } from './engines/createEngine.js';
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
const server = new CtiServer({ config, engine: createEngine(config.engine, log.child({ layer: 'engine' }), config), log });

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log.info({ signal }, 'shutdown requested');
    server.stop().then(
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
