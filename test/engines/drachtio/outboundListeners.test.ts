// OutboundListeners without FreeSWITCH: the ports advertised in turn, the
// hand-over of each accepted connection to drachtio-fsmrf's own listener,
// and the fallback when drachtio-fsmrf's internals are not as expected.
// (overload.test.ts checks the same against a live FreeSWITCH.)
import { connect, createServer, type Server, type Socket } from 'node:net';
import { pino } from 'pino';
import t from 'tap';
import type Mrf from 'drachtio-fsmrf';
import { OutboundListeners } from '../../../lib/engines/drachtio/OutboundListeners.js';

function listening(): Promise<Server> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

t.test('three ports in turn; a connection to an extra port reaches the original listener', async (t) => {
  const own = await listening();
  t.teardown(() => void own.close());
  const port = (own.address() as { port: number }).port;
  const mediaServer = { listenAddress: '127.0.0.1', advertisedPort: port, _server: { server: own } };
  const listeners = await OutboundListeners.attach(mediaServer as unknown as Mrf.MediaServer, 3, pino({ level: 'silent' }));
  if (!listeners) return t.fail('attach returned null');
  t.teardown(() => listeners.close());
  t.equal(listeners.ports.length, 3, 'three ports');
  t.equal(listeners.ports[0], port, "drachtio-fsmrf's own first");
  const advertised: number[] = [];
  for (let i = 0; i < 4; i++) {
    listeners.useNext();
    advertised.push(mediaServer.advertisedPort);
  }
  t.same(advertised, [...listeners.ports, listeners.ports[0]], 'each creation names the next port, round and round');

  const received = new Promise<Socket>((resolve) => own.once('connection', resolve));
  const client = connect({ host: '127.0.0.1', port: listeners.ports[2]! });
  t.teardown(() => client.destroy());
  const socket = await received;
  const greeting = new Promise<string>((resolve) => socket.once('data', (d) => resolve(String(d))));
  client.write('connect\n\n');
  t.equal(await greeting, 'connect\n\n', 'the socket handed over is the live connection');
  t.same(listeners.accepted, [0, 0, 1], 'counted on the port it arrived at, not twice');
  socket.destroy();
});

t.test('drachtio-fsmrf internals missing: null and a warning, nothing opened', async (t) => {
  const lines: string[] = [];
  const log = pino({ level: 'warn' }, { write: (line: string) => void lines.push(line) });
  const listeners = await OutboundListeners.attach({ advertisedPort: 1 } as unknown as Mrf.MediaServer, 8, log);
  t.equal(listeners, null);
  t.match(lines.join(''), /internals not found: FreeSWITCH connects back to one port only/);
});
