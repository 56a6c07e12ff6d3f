import t, { type Test } from 'tap';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { sql } from 'kysely';
import { AccountStore, AccountStoreError, BOOTSTRAP_KEY_FILE, type AccountStoreOptions } from '../../lib/accounts/AccountStore.js';
import { DEFAULT_LIMITS, InvalidAccountInput } from '../../lib/accounts/accountInput.js';
import { signingKeyOf } from '../../lib/accounts/apiKey.js';
import type { StoreConfig } from '../../lib/config/ServerConfig.js';
import { migrations } from '../../lib/store/migrations/index.js';
import { Store } from '../../lib/store/Store.js';
import { storeBackends } from '../support/storeBackends.js';

const execFileAsync = promisify(execFile);

/** A hand-driven clock for cache and last-use timing. */
class Clock {
  ms = Date.UTC(2026, 11, 1, 8, 0, 0);
  readonly now = (): number => this.ms;
}

/** Matches an AccountStoreError of that kind (tap's types want an Error for pattern matches). */
const failure = (kind: 'not_found' | 'conflict') => ({ name: 'AccountStoreError', kind }) as unknown as Error;

async function open(t: Test, config: StoreConfig, options: AccountStoreOptions = {}) {
  const store = await Store.open(config);
  t.teardown(() => store.close());
  return { store, accounts: new AccountStore(store, options) };
}

