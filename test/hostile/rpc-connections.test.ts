import t from 'tap';
import { connect, type Socket } from 'node:net';
import { RpcTestClient, UpgradeRefused } from '../support/RpcTestClient.js';
import { startTestServer } from '../support/startTestServer.js';

/** Opens `n` connections without a key; how many opened and the HTTP statuses of the refused ones. */
async function openUnauthenticated(url: string, n: number, clients: RpcTestClient[]): Promise<number[]> {
  const refused: number[] = [];
  await Promise.all(
    Array.from({ length: n }, () =>
      RpcTestClient.connect(url, null).then(
        (c) => void clients.push(c),
        (err: unknown) => void refused.push(err instanceof UpgradeRefused ? err.status : -1),
      ),
    ),
  );
  return refused;
}

/** A raw TCP connection that never sends a byte; resolves once connected, with a promise of its close. */
function idleSocket(port: number, localAddress: string): Promise<{ socket: Socket; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, localAddress });
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    socket.on('error', () => undefined);
    socket.once('connect', () => resolve({ socket, closed }));
    socket.once('error', reject);
  });
}

t.test('a stranger without a key cannot hold more than listen.maxUnauthenticatedConnections; key holders still get in', async (t) => {
  const ts = await startTestServer({ env: { CTI_LISTEN__MAX_UNAUTHENTICATED_CONNECTIONS: '20' } });
  const clients: RpcTestClient[] = [];
  t.teardown(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await ts.stop();
  });
  const refused = await openUnauthenticated(ts.url, 30, clients);
  t.equal(clients.length, 20, 'exactly the limit of unauthenticated connections opened');
  t.same(refused, Array(10).fill(503), 'the rest are refused with 503 at the upgrade');

  const app = await ts.connect();
  t.equal((await app.call('sys.resource.exists', { res_id: 'x' })).result, false, 'a client with a Bearer key still connects and is served');
  await app.close();

  // A connection that authenticates leaves the unauthenticated pool: its slot is free for the next browser.
  const reply = await clients[0]!.call('sys.authenticate', { api_key: ts.apiKey });
  t.notOk(reply.error, 'sys.authenticate on a held connection works');
  t.same(await openUnauthenticated(ts.url, 2, clients), [503], 'one slot freed by the authentication, not more');
});

t.test('raw TCP connections from one address are capped at listen.maxConnectionsPerSource and idle ones are closed', async (t) => {
  const ts = await startTestServer({ env: { CTI_LISTEN__MAX_CONNECTIONS_PER_SOURCE: '8', CTI_AUTH__TIMEOUT_SECONDS: '2' } });
  const sockets: Socket[] = [];
  t.teardown(async () => {
    sockets.forEach((s) => s.destroy());
    await ts.stop();
  });
  const port = Number(new URL(ts.url).port);
  const held = await Promise.all(Array.from({ length: 12 }, () => idleSocket(port, '127.0.0.3')));
  sockets.push(...held.map((h) => h.socket));
  const early = await Promise.race([Promise.all(held.slice(8).map((h) => h.closed)).then(() => 'closed'), new Promise((r) => setTimeout(() => r('open'), 1000))]);
  t.equal(early, 'closed', 'connections over the per-source limit are closed at once');

  const app = await ts.connect();
  t.equal((await app.call('sys.resource.exists', { res_id: 'x' })).result, false, 'another address is served meanwhile');
  await app.close();

  const started = Date.now();
  const idle = await Promise.race([Promise.all(held.slice(0, 8).map((h) => h.closed)).then(() => 'closed'), new Promise((r) => setTimeout(() => r('open'), 6000))]);
  t.equal(idle, 'closed', `connections that never send an upgrade are closed after about auth.timeoutSeconds (${Date.now() - started} ms)`);
});
