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
import { parseMessagesLog, type LoggedSip } from '../../conformance/support.js';

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

  t.test('endStaleDialogs ends INVITEs left pending: CANCEL (matching a challenge\'s resend) while ringing, BYE once drachtio-server took a 2xx', async (tt) => {
    const ear = await openEar(tt);
    const old = await startEngine(tt, services.config, host('n5'));
    const states = dialogStates(old);
    const ringing = `authring-60-${ear.port}`;
    const answering = `ringans-1-${ear.port}`;
    const legRinging = old.dial({ ...request(carrier, ringing, true), group: 'r-ring' });
    const legAnswering = old.dial({ ...request(carrier, answering), group: 'r-ans' });
    await Promise.all([next(legRinging, 'progress'), next(legAnswering, 'progress')]);
    const ringingState = states.get('r-ring');
    const answeringState = states.get('r-ans'); // taken while it rang: what a crash then would have left
    tt.match(ringingState && parseDialogState(ringingState), { kind: 'invite', txnId: String, callId: String, localTag: String }, 'a ringing leg has a readable INVITE state');
    tt.match(answeringState && parseDialogState(answeringState), { kind: 'invite' });
    await next(legAnswering, 'answered'); // the far end answers; drachtio-server holds the dialog
    const parsed = JSON.parse(ringingState!) as Record<string, string>;
    const hostile = [
      JSON.stringify({ ...parsed, txnId: `${parsed.txnId}|x` }),
      JSON.stringify({ ...parsed, txnId: `${parsed.txnId}\r\nsip|||` }),
      JSON.stringify({ ...parsed, localTag: `${parsed.localTag}\r\nX: y` }),
      JSON.stringify({ ...parsed, requestUri: 'sip:a@b\r\nX: y' }),
      JSON.stringify({ ...parsed, uuid: 'not-a-uuid' }),
      JSON.stringify({ ...parsed, engine: 'embedded' }),
    ];
    tt.equal(hostile.filter((s) => parseDialogState(s)).length, 0, 'no hostile INVITE state is read');
    const ringingEnded = ended(legRinging, 20_000);
    const answeringEnded = ended(legAnswering, 20_000);
    const restarted = await startEngine(tt, services.config, host('n6'));
    const sent = await restarted.endStaleDialogs([...hostile, ringingState!, answeringState!]);
    tt.equal(sent, 2, 'a CANCEL and a BYE');
    await sleep(300);
    const messages = parseMessagesLog(await carrier.messages());
    const of = (user: string) => {
      const callId = messages.find((m) => m.direction === 'received' && m.firstLine.startsWith(`INVITE sip:${user}@`))?.callId;
      return messages.filter((m) => m.callId === callId && m.direction === 'received' && m.status === undefined);
    };
    const branch = (m: LoggedSip | undefined) => m && /^Via:[^\n]*;branch=([^;\s,]+)/im.exec(m.head)?.[1];
    const ring = of(ringing);
    const invites = ring.filter((m) => m.method === 'INVITE');
    const cancel = ring.find((m) => m.method === 'CANCEL');
    tt.equal(invites.length, 2, 'the INVITE and its resend with credentials');
    tt.ok(cancel && cancel.cseq === invites[1]!.cseq && branch(cancel) === branch(invites[1]), "the CANCEL names the resend's CSeq and branch");
    tt.match(cancel?.head, /^Reason: Q\.850;cause=41;text="server restarted"/m, 'with the restart Reason');
    tt.equal(await callOutcome(carrier, ringing), 'hung up', 'the ringing party: 487');
    tt.ok(of(answering).some((m) => m.method === 'BYE' && /^Reason: Q\.850;cause=41/m.test(m.head)), 'the party answered meanwhile: the restart BYE');
    tt.match(await ringingEnded, { by: 'remote', sipStatus: 487 }, "the old run's ringing leg saw the 487");
    legAnswering.hangup(); // drachtio-server tells the old run nothing of another app's BYE
    await answeringEnded;
  });
}
