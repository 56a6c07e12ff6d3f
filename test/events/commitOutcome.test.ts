/**
 * The event log when PostgreSQL's COMMIT fails on the wire (issue 9, "no
 * event ever lost", nor sent twice): a proxy between the pool and the
 * cluster drops the connection once, either after the server answered the
 * batch's COMMIT (it landed; the reply is lost) or just before COMMIT
 * reaches the server (it rolls back). Either way every event is committed
 * and emitted exactly once, with ids 1, 2, … and no retry loop.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import t from 'tap';
import { EventLog, type LoggedEvent, type ResourceRecord } from '../../lib/events/EventLog.js';
import type { ResourceEvent } from '../../lib/resources/ResourceRegistry.js';
import { Store } from '../../lib/store/Store.js';
import { systemClock } from '../../lib/util/Clock.js';
import { PostgresCluster } from '../support/postgres.js';

type DropMode = 'after-commit-answered' | 'before-commit-sent';

/** PostgreSQL's Unix socket name for port 5432. */
const SOCKET = '.s.PGSQL.5432';
/** A simple-protocol query "commit" as the pg driver sends it (message 'Q', then the text and its NUL). */
const COMMIT = Buffer.from('commit\0');

/** Forwards connections to the cluster's socket; when armed, drops the next COMMIT's connection as `mode` says. */
class DroppingProxy {
  armed: DropMode | null = null;
  dropped = 0;
  readonly dir = mkdtempSync(join(tmpdir(), 'cti-pgproxy-'));
  readonly #server = createServer((client) => this.#pipe(client));

  private constructor(private readonly target: string) {}

  static async start(clusterDir: string): Promise<DroppingProxy> {
    const proxy = new DroppingProxy(join(clusterDir, SOCKET));
    await new Promise<void>((resolve) => proxy.#server.listen(join(proxy.dir, SOCKET), resolve));
    return proxy;
  }

  async stop(): Promise<void> {
    await new Promise((resolve) => this.#server.close(resolve));
    rmSync(this.dir, { recursive: true, force: true });
  }

  #pipe(client: Socket): void {
    const server = createConnection(this.target);
    let dropOnReply = false;
    const drop = (): void => {
      this.dropped++;
      client.destroy();
      server.destroy();
    };
    client.on('data', (chunk) => {
      if (this.armed && chunk.includes(COMMIT)) {
        const mode = this.armed;
        this.armed = null;
        if (mode === 'before-commit-sent') return drop();
        dropOnReply = true;
      }
      server.write(chunk);
    });
    server.on('data', (chunk) => (dropOnReply ? drop() : client.write(chunk)));
    client.on('error', () => server.destroy());
    server.on('error', () => client.destroy());
    client.on('close', () => server.destroy());
    server.on('close', () => client.destroy());
  }
}

const record = (resId: string): ResourceRecord => ({
  resId,
  accountId: 'acc',
  nodeId: 'n1',
  resourceClass: 'ext.notify_call',
  processId: 1,
  ownerId: 's',
  userData: null,
  createdAt: Date.now(),
});

const progress = (resId: string, step: number): ResourceEvent => ({
  resId,
  resourceClass: 'ext.notify_call',
  name: 'on_progress',
  accountId: 'acc',
  ownerId: 's',
  params: { res_id: resId, step },
});

t.test('PostgreSQL: a COMMIT whose connection drops is settled, never written twice', async (t) => {
  let cluster: PostgresCluster;
  try {
    cluster = await PostgresCluster.start();
  } catch (err) {
    t.fail(`PostgreSQL is needed: ${(err as Error).message}`);
    return;
  }
  t.teardown(() => cluster.stop());
  const proxy = await DroppingProxy.start(cluster.dir);
  t.teardown(() => proxy.stop());

  for (const mode of ['after-commit-answered', 'before-commit-sent'] as const) {
    t.test(mode, async (t) => {
      const url = (await cluster.createDatabase()).replace(/host=[^&]*/, `host=${encodeURIComponent(proxy.dir)}`);
      const store = await Store.open({ type: 'postgres', url, poolSize: 2 });
      t.teardown(() => store.close());
      const lines: string[] = [];
      const log = pino({ level: 'warn' }, { write: (line: string) => void lines.push(line) });
      const eventLog = new EventLog(store, { clock: systemClock, log });
      const emitted: LoggedEvent[] = [];
      eventLog.on('committed', (e) => emitted.push(e));

      proxy.armed = mode;
      const dropsBefore = proxy.dropped;
      // One batch: a resource row (its key would conflict if written twice) and two events.
      const stored = eventLog.constructed(record('r1'));
      eventLog.append(progress('r1', 1));
      eventLog.append(progress('r1', 2));
      await stored;
      await eventLog.flush();
      t.equal(proxy.dropped, dropsBefore + 1, 'the proxy dropped the connection at that COMMIT');

      eventLog.append(progress('r1', 3)); // the log goes on after it
      await eventLog.flush();

      t.same(
        emitted.map((e) => [e.eventId, e.params.step]),
        [
          [1, 1],
          [2, 2],
          [3, 3],
        ],
        'each event emitted once, ids without gaps',
      );
      const rows = await store.db.selectFrom('events').select(['event_id', 'params']).orderBy('event_id').execute();
      t.same(
        rows.map((r) => [Number(r.event_id), (JSON.parse(r.params) as { step: number }).step]),
        [
          [1, 1],
          [2, 2],
          [3, 3],
        ],
        'each event stored once',
      );
      t.equal((await store.db.selectFrom('resources').select('res_id').execute()).length, 1, 'one resource row');
      const warned = lines.some((l) => l.includes('had landed although its COMMIT failed'));
      t.equal(warned, mode === 'after-commit-answered', mode === 'after-commit-answered' ? 'found to have landed' : 'found not to have landed, so written again');
    });
  }
});
