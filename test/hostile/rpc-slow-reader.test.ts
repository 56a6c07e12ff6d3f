import t from 'tap';
import { startTestServer } from '../support/startTestServer.js';
import { openPausedWebSocket, textFrame } from './rawWebSocket.js';

const MiB = 1024 * 1024;
const BATCH = 100;
const FRAMES = 20;

/** A batch of `BATCH` rpc.discover calls, padded with JSON whitespace to about 64 KB (issue 7 point 5). */
function discoverBatch(n: number): string {
  const batch = JSON.stringify(Array.from({ length: BATCH }, (_, i) => ({ jsonrpc: '2.0', id: n * BATCH + i, method: 'rpc.discover' })));
  return batch + ' '.repeat(64_000 - batch.length);
}

t.test('a client that never reads is disconnected once its send queue passes the bound; RSS stays bounded', async (t) => {
  const ts = await startTestServer();
  t.teardown(() => ts.stop());
  const limit = ts.config.listen.maxBufferedBytes;
  const probe = await ts.connect();
  const oneReply = JSON.stringify((await probe.call('rpc.discover')).result).length * BATCH;
  t.ok(oneReply * FRAMES > 5 * limit, `the attack asks for ${Math.round((oneReply * FRAMES) / MiB)} MiB of replies`);

  global.gc?.();
  const rssBefore = process.memoryUsage().rss;
  let peak = rssBefore;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);
  const socket = await openPausedWebSocket(ts.url, ts.apiKey);
  let writeError: Error | undefined;
  socket.on('error', (err) => (writeError = err));
  const ended = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  for (let n = 0; n < FRAMES && !socket.destroyed; n++) {
    socket.write(textFrame(discoverBatch(n)));
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  // Now read what the server had queued, if the connection is not gone yet: a bounded amount, then the end.
  let received = 0;
  socket.on('data', (chunk: Buffer) => (received += chunk.length));
  socket.resume();
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([ended, new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('the server kept the slow reader')), 10_000)))]);
  clearTimeout(timer);
  clearInterval(sampler);
  t.ok(received < limit + 2 * oneReply + 8 * MiB, `received ${Math.round(received / MiB)} MiB of ${Math.round((oneReply * FRAMES) / MiB)} MiB asked (bound ${limit / MiB} MiB + socket buffers)`);
  t.ok(received < (oneReply * FRAMES) / 2, 'most of the replies were never queued');
  t.ok(writeError === undefined || /EPIPE|ECONNRESET/.test(writeError.message), `writes failed only because the server hung up (${writeError?.message ?? 'none'})`);
  t.ok(peak - rssBefore < 200 * MiB, `peak RSS growth ${Math.round((peak - rssBefore) / MiB)} MiB (issue 7 saw 1 GB)`);

  // The server still serves everyone else, and a reading client gets the same big batch fine.
  const big = (await probe.raw(discoverBatch(99))) as unknown[];
  t.equal(big.length, BATCH, 'a client that reads gets the whole batch reply');
  await probe.close();
  global.gc?.();
  await new Promise((resolve) => setTimeout(resolve, 200));
  const after = process.memoryUsage().rss;
  t.ok(after - rssBefore < 120 * MiB, `RSS after the slow reader left: +${Math.round((after - rssBefore) / MiB)} MiB (peak +${Math.round((peak - rssBefore) / MiB)} MiB)`);
});
