/**
 * SQLite WAL checkpoints off the event loop (lib/store/WalCheckpointer.ts):
 * with background checkpoints the server's connection does not checkpoint
 * below its bound, and the worker still copies the WAL into the database
 * file within about an interval; close() ends the worker.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import t, { type Test } from 'tap';
import { Store } from '../../lib/store/Store.js';
import { CHECKPOINT_INTERVAL_MS, FALLBACK_AUTOCHECKPOINT_PAGES } from '../../lib/store/WalCheckpointer.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function open(t: Test, backgroundCheckpoints: boolean): Promise<{ store: Store; path: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'cti-wal-'));
  const path = join(dir, 'cti.sqlite');
  const store = await Store.open({ type: 'sqlite', path }, { backgroundCheckpoints });
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return { store, path };
}

/** 1,500 one-event commits, as the event log makes them: about 3,000 WAL pages. */
async function writeCommits(store: Store): Promise<void> {
  for (let i = 1; i <= 1500; i++) {
    await store.db.transaction().execute((trx) =>
      trx.insertInto('events').values({ account_id: 'a', event_id: i, res_id: `r${i}`, method: 'ext.duo_callback.on_progress', params: '{"x":"' + 'y'.repeat(200) + '"}', created_at: i }).execute(),
    );
  }
}

const autocheckpoint = async (store: Store): Promise<number> =>
  Number(Object.values((await sql<Record<string, number>>`pragma wal_autocheckpoint`.execute(store.db)).rows[0]!)[0]);

t.test('background checkpoints: the worker copies the WAL into the file; the server connection only past its bound', async (t) => {
  const { store, path } = await open(t, true);
  t.equal(await autocheckpoint(store), FALLBACK_AUTOCHECKPOINT_PAGES, 'the server connection checkpoints only past the bound');
  const before = statSync(path).size;
  await writeCommits(store);
  const written = statSync(`${path}-wal`).size;
  t.ok(written > 1000 * 4096, `the WAL grew past SQLite's default checkpoint point (${written} bytes)`);
  // Within a few intervals the worker has checkpointed: the database file holds the rows now.
  let after = statSync(path).size;
  for (let i = 0; i < 10 && after <= before + 100 * 4096; i++) {
    await sleep(CHECKPOINT_INTERVAL_MS / 2);
    after = statSync(path).size;
  }
  t.ok(after > before + 100 * 4096, `the database file grew from ${before} to ${after} bytes without a checkpoint on this thread`);
  const started = performance.now();
  await store.close();
  t.ok(performance.now() - started < 5000, 'close() stops the worker');
});

t.test('without background checkpoints (the admin command): SQLite checkpoints in the committing connection as before', async (t) => {
  const { store } = await open(t, false);
  t.equal(await autocheckpoint(store), 1000, "SQLite's default");
  await store.close();
});
