import type { EngineConfig, ServerConfig } from '../config/ServerConfig.js';
import type { TelephonyEngine } from '../telephony/TelephonyEngine.js';
import type { Logger } from '../util/logger.js';
import { NoEngine } from './NoEngine.js';

/** The one place that knows which engines exist. */
export function createEngine(config: EngineConfig, server: ServerConfig, log: Logger): TelephonyEngine {
  void server;
  void log;
  switch (config.type) {
    case 'none':
      return new NoEngine();
    default:
      throw new Error(`engine '${config.type}' is not built in yet`);
  }
}
