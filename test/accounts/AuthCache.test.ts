import t from 'tap';
import { AuthCache } from '../../lib/accounts/AuthCache.js';

t.test('concurrent lookups of one key share one answer, kept for the TTL', async (t) => {
  let now = 0;
  let lookups = 0;
  const cache = new AuthCache<string>(5000, 100, () => now);
  const lookup = async () => `answer ${++lookups}`;
  const answers = await Promise.all([cache.get('k', lookup), cache.get('k', lookup), cache.get('k', lookup)]);
  t.same(answers, ['answer 1', 'answer 1', 'answer 1']);
  now = 4999;
  t.equal(await cache.get('k', lookup), 'answer 1');
  now = 5000;
  t.equal(await cache.get('k', lookup), 'answer 2', 'expired at the TTL');
  cache.clear();
  t.equal(await cache.get('k', lookup), 'answer 3', 'clear forgets');
});

t.test('a failed lookup is not kept', async (t) => {
  const cache = new AuthCache<string>(5000, 100, () => 0);
  await t.rejects(cache.get('k', () => Promise.reject(new Error('store down'))), /store down/);
  t.equal(await cache.get('k', async () => 'ok'), 'ok');
});

t.test('memory is bounded: expired entries go first, then the oldest', async (t) => {
  let now = 0;
  const cache = new AuthCache<number>(1000, 3, () => now);
  for (let i = 0; i < 1000; i++) await cache.get(`key${i}`, async () => i);
  t.equal(cache.size, 3);
  t.equal(await cache.get('key999', async () => -1), 999, 'the newest is kept');
  t.equal(await cache.get('key0', async () => -1), -1, 'the oldest was dropped');
  now = 1000;
  await cache.get('fresh', async () => 1);
  t.equal(cache.size, 1, 'expired entries dropped');
});
