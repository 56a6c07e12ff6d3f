// Where the drachtio engine tests find drachtio-server and FreeSWITCH:
//  1. DRACHTIO_HOST set: use the running servers named by
//       DRACHTIO_HOST, DRACHTIO_PORT (9022), DRACHTIO_SECRET (cymru),
//       FREESWITCH_HOST (127.0.0.1), FREESWITCH_PORT (8021), FREESWITCH_SECRET (ClueCon),
//       ESL_LISTEN_HOST (127.0.0.1: where FreeSWITCH connects back to the engine).
//  2. Otherwise, `drachtio` and `freeswitch` on PATH: start both here on free
//     loopback ports from test/telephony-config/ (see LocalServers.ts).
//  3. Otherwise: the tests are skipped, with the reason.
import { spawnSync } from 'node:child_process';
import type { DrachtioEngineConfig } from '../../../lib/config/ServerConfig.js';
import { LocalServers } from './LocalServers.js';

export interface Services {
  readonly config: DrachtioEngineConfig;
  /** The processes this run started (undefined for servers named by the environment). */
  readonly local: LocalServers | undefined;
}

export type ServicesOrSkip = Services | { readonly skip: string };

const onPath = (bin: string): boolean => spawnSync('sh', ['-c', `command -v ${bin}`]).status === 0;

export async function findServices(): Promise<ServicesOrSkip> {
  if (!onPath('sipp')) return { skip: 'SIPp not installed (apt-get install sip-tester)' };
  const env = process.env;
  if (env.DRACHTIO_HOST) {
    return {
      local: undefined,
      config: {
        type: 'drachtio',
        drachtio: { host: env.DRACHTIO_HOST, port: Number(env.DRACHTIO_PORT ?? 9022), secret: env.DRACHTIO_SECRET ?? 'cymru' },
        freeswitch: [
          {
            host: env.FREESWITCH_HOST ?? '127.0.0.1',
            port: Number(env.FREESWITCH_PORT ?? 8021),
            secret: env.FREESWITCH_SECRET ?? 'ClueCon',
          },
        ],
        eslListenHost: env.ESL_LISTEN_HOST ?? '127.0.0.1',
      },
    };
  }
  if (!onPath('drachtio') || !onPath('freeswitch')) {
    return {
      skip:
        'no drachtio-server/FreeSWITCH: set DRACHTIO_HOST (and DRACHTIO_PORT, DRACHTIO_SECRET, FREESWITCH_HOST, ' +
        'FREESWITCH_PORT, FREESWITCH_SECRET) to use running ones, or put `drachtio` and `freeswitch` on PATH ' +
        '(see docs/deploy.md)',
    };
  }
  const local = await LocalServers.start();
  return { local, config: local.engineConfig() };
}