for (const backend of storeBackends(t)) {
  t.test(backend.name, async (t) => {
    t.test('accounts: create, list, get, disable, enable, limits', async (t) => {
      const clock = new Clock();
      const { accounts } = await open(t, await backend.newStore(), { now: clock.now });
      t.equal((await accounts.create({ accountId: 'zh', name: '深圳分公司 — Ünïcødé' })).name, '深圳分公司 — Ünïcødé', 'any printable text');
      const a = await accounts.create({ accountId: 'acme', name: 'Acme Corp' });
      t.same(a, { accountId: 'acme', name: 'Acme Corp', enabled: true, limits: DEFAULT_LIMITS, createdAt: clock.ms, updatedAt: clock.ms });
      await accounts.create({ accountId: 'b-2_x', limits: { maxLiveResources: 5, callerIds: ['+8675589877675', '100'] } });
      t.same((await accounts.list()).map((x) => x.accountId), ['acme', 'b-2_x', 'zh']);
      t.match(await accounts.get('b-2_x'), { name: 'b-2_x', limits: { maxLiveResources: 5, constructsPerSecond: null, gateways: null, callerIds: ['+8675589877675', '100'] } });
      t.equal(await accounts.get('nobody'), null);
      t.equal(await accounts.get('bad id!'), null, 'a malformed id is just not found');

      clock.ms += 1000;
      t.match(await accounts.setEnabled('acme', false), { enabled: false, updatedAt: clock.ms });
      t.match(await accounts.get('acme'), { enabled: false });
      t.match(await accounts.setEnabled('acme', true), { enabled: true });

      const limited = await accounts.setLimits('acme', { constructsPerSecond: 10, gateways: ['gw1', 'carrier.2'] });
      t.same(limited.limits, { maxLiveResources: null, constructsPerSecond: 10, gateways: ['gw1', 'carrier.2'], callerIds: [] });
      const cleared = await accounts.setLimits('acme', { gateways: null, callerIds: null });
      t.same(cleared.limits, { maxLiveResources: null, constructsPerSecond: 10, gateways: null, callerIds: null }, 'unnamed limits kept');

      await t.rejects(accounts.create({ accountId: 'acme' }), new AccountStoreError('conflict', 'account acme already exists'));
      await t.rejects(accounts.setEnabled('nobody', false), failure('not_found'));
      await t.rejects(accounts.setLimits('nobody', {}), failure('not_found'));
    });

    t.test('every admin input is checked before the store sees it', async (t) => {
      const { accounts } = await open(t, await backend.newStore());
      const bad: Array<[string, () => Promise<unknown>]> = [
        ['id with a space', () => accounts.create({ accountId: 'a b' })],
        ['empty id', () => accounts.create({ accountId: '' })],
        ['65-char id', () => accounts.create({ accountId: 'a'.repeat(65) })],
        ['SQL in the id', () => accounts.create({ accountId: "x'; drop table accounts; --" })],
        ['control character in the name', () => accounts.create({ accountId: 'ok', name: 'evil\u001b[2J' })],
        ['C1 control (CSI) in the name', () => accounts.create({ accountId: 'ok', name: 'evil\u009b2J' })],
        ['bidi override in the name', () => accounts.create({ accountId: 'ok', name: 'invoice\u202egpj.exe' })],
        ['201-char name', () => accounts.create({ accountId: 'ok', name: 'n'.repeat(201) })],
        ['unknown field', () => accounts.create({ accountId: 'ok', admin: true } as never)],
        ['zero live resources', () => accounts.create({ accountId: 'ok', limits: { maxLiveResources: 0 } })],
        ['fractional rate', () => accounts.create({ accountId: 'ok', limits: { constructsPerSecond: 1.5 } })],
        ['gateway with a slash', () => accounts.create({ accountId: 'ok', limits: { gateways: ['../gw'] } })],
        ['caller id with @', () => accounts.create({ accountId: 'ok', limits: { callerIds: ['100@evil.example'] } })],
        ['caller id with CRLF', () => accounts.create({ accountId: 'ok', limits: { callerIds: ['100\r\nX-Evil: 1'] } })],
        ['duplicate caller ids', () => accounts.create({ accountId: 'ok', limits: { callerIds: ['1', '1'] } })],
        ['too many caller ids', () => accounts.create({ accountId: 'ok', limits: { callerIds: Array.from({ length: 10_001 }, (_, i) => String(i)) } })],
        ['limit of another type', () => accounts.setLimits('ok', { maxLiveResources: '5' as never })],
        ['label with a newline', () => accounts.createKey('ok', 'a\nb')],
        ['malformed key id', () => accounts.revokeKey('../../etc/passwd')],
        ['malformed account id for keys', () => accounts.listKeys('a b')],
      ];
      for (const [what, attempt] of bad) await t.rejects(attempt(), InvalidAccountInput, what);
      t.same(await accounts.list(), [], 'nothing was stored');
    });

    t.test('keys: created once, listed without secrets, hashed at rest', async (t) => {
      const clock = new Clock();
      const { store, accounts } = await open(t, await backend.newStore(), { now: clock.now });
      await accounts.create({ accountId: 'acme' });
      const k1 = await accounts.createKey('acme', 'crm');
      clock.ms += 1000;
      const k2 = await accounts.createKey('acme');
      t.match(k1.key, /^cti_[A-Za-z0-9]{16}_[A-Za-z0-9]{40}$/);
      t.equal(k1.key.slice(4, 20), k1.keyId, 'the key id is the public part of the key');
      t.same(
        await accounts.listKeys('acme'),
        [
          { keyId: k2.keyId, accountId: 'acme', label: '', createdAt: clock.ms, lastUsedAt: null, revokedAt: null },
          { keyId: k1.keyId, accountId: 'acme', label: 'crm', createdAt: clock.ms - 1000, lastUsedAt: null, revokedAt: null },
        ],
        'newest first, no secret',
      );
      t.equal((await accounts.listKeys()).length, 2);
      await t.rejects(accounts.listKeys('nobody'), failure('not_found'));
      await t.rejects(accounts.createKey('nobody'), failure('not_found'));
      await t.rejects(accounts.revokeKey('A'.repeat(16)), failure('not_found'));

      const rows = await store.db.selectFrom('api_keys').select(['key_id', 'secret_hash']).execute();
      for (const row of rows) {
        t.match(row.secret_hash, /^scrypt\$16384\$8\$1\$[\w-]{22}\$[\w-]{43}$/);
        t.notOk(row.secret_hash.includes(k1.key.slice(21)) || row.secret_hash.includes(k2.key.slice(21)), 'secret not stored');
      }
      t.not(rows[0]!.secret_hash.split('$')[4], rows[1]!.secret_hash.split('$')[4], 'salt per key');
    });

    t.test('authenticate: good, bad, malformed, oversized, revoked, disabled', async (t) => {
      const { accounts } = await open(t, await backend.newStore());
      await accounts.create({ accountId: 'acme' });
      await accounts.create({ accountId: 'other' });
      const { key, keyId } = await accounts.createKey('acme');
      const otherKey = (await accounts.createKey('other')).key;

      t.match(await accounts.authenticate(key), { accountId: 'acme', enabled: true });
      t.match(await accounts.authenticate(otherKey), { accountId: 'other' });
      const wrongSecret = key.slice(0, -1) + (key.endsWith('a') ? 'b' : 'a');
      const unknownId = `cti_${'Z'.repeat(16)}${key.slice(20)}`;
      const swapped = `${otherKey.slice(0, 21)}${key.slice(21)}`;
      const hostile: unknown[] = [
        wrongSecret,
        unknownId,
        swapped,
        '',
        'cti_',
        key.slice(0, -1),
        `${key}x`,
        ` ${key}`.slice(0, key.length),
        key.replace('_', '.'),
        `Bearer ${key}`,
        key.slice(0, -1) + '\u00e9',
        'x'.repeat(1_000_000),
        `${key}${'\0'.repeat(10)}`,
        "cti_' or 1=1 --________________________________________________",
        null,
        undefined,
        42,
        { toString: () => key },
        [key],
      ];
      for (const presented of hostile) {
        t.equal(await accounts.authenticate(presented as string), null, `refused: ${JSON.stringify(String(presented)).slice(0, 40)}`);
      }

      await accounts.setEnabled('acme', false);
      t.equal(await accounts.authenticate(key), null, 'disabled account: at once on this node');
      await accounts.setEnabled('acme', true);
      t.match(await accounts.authenticate(key), { accountId: 'acme' });

      t.match(await accounts.revokeKey(keyId), { keyId, revokedAt: Number });
      t.equal(await accounts.authenticate(key), null, 'revoked: at once on this node');
      t.match(await accounts.authenticate(otherKey), { accountId: 'other' }, 'other keys unaffected');
    });

    t.test('a wrong secret takes as long for a revoked key or a disabled account as for an active key (no timing oracle)', async (t) => {
      const { accounts } = await open(t, await backend.newStore(), { authCacheMs: 0 });
      await accounts.create({ accountId: 'acme' });
      await accounts.create({ accountId: 'off' });
      const active = (await accounts.createKey('acme')).key;
      const revoked = await accounts.createKey('acme');
      await accounts.revokeKey(revoked.keyId);
      const disabled = (await accounts.createKey('off')).key;
      await accounts.setEnabled('off', false);
      /** Median time of refusing `key` with a wrong secret (a different one each try: nothing is cached). */
      const median = async (key: string): Promise<number> => {
        const times: number[] = [];
        for (const c of 'abcde') {
          const started = process.hrtime.bigint();
          t.equal(await accounts.authenticate(`${key.slice(0, -1)}${key.endsWith(c) ? 'f' : c}`), null);
          times.push(Number(process.hrtime.bigint() - started) / 1e6);
        }
        return times.sort((x, y) => x - y)[2]!;
      };
      const hashed = await median(active);
      for (const [what, key] of [['revoked key', revoked.key], ['disabled account', disabled]] as const) {
        const ms = await median(key);
        // scrypt costs tens of ms; a refusal that skips it takes about 1 ms. A factor of 4 leaves room for a busy machine.
        t.ok(ms > hashed / 4, `${what}: ${ms.toFixed(1)} ms vs ${hashed.toFixed(1)} ms for an active key`);
      }
    });

    t.test('a reconnect storm costs one lookup; answers are cached for authCacheMs only', async (t) => {
      const clock = new Clock();
      const config = await backend.newStore();
      const { accounts } = await open(t, config, { now: clock.now });
      // Another node on the same store, with its own cache.
      const { accounts: node2 } = await open(t, config, { now: clock.now });
      await accounts.create({ accountId: 'acme' });
      const { key, keyId } = await accounts.createKey('acme');

      const elapsed = async (work: () => Promise<unknown>) => {
        const started = process.hrtime.bigint();
        await work();
        return Number(process.hrtime.bigint() - started) / 1e6;
      };
      // The cost of one real check (query + scrypt), measured with another key so nothing is cached.
      const probe = await accounts.createKey('acme');
      const single = await elapsed(() => node2.authenticate(probe.key));
      let storm: Array<unknown> = [];
      const ms = await elapsed(async () => (storm = await Promise.all(Array.from({ length: 200 }, () => node2.authenticate(key)))));
      t.ok(storm.every((a) => (a as { accountId?: string } | null)?.accountId === 'acme'), '200 concurrent authentications of one key');
      // Without the shared answer this is 200 scrypt checks on 4 libuv threads, about 50 single checks.
      t.ok(ms < single * 10 + 200, `storm of 200 took ${ms.toFixed(0)} ms, one check ${single.toFixed(0)} ms`);

      await accounts.revokeKey(keyId);
      clock.ms += 4_900;
      t.match(await node2.authenticate(key), { accountId: 'acme' }, 'the other node may still accept it within the bound');
      clock.ms += 200;
      t.equal(await node2.authenticate(key), null, 'and refuses it after 5 s');

      await accounts.create({ accountId: 'b' });
      const b = await accounts.createKey('b');
      t.match(await node2.authenticate(b.key), { accountId: 'b' });
      await accounts.setEnabled('b', false);
      clock.ms += 5_001;
      t.equal(await node2.authenticate(b.key), null, 'a disabled account within the same bound');
    });

    t.test('last use is written at most once a minute per key', async (t) => {
      const clock = new Clock();
      const { accounts } = await open(t, await backend.newStore(), { now: clock.now, authCacheMs: 0 });
      await accounts.create({ accountId: 'acme' });
      const { key } = await accounts.createKey('acme');
      const lastUsed = async () => (await accounts.listKeys('acme'))[0]!.lastUsedAt;
      t.equal(await lastUsed(), null);
      const first = clock.ms;
      await accounts.authenticate(key);
      t.equal(await lastUsed(), first);
      clock.ms += 59_000;
      await accounts.authenticate(key);
      t.equal(await lastUsed(), first, 'not rewritten within the interval');
      clock.ms += 1_000;
      await accounts.authenticate(key);
      t.equal(await lastUsed(), clock.ms);
      await accounts.authenticate(key.slice(0, -1) + (key.endsWith('a') ? 'b' : 'a'));
      t.equal(await lastUsed(), clock.ms, 'a failed attempt is not a use');
    });

    t.test('a restart keeps accounts and keys', async (t) => {
      const config = await backend.newStore();
      const first = await Store.open(config);
      const before = new AccountStore(first);
      await before.create({ accountId: 'acme', limits: { gateways: ['gw1'] } });
      const { key, keyId } = await before.createKey('acme');
      const revoked = await before.createKey('acme');
      await before.revokeKey(revoked.keyId);
      await first.close();

      const { accounts } = await open(t, config);
      t.match(await accounts.get('acme'), { limits: { gateways: ['gw1'] } });
      t.match(await accounts.authenticate(key), { accountId: 'acme' });
      t.equal(await accounts.authenticate(revoked.key), null);
      const keys = await accounts.listKeys('acme');
      t.same(keys.map((k) => k.keyId).sort(), [keyId, revoked.keyId].sort());
      t.match(keys.find((k) => k.keyId === revoked.keyId), { revokedAt: Number });
    });

    t.test('signing keys: derived from the secret at creation, gone with the key or the account', async (t) => {
      const { accounts } = await open(t, await backend.newStore());
      await accounts.create({ accountId: 'signer' });
      const { key, keyId } = await accounts.createKey('signer');
      const secret = key.split('_')[2]!;
      t.match(await accounts.signingKey(keyId), { account: { accountId: 'signer' }, signingKey: signingKeyOf(secret) });
      t.not((await accounts.signingKey(keyId))!.signingKey, secret, 'not the secret itself');
      t.notMatch(JSON.stringify(await accounts.listKeys('signer')), signingKeyOf(secret), 'never listed');
      for (const bad of ['', 'x'.repeat(16), `${keyId}'--`, 'a'.repeat(10_000)]) t.equal(await accounts.signingKey(bad), null, `malformed or unknown ${bad.slice(0, 20)}`);
      await accounts.setEnabled('signer', false);
      t.equal(await accounts.signingKey(keyId), null, 'disabled account');
      await accounts.setEnabled('signer', true);
      await accounts.revokeKey(keyId);
      t.equal(await accounts.signingKey(keyId), null, 'revoked key');
    });

    t.test('two stores on one database see the same accounts and revocations', async (t) => {
      const config = await backend.newStore();
      const { accounts: a } = await open(t, config, { authCacheMs: 0 });
      const { accounts: b } = await open(t, config, { authCacheMs: 0 });
      await a.create({ accountId: 'shared' });
      const { key, keyId } = await a.createKey('shared');
      t.match(await b.get('shared'), { accountId: 'shared' });
      t.match(await b.authenticate(key), { accountId: 'shared' });
      await b.revokeKey(keyId);
      t.equal(await a.authenticate(key), null);
      await t.rejects(b.create({ accountId: 'shared' }), failure('conflict'));
    });

    t.test('three server processes starting together on one empty store: migrations once, one bootstrap', async (t) => {
      const config = await backend.newStore();
      const fixtures = t.testdir();
      const starts = [1, 2, 3].map(async (i) => {
        const dataDir = join(fixtures, `node${i}`);
        const { stdout } = await execFileAsync(process.execPath, ['--import=tsx', 'test/support/bootstrapProcess.ts', JSON.stringify(config), dataDir], {
          timeout: 60_000,
        });
        return (JSON.parse(stdout) as { path: string | null }).path;
      });
      const paths = await Promise.all(starts);
      t.equal(paths.filter((p) => p !== null).length, 1, `one process bootstrapped: ${JSON.stringify(paths)}`);
      const { store, accounts } = await open(t, config);
      const applied = await sql<{ name: string }>`select name from kysely_migration`.execute(store.db);
      t.equal(applied.rows.length, Object.keys(migrations).length, 'each migration recorded once');
      t.same((await accounts.list()).map((a) => a.accountId), ['default']);
      t.equal((await accounts.listKeys()).length, 1, 'one key, the one in the file');
      const key = readFileSync(paths.find((p) => p !== null)!, 'utf8').trim();
      t.match(await accounts.authenticate(key), { accountId: 'default' });
    });

    t.test('bootstrap: one account and key on an empty store, written once to a private file', async (t) => {
      const dataDir = join(t.testdir(), 'data');
      const config = await backend.newStore();
      const { accounts } = await open(t, config);
      const path = await accounts.bootstrap(dataDir);
      t.equal(path, join(dataDir, BOOTSTRAP_KEY_FILE));
      t.equal(statSync(path!).mode & 0o777, 0o600, 'file readable only by the server user');
      t.equal(statSync(dataDir).mode & 0o777, 0o700);
      const key = readFileSync(path!, 'utf8').trim();
      t.match(await accounts.authenticate(key), { accountId: 'default', enabled: true, limits: { callerIds: null } });

      t.equal(await accounts.bootstrap(dataDir), null, 'idempotent');
      t.equal(readFileSync(path!, 'utf8').trim(), key, 'file untouched');
      const { accounts: node2 } = await open(t, config);
      t.equal(await node2.bootstrap(dataDir), null, 'another node finds the account');
      t.equal((await accounts.list()).length, 1);
      t.equal((await accounts.listKeys()).length, 1);
    });

    t.test('bootstrap does nothing when any account exists', async (t) => {
      const dataDir = t.testdir();
      const { accounts } = await open(t, await backend.newStore());
      await accounts.create({ accountId: 'mine' });
      t.equal(await accounts.bootstrap(dataDir), null);
      t.same((await accounts.list()).map((a) => a.accountId), ['mine']);
    });

    t.test('bootstrap that cannot write its file leaves the store empty', async (t) => {
      const parent = t.testdir();
      const notADir = join(parent, 'file');
      writeFileSync(notADir, '');
      const { accounts } = await open(t, await backend.newStore());
      await t.rejects(accounts.bootstrap(notADir));
      t.same(await accounts.list(), [], 'rolled back: no account whose key nobody has');
    });
  });
}
