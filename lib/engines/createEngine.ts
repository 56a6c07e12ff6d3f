import type { EngineConfig } from '../config/ServerConfig.js';
import type { TelephonyEngine } from '../telephony/TelephonyEngine.js';
import type { Logger } from '../util/logger.js';
import { DrachtioEngine, type DrachtioHostSettings } from './drachtio/DrachtioEngine.js';
import { EmbeddedEngine } from './embedded/EmbeddedEngine.js';
import { NoEngine } from './NoEngine.js';

/** The one place that knows which engines exist. */
export function createEngine(config: EngineConfig, log: Logger, host: DrachtioHostSettings): TelephonyEngine {
  switch (config.type) {
    case 'embedded':
      return new EmbeddedEngine(config, log);
    case 'drachtio':
      return new DrachtioEngine(config, log, host);
    case 'none':
      return new NoEngine();
  }
}
