import type { EngineConfig } from '../config/ServerConfig.js';
import type { TelephonyEngine } from '../telephony/TelephonyEngine.js';
import type { Logger } from '../util/logger.js';
import { EmbeddedEngine } from './embedded/EmbeddedEngine.js';
import { NoEngine } from './NoEngine.js';

/** The one place that knows which engines exist. */
export function createEngine(config: EngineConfig, log: Logger): TelephonyEngine {
  switch (config.type) {
    case 'embedded':
      return new EmbeddedEngine(config, log);
    case 'none':
      return new NoEngine();
    default:
      throw new Error(`engine '${config.type}' is not built in yet`);
  }
}
