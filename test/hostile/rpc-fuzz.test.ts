import t from 'tap';
import { isDeepStrictEqual } from 'node:util';
import WebSocket from 'ws';
import { startTestServer } from '../support/startTestServer.js';
import { GATEWAY, hostileFrame, MAX_BATCH, prng, type Expected } from './hostileRpc.js';

const SEED = Number(process.env.HOSTILE_SEED ?? 20261201);
const FRAMES = 10_500;
/** The server's heap may grow by caches and garbage; a leak per message (1 KB × 10,500) or an amplification would pass this. */
const RSS_GROWTH_LIMIT = 150 * 1024 * 1024;

type Reply = { jsonrpc?: unknown; id?: unknown; result?: unknown; error?: { code?: unknown; data?: { errors?: Array<{ param: string }> } } };

function matches(reply: Reply, e: Expected): boolean {
  if (reply === null || typeof reply !== 'object' || Array.isArray(reply)) return false;
  if (reply.jsonrpc !== '2.0' || !Object.hasOwn(reply, 'id') || !isDeepStrictEqual(reply.id, e.id)) return false;
  if ('result' in e) return !('error' in reply) && isDeepStrictEqual(reply.result, e.result);
  if ('result' in reply || reply.error?.code !== e.code) return false;
  const param = e.param;
  if (param === undefined) return true;
  return (reply.error.data?.errors ?? []).some((p) => p.param === param || p.param.startsWith(`${param}.`) || p.param.startsWith(`${param}[`));
}

/** Each expected reply matched by a distinct actual one (batch replies may come in any order). */
function matchesBatch(replies: unknown, expected: readonly Expected[]): boolean {
  if (!Array.isArray(replies) || replies.length !== expected.length) return false;
  const left = [...(replies as Reply[])];
  return expected.every((e) => {
    const i = left.findIndex((r) => matches(r, e));
    return i >= 0 && left.splice(i, 1).length === 1;
  });
}

t.test(`${FRAMES} seeded hostile frames (seed ${SEED}) each get the exact JSON-RPC 2.0 answer; the server stays up`, async (t) => {
  const ts = await startTestServer({ env: { CTI_LISTEN__MAX_BATCH_LENGTH: String(MAX_BATCH) } });
  t.teardown(() => ts.stop());
  t.ok(ts.config.gateways.some((g) => g.name === GATEWAY));
  const socket = new WebSocket(ts.url, { headers: { authorization: `Bearer ${ts.apiKey}` } });
  await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
  const inbox: string[] = [];
  let wake: (() => void) | undefined;
  let notifications = 0;
  socket.on('message', (data) => {
    const text = data.toString();
    // Events mean a call was placed: counted, and kept out of the replies.
    if (text.startsWith('{"jsonrpc":"2.0","method"')) notifications++;
    else inbox.push(text);
    wake?.();
  });
  const next = async (): Promise<unknown> => {
    const deadline = Date.now() + 5000;
    while (inbox.length === 0) {
      if (Date.now() > deadline) throw new Error('no reply within 5 s');
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, 100);
      });
    }
    return JSON.parse(inbox.shift()!);
  };

  global.gc?.();
  const rssBefore = process.memoryUsage().rss;
  const r = prng(SEED);
  const failures = new Map<string, string[]>();
  const seen = new Map<string, number>();
  for (let n = 0; n < FRAMES; n++) {
    const frame = hostileFrame(r, n);
    const category = frame.category.startsWith('batch of') ? 'batch' : frame.category;
    seen.set(category, (seen.get(category) ?? 0) + 1);
    socket.send(frame.text);
    let ok: boolean;
    let got: unknown;
    if (frame.expect === null) {
      // Nothing may come back: the next reply must be the probe's.
      socket.send(JSON.stringify({ jsonrpc: '2.0', id: `probe-${n}`, method: 'sys.resource.exists', params: ['x'] }));
      got = await next();
      ok = matches(got as Reply, { id: `probe-${n}`, result: false });
    } else {
      got = await next();
      ok = Array.isArray(frame.expect) ? matchesBatch(got, frame.expect) : matches(got as Reply, frame.expect);
    }
    if (!ok) {
      const list = failures.get(frame.category) ?? [];
      if (list.length < 3) list.push(`#${n} sent ${frame.text.slice(0, 300)} expected ${JSON.stringify(frame.expect)?.slice(0, 300)} got ${JSON.stringify(got)?.slice(0, 300)}`);
      failures.set(frame.category, list);
    }
  }
  if (failures.size) console.error(JSON.stringify(Object.fromEntries(failures), null, 1));
  t.same(Object.fromEntries(failures), {}, 'every frame got exactly its expected answer');
  t.ok((seen.get('batch') ?? 0) > 1000 && seen.size > 40, `categories covered: ${seen.size}`);
  t.equal(notifications, 0, 'no events: nothing ran');
  t.equal(ts.engine.legs.length, 0, 'no hostile frame placed a call (a construct with an invalid id never ran)');
  t.equal(ts.server.registry.size, 0);

  const reply = await new Promise<unknown>((resolve) => {
    socket.once('message', (d) => resolve(JSON.parse(d.toString())));
    socket.send(JSON.stringify({ jsonrpc: '2.0', id: 'alive', method: 'ext.notify_call.construct', params: { to_uri: '1000', play_content: 'prompt.wav' } }));
  });
  t.match(reply, { id: 'alive', result: { res_id: String } }, 'the same connection still places calls');
  global.gc?.();
  const growth = process.memoryUsage().rss - rssBefore;
  t.ok(growth < RSS_GROWTH_LIMIT, `RSS grew by ${Math.round(growth / 1048576)} MB (limit ${RSS_GROWTH_LIMIT / 1048576})`);
  socket.close();
});
