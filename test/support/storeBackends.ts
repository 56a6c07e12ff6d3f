/**
 * The databases the store test suites run against, so each suite is written
 * once: SQLite (a file per store in a temp folder) and PostgreSQL (a fresh
 * database per store in one throwaway cluster per test file).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import type { StoreConfig } from '../../lib/config/ServerConfig.js';
import { PostgresCluster } from './postgres.js';

export interface StoreBackend {
  readonly name: StoreConfig['type'];
  /** Config of a new, empty store. */
  newStore(): Promise<StoreConfig>;
}

/** Both backends; resources are released in `t`'s teardown. */
export function storeBackends(t: Test): StoreBackend[] {
  const dir = mkdtempSync(join(tmpdir(), 'cti-store-'));
  let files = 0;
  let cluster: Promise<PostgresCluster> | undefined;
  t.teardown(async () => {
    rmSync(dir, { recursive: true, force: true });
    if (cluster) await (await cluster).stop();
  });
  return [
    { name: 'sqlite', newStore: async () => ({ type: 'sqlite', path: join(dir, `store${++files}`, 'cti.sqlite') }) },
    {
      name: 'postgres',
      newStore: async () => {
        cluster ??= PostgresCluster.start();
        return { type: 'postgres', url: await (await cluster).createDatabase(), poolSize: 4 };
      },
    },
  ];
}
