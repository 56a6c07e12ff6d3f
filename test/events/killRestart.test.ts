/**
 * Issue 9 with a real process: calls up at a SIPp carrier, `kill -9` of the
 * server, restart on the same store: every constructed res_id has exactly
 * one on_released after the restart (`internal`, "server restarted"), none
 * missing, and the restarted server BYEs every dialog the dead one left up at
 * the carrier, from the dialog state it stored.
 */
import dgram from 'node:dgram';
import t from 'tap';
import { RpcTestClient, type RpcMessage } from '../support/RpcTestClient.js';
import { embeddedServerEnv, startServerProcess } from '../support/serverProcess.js';
import { SippCarrier } from '../support/sipp/SippCarrier.js';
import { SIPP_MISSING, sippInstalled } from '../engines/embedded/harness.js';

const CALLS = 6;

if (!sippInstalled()) {
  t.fail(SIPP_MISSING);
} else {
  t.test(`kill -9 with ${CALLS} calls up, restart: exactly one on_released per res_id, none missing`, { timeout: 90_000 }, async (t) => {
    const carrier = await SippCarrier.start();
    t.teardown(() => carrier.stop());
    const ear = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => ear.bind(0, '127.0.0.1', resolve));
    t.teardown(() => ear.close());
    const env = await embeddedServerEnv(carrier, { rtpPortMin: 52000 + 2 * Math.floor(Math.random() * 2000), rtpPorts: 200 });

    const first = await startServerProcess(env);
    t.teardown(() => first.kill());
    const client = await RpcTestClient.connect(first.url, null);
    const port = ear.address().port;
    const resIds: string[] = [];
    for (let i = 0; i < CALLS; i++) {
      const reply = await client.call('ext.duo_callback.construct', { to1_uri: carrier.uri(`answer-${port}`), to2_uri: carrier.uri(`ringans-0.1-${port}`), max_answer_seconds: 120 });
      resIds.push((reply.result as { res_id: string }).res_id);
    }
    await client.until(() => (resIds.every((id) => client.events('ext.duo_callback.on_progress', id).some((e) => e.params!.progress === 'connected')) ? true : undefined), 20_000);
    await first.kill();
    await client.close();

    const second = await startServerProcess(env);
    t.teardown(() => void second.child.kill('SIGTERM'));
    const back = await RpcTestClient.connect(second.url, null);
    t.teardown(() => back.close());
    const events: RpcMessage[] = [];
    for (let after = 0, more = true; more; ) {
      const page = (await back.call('sys.events.replay', { after_event_id: after, limit: 100 })).result as { events: RpcMessage[]; more: boolean };
      events.push(...page.events);
      more = page.more;
      after = (page.events[page.events.length - 1]?.params!.event_id as number | undefined) ?? after;
    }
    const released = new Map<string, RpcMessage[]>();
    for (const e of events.filter((e) => e.method === 'ext.duo_callback.on_released')) {
      released.set(e.params!.res_id as string, [...(released.get(e.params!.res_id as string) ?? []), e]);
    }
    const once = resIds.filter((id) => released.get(id)?.length === 1).length;
    const missing = resIds.filter((id) => !released.has(id)).length;
    const dupes = resIds.filter((id) => (released.get(id)?.length ?? 0) > 1).length;
    t.comment(`constructed ${CALLS}, released once ${once}, missing ${missing}, more than once ${dupes}`);
    t.equal(once, CALLS, 'exactly one on_released per res_id');
    t.ok(resIds.every((id) => (released.get(id)?.[0]?.params!.error as { message: string } | undefined)?.message === 'server restarted'), 'each with internal "server restarted"');
    t.same(events.map((e) => e.params!.event_id), events.map((_, i) => i + 1), 'event ids 1…n without gaps across the crash');
    const after = await back.call('ext.duo_callback.construct', { to1_uri: carrier.uri('busy'), to2_uri: carrier.uri(`answer-${port}`) });
    t.ok(((after.result as { ipsc_info: { process_id: number } }).ipsc_info.process_id) > Number(resIds[CALLS - 1]!.split('-').pop()), 'process ids continue');
    // The restart BYEs the 2 × CALLS dialogs; the new call (busy + never dialled party 2) adds none.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    await carrier.stop();
    const stats = await carrier.stats();
    t.comment(`carrier: ${stats.totalCalls} calls, ${stats.currentCalls} still up after the restart`);
    t.equal(stats.currentCalls, 0, 'no dialog left up at the carrier');
  });
}
