/**
 * Soak (issue 9): short calls against a SIPp carrier while the listening
 * client drops its connection at random and resumes from its last event_id
 * (docs/examples/replayingClient.ts), with one `kill -9` of the server and a
 * restart on the same store halfway. Ends with, after dedupe by event_id:
 * exactly one on_released per constructed res_id, none missing, and no
 * dialog left up at the carrier. `npm test` runs SOAK_CALLS (default 300);
 * `npm run soak` runs 10,000. Once per store: SQLite and PostgreSQL
 * (SOAK_STORE=sqlite or postgres runs one).
 */
import dgram from 'node:dgram';
import net from 'node:net';
import t from 'tap';
import { ReplayingClient } from '../../docs/examples/replayingClient.js';
import { SIPP_MISSING, sippInstalled } from '../engines/embedded/harness.js';
import { RpcTestClient } from '../support/RpcTestClient.js';
import type { StoreConfig } from '../../lib/config/ServerConfig.js';
import { embeddedServerEnv, startServerProcess, type ServerProcess } from '../support/serverProcess.js';
import { SippCarrier } from '../support/sipp/SippCarrier.js';
import { storeBackends } from '../support/storeBackends.js';

const CALLS = Number(process.env.SOAK_CALLS ?? 300);
const RATE = Number(process.env.SOAK_RATE ?? 50);
const ONLY_STORE = process.env.SOAK_STORE;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function freeTcpPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

if (!sippInstalled()) {
  t.fail(SIPP_MISSING);
} else {
  for (const backend of storeBackends(t).filter((b) => ONLY_STORE === undefined || b.name === ONLY_STORE)) {
    t.test(`soak, ${backend.name}: ${CALLS} calls, random reconnects, one kill -9 + restart`, { timeout: Math.max(120_000, (CALLS / RATE) * 3000 + 60_000) }, async (t) => {
      let store: StoreConfig;
      try {
        store = await backend.newStore();
      } catch (err) {
        return void t.pass(`${backend.name} skipped`, { skip: `${backend.name} unavailable: ${(err as Error).message}` });
      }
      const wall = Date.now();
      const carrier = await SippCarrier.start({ traceMessages: false, extraArgs: ['-buff_size', '4194304'] });
      t.teardown(() => carrier.stop());
      const ear = dgram.createSocket('udp4');
      await new Promise<void>((resolve) => ear.bind(0, '127.0.0.1', resolve));
      t.teardown(() => ear.close());
      const port = ear.address().port;
      const env = await embeddedServerEnv(carrier, {
        rtpPortMin: 40000 + 2 * Math.floor(Math.random() * 1000),
        rtpPorts: 2000,
        maxCalls: 5000,
        // Fixed, so the restarted server is where the clients reconnect.
        listenPort: await freeTcpPort(),
        store,
      });
      let server: ServerProcess = await startServerProcess(env);
      t.teardown(() => server.kill());

      const releasedBy = new Map<string, number>();
      let delivered = 0;
      const listener = new ReplayingClient({
        url: server.url,
        apiKey: null,
        lastEventId: 0,
        onEvent: (method, params) => {
          delivered++;
          if (method.endsWith('.on_released')) releasedBy.set(params.res_id, (releasedBy.get(params.res_id) ?? 0) + 1);
        },
      });
      await listener.connect();
      t.teardown(() => listener.stop());
      let drops = 0;
      const dropper = setInterval(() => {
        if (Math.random() < 0.3) {
          drops++;
          listener.drop();
        }
      }, 250);
      t.teardown(() => clearInterval(dropper));

      const constructed: string[] = [];
      let refused = 0;
      const refusedWhy = new Map<string, number>();
      let maker = await RpcTestClient.connect(server.url, null);
      const construct = async (i: number): Promise<void> => {
        const reply = await Promise.race([
          maker.call('ext.duo_callback.construct', { to1_uri: carrier.uri(`answer-${port}`), to2_uri: carrier.uri(`hangup-0.3-${port}`), max_answer_seconds: 30, user_data: `soak-${i}` }).catch(() => null), // no reply at all (the kill, or a stalled server): counted below
          sleep(5000).then(() => null),
        ]);
        const resId = (reply?.result as { res_id?: string } | undefined)?.res_id;
        if (resId) return void constructed.push(resId);
        // In flight at the kill, refused, or not answered in 5 s: not counted as constructed.
        refused++;
        const why = reply ? ((reply.error as { message?: string } | undefined)?.message ?? 'error') : 'no reply in 5 s';
        refusedWhy.set(why, (refusedWhy.get(why) ?? 0) + 1);
      };
      const start = Date.now();
      const pending: Promise<void>[] = [];
      for (let i = 0; i < CALLS; i++) {
        if (i === Math.floor(CALLS / 2)) {
          await Promise.race([Promise.all(pending.splice(0)), sleep(200)]);
          await server.kill();
          await maker.close().catch(() => undefined);
          server = await startServerProcess(env);
          maker = await RpcTestClient.connect(server.url, null);
        }
        pending.push(construct(i));
        const due = start + ((i + 1) * 1000) / RATE;
        if (due > Date.now()) await sleep(due - Date.now());
      }
      await Promise.all(pending);
      const deadline = Date.now() + 30_000;
      while (Date.now() < deadline && constructed.some((id) => !releasedBy.has(id))) await sleep(200);
      clearInterval(dropper);
      await sleep(1000); // late duplicates would show up here
      await maker.close();

      const once = constructed.filter((id) => releasedBy.get(id) === 1).length;
      const missing = constructed.filter((id) => !releasedBy.has(id)).length;
      const twice = constructed.filter((id) => (releasedBy.get(id) ?? 0) > 1).length;
      await sleep(1500);
      await carrier.stop();
      const stats = await carrier.stats();
      t.comment(
        `soak (${backend.name}, ${RATE}/s, ${((Date.now() - wall) / 1000).toFixed(0)} s wall): ${CALLS} constructs sent, ${constructed.length} constructed, ${refused} not constructed ${JSON.stringify(Object.fromEntries(refusedWhy))} — on_released exactly once ${once}, missing ${missing}, more than once ${twice}; ${delivered} events delivered, ${drops} client drops; carrier ${stats.totalCalls} calls, ${stats.currentCalls} left up`,
      );
      t.ok(constructed.length >= CALLS * 0.9, 'most constructs were answered');
      t.equal(missing, 0, 'no constructed res_id without its on_released');
      t.equal(twice, 0, 'no res_id with two on_released after dedupe by event_id');
      t.equal(once, constructed.length, 'exactly one on_released per constructed res_id');
      t.equal(stats.currentCalls, 0, 'no dialog left up at the carrier');
    });
  }
}
