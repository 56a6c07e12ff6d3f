/**
 * Issue 9 over the real server and both stores: event ids, replay after a
 * reconnect, subscriptions from an event id, CDRs, and the restart rule.
 */
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { AccountStore } from '../../lib/accounts/AccountStore.js';
import { RpcContract } from '../../lib/api/RpcContract.js';
import { CtiServer } from '../../lib/CtiServer.js';
import type { RpcMessage } from '../support/RpcTestClient.js';
import { RpcTestClient as Client } from '../support/RpcTestClient.js';
import { ScriptedTelephonyEngine } from '../support/ScriptedTelephonyEngine.js';
import { startTestServer } from '../support/startTestServer.js';
import { storeBackends } from '../support/storeBackends.js';

const contract = new RpcContract();
const DUO = { to1_uri: '13967446745', to2_uri: '13009347583', user_data: 'crm-9' };

const eventId = (m: RpcMessage): number => m.params!.event_id as number;

/** Every notification matches its x-events schema (event_id included). */
function checkSchema(t: Test, messages: readonly RpcMessage[]): void {
  const problems = messages.flatMap((m) => contract.eventProblems(m.method!, m.params).map((p) => `${m.method} ${p}`));
  t.same(problems, [], 'every event matches the schema');
}

for (const backend of storeBackends(t)) {
  t.test(`${backend.name}`, async (t) => {
    const open = async () => {
      const ts = await startTestServer({ store: await backend.newStore() });
      t.teardown(() => ts.stop());
      return ts;
    };

    t.test('event ids: per account, from 1, without gaps, on every notification', async (t) => {
      const ts = await open();
      const client = await ts.connect();
      t.teardown(() => client.close());
      const resId = ((await client.call('ext.duo_callback.construct', DUO)).result as { res_id: string }).res_id;
      await client.waitForEvent('ext.duo_callback.on_progress', resId); // dialing party 1
      ts.engine.legs[0]!.answer();
      await client.waitForEvent('ext.duo_callback.on_progress', resId, 2);
      await client.call('ext.duo_callback.cancel', [resId]);
      await client.waitForEvent('ext.duo_callback.on_released', resId);
      const ids = client.notifications.map(eventId);
      t.same(ids, ids.map((_, i) => i + 1), `ids ${ids.join(',')}`);
      checkSchema(t, client.notifications);

      // Another account has its own sequence, and sees nothing of this one.
      const otherKey = await ts.accounts.create('other');
      const other = await Client.connect(ts.url, otherKey);
      t.teardown(() => other.close());
      t.same((await other.call('sys.events.replay', { after_event_id: 0 })).result, { events: [], more: false });
      t.match((await other.call('sys.cdr.get', [resId])).error, { code: -32001 });
      t.match((await other.call('sys.resource.get', [resId])).error, { code: -32001 });
      t.same((await other.call('sys.cdr.list', {})).result, { cdrs: [], next_cursor: null });
      const mine = (await other.call('ext.notify_call.construct', { to_uri: '1003', play_content: 'prompt.wav' })).result as { res_id: string };
      const [first] = await other.waitForEvent('ext.notify_call.on_progress', mine.res_id);
      t.equal(eventId(first!), 1, "the other account's first event is its 1");
    });

    t.test('reconnect mid-call: replay returns every missed event once, in order', async (t) => {
      const ts = await open();
      const a = await ts.connect();
      const resId = ((await a.call('ext.duo_callback.construct', DUO)).result as { res_id: string }).res_id;
      const [seen] = await a.waitForEvent('ext.duo_callback.on_progress', resId);
      const last = eventId(seen!);
      await a.close(); // the application's connection drops mid-call
      const [leg1] = ts.engine.legs;
      leg1!.answer();
      await t.resolves(ts.server.eventLog.flush());
      const missedBeforeReconnect = (await ts.server.eventLog.replay(ts.accountId, last, 1000)).length;
      t.ok(missedBeforeReconnect >= 2, `${missedBeforeReconnect} events happened while disconnected`);

      const b = await ts.connect();
      t.teardown(() => b.close());
      // Page through with a small limit: every page continues where the last ended.
      const replayed: RpcMessage[] = [];
      let after = last;
      for (;;) {
        const page = (await b.call('sys.events.replay', { after_event_id: after, limit: 1 })).result as { events: RpcMessage[]; more: boolean };
        replayed.push(...page.events);
        if (!page.more) break;
        after = eventId(page.events[page.events.length - 1]!);
      }
      t.same(replayed.map(eventId), Array.from({ length: missedBeforeReconnect }, (_, i) => last + 1 + i), 'each missed event once, in order');
      t.ok(replayed.every((e) => e.params!.res_id === resId));
      checkSchema(t, replayed);

      // The call goes on: live events after the replay continue the sequence.
      await b.call('sys.subscribe', { res_id: resId });
      ts.engine.legs[1]!.answer();
      const live = await b.waitForEvent('ext.duo_callback.on_progress', resId, 1);
      t.equal(eventId(live[0]!), last + missedBeforeReconnect + 1, 'the first live event follows the replayed ones');
    });

    t.test('sys.subscribe from_event_id: replayed then live, no gap, no duplicate, while events keep coming', async (t) => {
      const ts = await open();
      const maker = await ts.connect();
      t.teardown(() => maker.close());
      const resIds: string[] = [];
      for (let i = 0; i < 5; i++) resIds.push(((await maker.call('ext.notify_call.construct', { to_uri: `100${i}`, play_content: 'prompt.wav' })).result as { res_id: string }).res_id);
      await maker.waitForEvent('ext.notify_call.on_progress', resIds[4]);
      const watcher = await ts.connect();
      t.teardown(() => watcher.close());
      // Events keep being committed while the replay runs.
      const cancels = resIds.map((id) => maker.call('ext.notify_call.cancel', [id]));
      const sub = await watcher.call('sys.subscribe', { from_event_id: 0 });
      t.match(sub.result, { subscription_id: String });
      await Promise.all(cancels);
      await watcher.until(() => (watcher.events('ext.notify_call.on_released').length === 5 ? true : undefined));
      await ts.server.eventLog.flush();
      const total = (await ts.server.eventLog.replay(ts.accountId, 0, 1000)).length;
      await watcher.until(() => (watcher.notifications.length >= total ? true : undefined));
      t.same(watcher.notifications.map(eventId), Array.from({ length: total }, (_, i) => i + 1), `all ${total} events once, in order`);
      // A second replaying subscription while one runs is refused (two in one batch); after it ends, allowed.
      const both = (await watcher.raw(JSON.stringify([1, 2].map((id) => ({ jsonrpc: '2.0', id, method: 'sys.subscribe', params: { from_event_id: total } }))))) as RpcMessage[];
      t.match(both.find((r) => r.id === 1), { result: { subscription_id: String } });
      t.match(both.find((r) => r.id === 2), { error: { code: -32002 } });
      await new Promise((resolve) => setTimeout(resolve, 50));
      t.match((await watcher.call('sys.subscribe', { from_event_id: total })).result, { subscription_id: String });
      t.match((await watcher.call('sys.subscribe', { from_event_id: -1 })).error, { code: -32602 });
      t.equal(watcher.notifications.length, total, 'replays past the end deliver nothing');
    });

    t.test('CDRs: get, list newest first in pages, since/until, hostile cursor', async (t) => {
      const ts = await open();
      const client = await ts.connect();
      t.teardown(() => client.close());
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) {
        const id = ((await client.call('ext.notify_call.construct', { to_uri: `200${i}`, play_content: 'prompt.wav', user_data: `u${i}` })).result as { res_id: string }).res_id;
        await client.waitForEvent('ext.notify_call.on_progress', id);
        await client.call('ext.notify_call.cancel', [id]);
        await client.waitForEvent('ext.notify_call.on_released', id);
        ids.push(id);
      }
      const cdr = (await client.call('sys.cdr.get', [ids[0]])).result as Record<string, unknown>;
      t.match(cdr, {
        res_id: ids[0],
        class: 'ext.notify_call',
        user_data: 'u0',
        process_id: Number,
        event_id: Number,
        released: { res_id: ids[0], error: { code: 'cancelled' }, event_id: cdr.event_id },
        context: { state: 'Released', parties: [{ party: 1, to_uri: String }] },
      });
      const pages: string[][] = [];
      let cursor: string | null = null;
      do {
        const page = (await client.call('sys.cdr.list', { limit: 2, cursor })).result as { cdrs: Array<{ res_id: string }>; next_cursor: string | null };
        pages.push(page.cdrs.map((c) => c.res_id));
        cursor = page.next_cursor;
      } while (cursor);
      t.same(pages.flat().sort(), [...ids].sort(), 'every CDR once across pages');
      t.equal(pages[0]!.length, 2);
      const future = Math.floor(Date.now() / 1000) + 3600;
      t.same(((await client.call('sys.cdr.list', { since: future })).result as { cdrs: unknown[] }).cdrs, []);
      t.equal(((await client.call('sys.cdr.list', { until: future })).result as { cdrs: unknown[] }).cdrs.length, 5);
      for (const cursor of ["1:x' OR 1=1 --", '../../etc', 'x'.repeat(300), '99999999999999999:a']) {
        t.match((await client.call('sys.cdr.list', { cursor })).error, { code: -32602 }, `cursor ${cursor.slice(0, 20)} refused`);
      }
      t.match((await client.call('sys.cdr.get', [ids[0]!.replace(/\d+$/, '1')])).error, { code: -32001 });
      t.match((await client.call('sys.events.replay', { after_event_id: 0, limit: 100_000 })).error, { code: -32602 });
    });

    t.test('restart after a crash: one on_released per resource left live, process ids continue', async (t) => {
      const ts = await open();
      const client = await ts.connect();
      t.teardown(() => client.close());
      const left: Array<{ res_id: string; ipsc_info: { process_id: number } }> = [];
      for (const to of ['3001', '3002']) left.push((await client.call('ext.notify_call.construct', { to_uri: to, play_content: 'prompt.wav' })).result as never);
      await client.waitForEvent('ext.notify_call.on_progress', left[1]!.res_id);
      // "kill -9": the first server is never stopped; a new one starts on the same store and node id.
      const restarted: CtiServer[] = [];
      const restart = async () => {
        const server = new CtiServer({ config: ts.config, engine: new ScriptedTelephonyEngine(), log: pino({ level: 'silent' }), accounts: new AccountStore(ts.store), store: ts.store });
        restarted.push(server);
        const address = await server.start();
        return { server, url: `ws://127.0.0.1:${address.port}` };
      };
      const second = await restart();
      const back = await Client.connect(second.url, ts.apiKey);
      const replay = (await back.call('sys.events.replay', { after_event_id: 0, limit: 1000 })).result as { events: RpcMessage[] };
      const released = replay.events.filter((e) => e.method === 'ext.notify_call.on_released');
      t.same(released.map((e) => e.params!.res_id).sort(), left.map((l) => l.res_id).sort(), 'each left-live resource released once');
      t.ok(released.every((e) => (e.params!.error as { code: string; message: string }).code === 'internal' && (e.params!.error as { message: string }).message === 'server restarted'));
      checkSchema(t, replay.events);
      t.match((await back.call('sys.resource.get', [left[0]!.res_id])).result, { state: 'Released' });
      const next = (await back.call('ext.notify_call.construct', { to_uri: '3003', play_content: 'prompt.wav' })).result as { ipsc_info: { process_id: number } };
      t.ok(next.ipsc_info.process_id > left[1]!.ipsc_info.process_id, 'process ids continue above the stored ones');
      // A second restart finds nothing left live from before: still one on_released each.
      await restart();
      const again = (await back.call('sys.events.replay', { after_event_id: 0, limit: 1000 })).result as { events: RpcMessage[] };
      const count = again.events.filter((e) => e.method === 'ext.notify_call.on_released' && left.some((l) => l.res_id === e.params!.res_id)).length;
      t.equal(count, 2, 'still exactly one on_released per left-live resource');
      await back.close();
      // Before the store closes with the first server (teardown).
      for (const server of restarted) await server.stop();
    });

    t.test('restart after a crash: the CDR keeps each party detail known at the crash, ended at the recovery time', async (t) => {
      const ts = await open();
      const client = await ts.connect();
      t.teardown(() => client.close());
      const { res_id: resId } = (await client.call('ext.duo_callback.construct', DUO)).result as { res_id: string };
      const progressed = (progress: string, party: number) =>
        client.until(() => client.events('ext.duo_callback.on_progress', resId).find((e) => e.params!.progress === progress && e.params!.party === party));
      await progressed('dialing', 1);
      ts.engine.legs[0]!.ring();
      await progressed('ringing', 1);
      ts.engine.legs[0]!.answer();
      await progressed('dialing', 2);
      ts.engine.legs[1]!.ring(true);
      await progressed('early_media', 2); // committed before it was sent: the row holds it
      // "kill -9": the first server is never stopped; a new one starts on the same store and node id.
      const restartedAt = Math.floor(Date.now() / 1000);
      const second = new CtiServer({ config: ts.config, engine: new ScriptedTelephonyEngine(), log: pino({ level: 'silent' }), accounts: new AccountStore(ts.store), store: ts.store });
      const address = await second.start();
      const recoveredBy = Math.floor(Date.now() / 1000);
      const cdr = (await client.call('sys.cdr.get', [resId])).result as { released: Record<string, unknown>; context: { parties: Array<Record<string, unknown>>; answer_time: number | null } };
      const [p1, p2] = cdr.context.parties;
      t.match(p1, { party: 1, from_uri: String, to_uri: /13967446745/, gateway: String, state: 'RELEASED', sip_status: 200, dial_time: Number, ring_time: Number, answer_time: Number, release_initiator: 'sys' });
      t.match(p2, { party: 2, to_uri: /13009347583/, gateway: String, state: 'RELEASED', sip_status: 183, dial_time: Number, ring_time: Number, answer_time: null, release_initiator: 'sys' });
      for (const p of [p1, p2]) t.ok((p!.end_time as number) >= restartedAt && (p!.end_time as number) <= recoveredBy, `party ${p!.party as number} ends at the recovery time`);
      t.equal(cdr.released.end_time, p1!.end_time);
      t.equal(cdr.released.answer_time, p1!.answer_time, "on_released's answer_time: party 1's");
      t.equal(cdr.context.answer_time, p1!.answer_time);
      t.match(cdr.released.error, { code: 'internal', message: 'server restarted' });
      const back = await Client.connect(`ws://127.0.0.1:${address.port}`, ts.apiKey);
      const replay = (await back.call('sys.events.replay', { after_event_id: 0, limit: 1000 })).result as { events: RpcMessage[] };
      checkSchema(t, replay.events);
      t.same(replay.events.filter((e) => e.method === 'ext.duo_callback.on_released').map((e) => e.params), [{ ...cdr.released }], 'the on_released sent is the CDR\'s');
      await back.close();
      await second.stop(); // before the store closes with the first server (teardown)
    });

    t.test('restart after a crash: a stored context edited or from another release is no context, and the restart still starts', async (t) => {
      const ts = await open();
      const client = await ts.connect();
      t.teardown(() => client.close());
      const ids: string[] = [];
      for (const to of ['3001', '3002', '3003']) {
        const { res_id } = (await client.call('ext.notify_call.construct', { to_uri: to, play_content: 'prompt.wav' })).result as { res_id: string };
        await client.waitForEvent('ext.notify_call.on_progress', res_id);
        ids.push(res_id);
      }
      const hostile = [
        '{"parties":[null]}',
        '{"parties":[{"party":1,"state":"ANSWERED","redirects":"x"}],"answer_time":"now"}',
        '{"parties":[],"res_id":"someone-else","class":"ext.duo_callback","state":"Released","user_data":null,"begin_time":1,"answer_time":null,"connect_time":null}',
      ];
      for (const [i, context] of hostile.entries()) {
        await ts.store.db.updateTable('resources').set({ context }).where('res_id', '=', ids[i]!).execute();
      }
      const second = new CtiServer({ config: ts.config, engine: new ScriptedTelephonyEngine(), log: pino({ level: 'silent' }), accounts: new AccountStore(ts.store), store: ts.store });
      const address = await second.start();
      const back = await Client.connect(`ws://127.0.0.1:${address.port}`, ts.apiKey);
      const replay = (await back.call('sys.events.replay', { after_event_id: 0, limit: 1000 })).result as { events: RpcMessage[] };
      const released = replay.events.filter((e) => e.method === 'ext.notify_call.on_released');
      t.same(released.map((e) => e.params!.res_id).sort(), [...ids].sort(), 'each resource released once');
      checkSchema(t, replay.events);
      for (const id of ids) {
        const cdr = (await back.call('sys.cdr.get', [id])).result as { context: { res_id: string; parties: unknown[] } };
        t.match(cdr.context, { res_id: id, parties: [] }, `${id}: the hostile stored context is ignored`);
      }
      await back.close();
      await second.stop(); // before the store closes with the first server (teardown)
    });

    t.test('restart after a crash: an edited class column never becomes an event method', async (t) => {
      const ts = await open();
      const client = await ts.connect();
      t.teardown(() => client.close());
      const ids: string[] = [];
      for (const to of ['3001', '3002']) {
        const { res_id } = (await client.call('ext.notify_call.construct', { to_uri: to, play_content: 'prompt.wav' })).result as { res_id: string };
        await client.waitForEvent('ext.notify_call.on_progress', res_id);
        ids.push(res_id);
      }
      await ts.server.eventLog.flush();
      const [withContext, bare] = ids as [string, string];
      // The first keeps its stored context (which names its class); the second has nothing else to go by.
      await ts.store.db.updateTable('resources').set({ class: 'evil.x' }).where('res_id', '=', withContext).execute();
      await ts.store.db.updateTable('resources').set({ class: 'evil.x', context: null }).where('res_id', '=', bare).execute();
      const second = new CtiServer({ config: ts.config, engine: new ScriptedTelephonyEngine(), log: pino({ level: 'silent' }), accounts: new AccountStore(ts.store), store: ts.store });
      const address = await second.start();
      const back = await Client.connect(`ws://127.0.0.1:${address.port}`, ts.apiKey);
      const replay = (await back.call('sys.events.replay', { after_event_id: 0, limit: 1000 })).result as { events: RpcMessage[] };
      t.same(
        replay.events.filter((e) => e.method!.endsWith('.on_released')).map((e) => [e.method, e.params!.res_id]),
        [['ext.notify_call.on_released', withContext]],
        'released under the class its stored context names; the other gets no event with an invented method',
      );
      t.notOk(replay.events.some((e) => e.method!.startsWith('evil')), 'no event method from the edited column');
      const row = await ts.store.db.selectFrom('resources').select('live').where('res_id', '=', bare).executeTakeFirstOrThrow();
      t.equal(Number(row.live), 1, 'the row no event can name is left live for the operator');
      await back.close();
      await second.stop();
    });
  });
}
