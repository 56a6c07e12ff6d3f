// Failures that must not end the process: errors on the SIP socket, a
// handler that throws in a pacer tick. (An answer naming port 0 now ends the
// call: test/hostile/sip-media.test.ts.)
import dgram from 'node:dgram';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { Pacer } from '../../../lib/engines/embedded/Pacer.js';
import { pcmWavHeader } from '../../../lib/engines/embedded/Wav.js';
import type { EmbeddedEngine } from '../../../lib/engines/embedded/EmbeddedEngine.js';
import { Ear, FAR_HOST, SIPP_MISSING, ended, next, requestTo, runSipp, sippInstalled, startEngine, type Teardown } from './harness.js';

/** Starts an engine and returns it with the UDP socket `sip` bound (found by its port). */
async function engineWithSipSocket(t: Teardown): Promise<{ engine: EmbeddedEngine; socket: dgram.Socket }> {
  const created: dgram.Socket[] = [];
  const mutable = dgram as { createSocket: typeof dgram.createSocket };
  const original = mutable.createSocket;
  mutable.createSocket = ((...args: Parameters<typeof original>) => {
    const socket = original(...args);
    created.push(socket);
    return socket;
  }) as typeof original;
  let engine: EmbeddedEngine;
  try {
    engine = await startEngine(t);
  } finally {
    mutable.createSocket = original;
  }
  const port = sipPortOf(created);
  const socket = port === undefined ? undefined : created.find((s) => boundPort(s) === port);
  if (!socket) throw new Error('sip UDP socket not found');
  return { engine, socket };
}

function boundPort(s: dgram.Socket): number | undefined {
  try {
    return s.address().port;
  } catch {
    return undefined;
  }
}

/** The only socket still bound to a port after start() is sip's (the bind checks closed theirs). */
function sipPortOf(created: dgram.Socket[]): number | undefined {
  const bound = created.map(boundPort).filter((p): p is number => p !== undefined && p !== 0);
  return bound.length === 1 ? bound[0] : undefined;
}

async function answerCall(t: Teardown, engine: EmbeddedEngine, mediaPort: number): Promise<ReturnType<EmbeddedEngine['dial']>> {
  const sipp = await runSipp(t, 'answer', { mediaPort });
  const leg = engine.dial(requestTo(sipp, {}, 'robust'));
  await next(leg, 'answered');
  return leg;
}

if (!sippInstalled()) {
  t.fail(SIPP_MISSING);
} else {
  t.test('an error on the SIP UDP socket is survived; a closed socket makes the engine unavailable', async (tt) => {
    const { engine, socket } = await engineWithSipSocket(tt);
    const changes: [boolean, string][] = [];
    engine.on('availability', (available, reason) => changes.push([available, reason]));

    tt.doesNotThrow(() => socket.emit('error', Object.assign(new Error('send EMSGSIZE'), { code: 'EMSGSIZE' })), 'the error has a listener');
    tt.ok(engine.available, 'a send error on a bound socket leaves the engine available');
    const ear = await Ear.open(tt);
    const leg = await answerCall(tt, engine, ear.port);
    tt.pass('calls still go through after the error');

    socket.close();
    await new Promise((r) => setTimeout(r, 50));
    tt.notOk(engine.available, 'engine unavailable once its SIP socket is gone');
    tt.equal(changes.length, 1);
    tt.match(changes[0], [false, /SIP UDP socket closed/]);

    const end = ended(leg);
    tt.doesNotThrow(() => leg.hangup(), 'BYE on a dead socket does not throw');
    tt.equal((await end).by, 'local');
    const refused = engine.dial({ requestUri: `sip:1@${FAR_HOST}:5060`, fromUri: 'sip:2@cti.test', gateway: { name: 'gw', host: FAR_HOST, port: 5060, transport: 'udp' }, label: 'dead' });
    tt.same(await ended(refused), { by: 'engine', reason: 'engine not available' });
  });

  for (const when of ['at once', 'once the player reads the file'] as const) {
    t.test(`stopPlay() ${when}, before the first frame, cancels that play (no endless ringback over the bridge)`, async (tt) => {
      const engine = await startEngine(tt);
      const ear = await Ear.open(tt);
      const leg = await answerCall(tt, engine, ear.port);
      const dir = mkdtempSync(join(tmpdir(), 'embedded-robust-'));
      const file = join(dir, 'long.wav');
      const data = Buffer.alloc(8000 * 2 * 5, 1);
      writeFileSync(file, Buffer.concat([pcmWavHeader(data.length, 1), data]));
      const playing = leg.play([file], 0);
      if (when !== 'at once') await new Promise((r) => setImmediate(r)); // the leg handed over to the player, which is reading
      leg.stopPlay();
      tt.same(await playing, { completed: false });
      await new Promise((r) => setTimeout(r, 200));
      tt.equal(ear.packets.length, 0, 'nothing was played');
      const end = ended(leg);
      leg.hangup();
      await end;
    });
  }
}

t.test('a pacer listener that throws is removed and reported; the others keep ticking', async (tt) => {
  let now = 0;
  const errors: unknown[] = [];
  const pacer = new Pacer({ periodMs: 20, maxCatchUp: 5, now: () => now, onError: (err) => errors.push(err) });
  let good = 0;
  let bad = 0;
  const goodListener = (): void => void good++;
  const badListener = (): void => {
    bad++;
    throw new Error('bug');
  };
  pacer.add(badListener);
  pacer.add(goodListener);
  now = 60;
  tt.doesNotThrow(() => pacer.runDue());
  tt.equal(bad, 1, 'the throwing listener ran once');
  tt.equal(good, 3);
  tt.equal(errors.length, 1);
  pacer.remove(goodListener);
});
