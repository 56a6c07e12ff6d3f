/**
 * The baseline (a child of bench/run.ts): a bare two-socket UDP relay per
 * call, the least any relay must do. Each socket latches to the source of
 * what it receives and forwards every packet unchanged through the other.
 */
import dgram from 'node:dgram';

interface Request {
  readonly id: number;
  readonly type: string;
  readonly [key: string]: unknown;
}

const sockets: dgram.Socket[] = [];

async function bind(host: string): Promise<dgram.Socket> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, host, () => resolve());
  });
  socket.on('error', () => {});
  sockets.push(socket);
  return socket;
}

async function openPair(host: string): Promise<[number, number]> {
  const a = await bind(host);
  const b = await bind(host);
  let toA: dgram.RemoteInfo | undefined;
  let toB: dgram.RemoteInfo | undefined;
  a.on('message', (msg, from) => {
    toA = from;
    if (toB) b.send(msg, toB.port, toB.address);
  });
  b.on('message', (msg, from) => {
    toB = from;
    if (toA) a.send(msg, toA.port, toA.address);
  });
  return [a.address().port, b.address().port];
}

process.on('message', (m: Request) => {
  void (async () => {
    if (m.type !== 'open') return process.send?.({ id: m.id, error: `unknown request ${m.type}` });
    const ports: number[] = [];
    for (let i = 0; i < (m.pairs as number); i++) ports.push(...(await openPair(m.host as string)));
    process.send?.({ id: m.id, ports });
  })();
});

function shutdown(): void {
  for (const s of sockets) s.close();
  process.exit(0);
}
process.on('SIGTERM', shutdown);
process.on('disconnect', shutdown);
