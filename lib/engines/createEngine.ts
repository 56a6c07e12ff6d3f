import type { EngineConfig } from '../config/ServerConfig.js';
import type { TelephonyEngine } from '../telephony/TelephonyEngine.js';
import type { Logger } from '../util/logger.js';
import { DrachtioEngine, type LocalDirs } from './drachtio/DrachtioEngine.js';
import { EmbeddedEngine } from './embedded/EmbeddedEngine.js';
import { NoEngine } from './NoEngine.js';

/** The one place that knows which engines exist. */
export function createEngine(config: EngineConfig, log: Logger, dirs: LocalDirs): TelephonyEngine {
  switch (config.type) {
    case 'embedded':
      return new EmbeddedEngine(config, log);
    case 'drachtio':
      return new DrachtioEngine(config, log, dirs);
    case 'none':
      return new NoEngine();
  }
}
