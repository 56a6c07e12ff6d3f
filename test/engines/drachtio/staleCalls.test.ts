// Crash recovery of the drachtio engine (lib/engines/drachtio/StaleCall.ts):
// a second engine stands in for the restarted server while the first one, the
// "crashed" run, still holds its calls in drachtio-server and FreeSWITCH.
import { tmpdir } from 'node:os';
import t from 'tap';
import type { DrachtioEngine } from '../../../lib/engines/drachtio/DrachtioEngine.js';
import { parseDialogState } from '../../../lib/engines/drachtio/StaleCall.js';
import { eslApi } from './eslApi.js';
import { callOutcome, ended, next, openEar, request, sleep, startCarrier, startEngine } from './harness.js';
import { findServices } from './services.js';

const host = (nodeId: string) => ({ mediaDir: tmpdir(), recordingsDir: tmpdir(), nodeId });

/** The `dialog` state the engine emits for `group` once its leg is confirmed. */
function dialogStates(engine: DrachtioEngine): Map<string, string> {
  const states = new Map<string, string>();
  engine.on('dialog', (group, _legId, state) => (state ? states.set(group, state) : states.delete(group)));
  return states;
}

const services = await findServices();
if ('skip' in services) {
  t.comment(`SKIP drachtio engine crash recovery: ${services.skip}`);
  t.test('drachtio engine crash recovery', { skip: services.skip }, () => {});
} else {
  t.teardown(() => services.local?.stop());
  const carrier = await startCarrier(t);
  const fs = services.config.freeswitch[0]!;

  t.test('a FreeSWITCH connection hangs up the channels tagged with its node id, and only those', async (tt) => {
    const ear = await openEar(tt);
    const old = await startEngine(tt, services.config, host('n1'));
    const other = await startEngine(tt, services.config, host('n2'));
    const mine = old.dial({ ...request(carrier, `answer-${ear.port}`), label: 'n1 call' });
    const theirs = other.dial({ ...request(carrier, `hangup-30-${ear.port}`), label: 'n2 call' });
    let theirsEnded = false;
    theirs.once('ended', () => (theirsEnded = true));
    await Promise.all([next(mine, 'answered'), next(theirs, 'answered')]);
    const mineEnded = ended(mine);
    await startEngine(tt, services.config, host('n1')); // the restarted n1
    const end = await mineEnded;
    tt.same(end, { by: 'engine', reason: 'media endpoint hung up by FreeSWITCH' }, "n1's endpoint was hung up at n1's connection");
    await sleep(500);
    tt.equal(theirsEnded, false, "n2's call is still up");
    if (services.local) tt.match(await eslApi(fs, 'show channels count'), /^\s*1 total/m, "only n2's channel is left");
    theirs.hangup();
    await ended(theirs);
  });

  t.test('endStaleDialogs BYEs the stored party dialogs through drachtio-server; unreadable states are skipped', async (tt) => {
    const ear = await openEar(tt);
    const old = await startEngine(tt, services.config, host('n3'));
    const states = dialogStates(old);
    const user = `answer-${ear.port}`;
    const leg = old.dial({ ...request(carrier, user), group: 'r1' });
    await next(leg, 'answered');
    const state = states.get('r1');
    tt.ok(state && parseDialogState(state), 'the confirmed leg has a readable state');
    const parsed = JSON.parse(state!) as Record<string, string>;
    const hostile = [
      'not json',
      '{"engine":"embedded"}',
      JSON.stringify({ ...parsed, dialogId: `${parsed.dialogId}|x` }),
      JSON.stringify({ ...parsed, dialogId: `${parsed.dialogId}\r\nsip|||` }),
      JSON.stringify({ ...parsed, uuid: `${parsed.uuid}\n\napi shutdown` }),
      JSON.stringify({ ...parsed, remoteTarget: 'sip:a@b\r\nX: y' }),
      JSON.stringify({ ...parsed, callId: 'x'.repeat(5000) }),
    ];
    tt.equal(hostile.filter((s) => parseDialogState(s)).length, 0, 'no hostile or foreign state is read');
    // Another node id: its connection's clean-up must not be what ends the call.
    const restarted = await startEngine(tt, services.config, host('n4'));
    const legEnded = ended(leg, 20_000);
    const sent = await restarted.endStaleDialogs([...hostile, state!]);
    tt.equal(sent, 1, 'one BYE, for the one readable state');
    await sleep(300);
    tt.equal(await callOutcome(carrier, user), 'hung up', 'the party got a BYE');
    tt.match(await carrier.messages(), /^BYE sip:[^]*?Reason: Q\.850;cause=41;text="server restarted"/m, 'the restart BYE, with its Reason');
    leg.hangup(); // the old run's leg (drachtio-server tells it nothing of another app's BYE)
    await legEnded;
  });
}
