import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { Logger } from '../util/logger.js';

/** How often the worker copies the WAL into the database file (and syncs both). */
export const CHECKPOINT_INTERVAL_MS = 1000;
/**
 * The server's own connection still checkpoints (on the event loop) once the
 * WAL holds this many pages (4 KiB each): the bound on the WAL file if the
 * worker cannot keep up or is gone. SQLite's default is 1,000.
 */
export const FALLBACK_AUTOCHECKPOINT_PAGES = 16_384;

/**
 * The worker's code, evaluated as CommonJS (the same text runs under tsx and
 * from dist/): its own better-sqlite3 connection to the file, a PASSIVE
 * checkpoint every interval (never waits for the server's writer), closed on
 * any message from the parent.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const SQLite = require(workerData.driver);
const db = new SQLite(workerData.path);
db.pragma('busy_timeout = 1000');
const timer = setInterval(() => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch (err) {
    parentPort.postMessage(String(err && err.message));
  }
}, workerData.intervalMs);
parentPort.once('message', () => {
  clearInterval(timer);
  db.close();
  parentPort.close();
});
`;

/**
 * Moves SQLite's WAL checkpoints off the event loop (issue 9, Speed). With
 * one commit per event-loop turn the WAL grows by a few pages per commit, so
 * SQLite's automatic checkpoint (every 1,000 pages, in the committing
 * connection) ran about twice a second at 200 duo_callbacks/s, each copying
 * ~4 MB and syncing the file inside a commit: 5–70 ms with the event loop
 * stopped (measured: docs/performance.md). Here a worker thread with its own
 * connection checkpoints every {@link CHECKPOINT_INTERVAL_MS}; the server's
 * connection keeps a far higher automatic threshold only as a bound.
 *
 * Durability: in WAL mode with `synchronous=NORMAL` the WAL is synced by each
 * checkpoint, so a power loss can lose the commits of about the last
 * interval (docs/operations.md#event-log-and-cdrs); a process crash loses none.
 */
export class WalCheckpointer {
  readonly #worker: Worker;
  /** Resolves when the worker thread has ended (stopped, or failed on its own). */
  readonly #exited: Promise<void>;

  private constructor(worker: Worker) {
    this.#worker = worker;
    this.#exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  }

  /** Starts the worker on the database file at `path` (already in WAL mode). */
  static start(path: string, log: Logger | undefined, intervalMs = CHECKPOINT_INTERVAL_MS): WalCheckpointer {
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { path, driver, intervalMs } });
    const checkpointer = new WalCheckpointer(worker);
    worker.on('message', (message: string) => log?.warn({ err: message }, 'WAL checkpoint failed; the server connection checkpoints itself past its bound'));
    worker.on('error', (err) => log?.warn({ err }, 'WAL checkpoint worker failed; the server connection checkpoints itself past its bound'));
    // The worker never keeps the process alive on its own.
    worker.unref();
    return checkpointer;
  }

  /** Stops the worker after its current checkpoint; resolves once its connection is closed. */
  async stop(): Promise<void> {
    // Referenced again: waiting for the worker must keep the process alive until it has closed its connection.
    this.#worker.ref();
    this.#worker.postMessage('stop');
    await this.#exited;
  }
}
