/** The example in docs/examples/replayingClient.ts keeps its promise: every event once, in order, across drops. */
import t from 'tap';
import { ReplayingClient } from '../../docs/examples/replayingClient.js';
import { startTestServer } from '../support/startTestServer.js';

t.test('the replaying client sees every event exactly once, in order, though its connection drops mid-call', async (t) => {
  const ts = await startTestServer();
  t.teardown(() => ts.stop());
  const seen: number[] = [];
  const client = new ReplayingClient({ url: ts.url, apiKey: ts.apiKey, lastEventId: 0, onEvent: (_m, p) => seen.push(p.event_id) });
  await client.connect();
  t.teardown(() => client.stop());
  const maker = await ts.connect();
  t.teardown(() => maker.close());

  for (let i = 0; i < 10; i++) {
    const { res_id } = (await maker.call('ext.duo_callback.construct', { to1_uri: `40${i}0`, to2_uri: `40${i}1` })).result as { res_id: string };
    await maker.waitForEvent('ext.duo_callback.on_progress', res_id);
    if (i % 3 === 0) client.drop(); // events of this call happen while the client is away
    ts.engine.legs[2 * i]!.answer();
    await maker.waitForEvent('ext.duo_callback.on_progress', res_id, 3);
    await maker.call('ext.duo_callback.cancel', [res_id]).catch(() => undefined);
    if (i % 4 === 1) client.drop();
    await maker.waitForEvent('ext.duo_callback.on_released', res_id);
  }
  await ts.server.eventLog.flush();
  const all = (await ts.server.eventLog.replay(ts.accountId, 0, 1000)).map((e) => e.eventId);
  await maker.until(() => (seen.length >= all.length ? true : undefined), 10_000);
  t.same(seen, all, `${all.length} events, each once, in order`);
});
