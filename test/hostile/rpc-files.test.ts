import t, { type Test } from 'tap';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RpcTestClient, type RpcMessage } from '../support/RpcTestClient.js';
import { startTestServerWithClient } from '../support/startTestServer.js';

/** A server whose media and recordings folders hold traps pointing at `outside`, a folder the server must never touch. */
async function setup(t: Test, env: Record<string, string> = {}) {
  const ts = await startTestServerWithClient(t, env);
  const outside = mkdtempSync(join(tmpdir(), 'cti-outside-'));
  writeFileSync(join(outside, 'victim.wav'), 'precious');
  const { mediaDir } = ts.config;
  // record_file names resolve in the account's own folder of recordingsDir.
  const recordingsDir = join(ts.config.recordingsDir, ts.accountId);
  mkdirSync(recordingsDir, { recursive: true });
  symlinkSync(join(outside, 'victim.wav'), join(recordingsDir, 'evil.wav'));
  symlinkSync(outside, join(recordingsDir, 'linkdir'));
  symlinkSync(join(outside, 'not-yet.wav'), join(recordingsDir, 'dangling.wav'));
  symlinkSync(join(outside, 'no-dir'), join(recordingsDir, 'dangling-dir'));
  symlinkSync(join(recordingsDir, 'loop-b'), join(recordingsDir, 'loop-a'));
  symlinkSync(join(recordingsDir, 'loop-a'), join(recordingsDir, 'loop-b'));
  symlinkSync(join(outside, 'victim.wav'), join(mediaDir, 'evil.wav'));
  symlinkSync(outside, join(mediaDir, 'linkdir'));
  mkdirSync(join(recordingsDir, 'inner'));
  symlinkSync(join(recordingsDir, 'inner'), join(recordingsDir, 'inner-link'));
  const untouched = (): void => {
    t.same(readdirSync(outside).sort(), ['victim.wav'], 'nothing created outside');
    t.equal(readFileSync(join(outside, 'victim.wav'), 'utf8'), 'precious', 'nothing written outside');
  };
  return { ...ts, outside, untouched, recordingsDir };
}

const DUO = { to1_uri: '13900000001', to2_uri: '13900000002' };

function refusal(reply: RpcMessage, roots: readonly string[]): string {
  const text = JSON.stringify(reply.error ?? reply.result);
  for (const root of roots) if (text.includes(root)) return `leaks a server path: ${text}`;
  return reply.error?.code === -32602 ? (reply.error.data?.errors ?? []).map((e) => `${e.param}: ${e.message}`).join('; ') : `not -32602: ${text}`;
}

t.test('record_file through a symlinked file is refused; the target is never written', async (t) => {
  const s = await setup(t);
  const reply = await s.client.call('ext.duo_callback.construct', { ...DUO, record_file: 'evil.wav' });
  t.match(refusal(reply, [s.outside, s.config.recordingsDir]), /^record_file: 'evil.wav' is a link/);
  t.equal(s.engine.legs.length, 0);
  s.untouched();
});

t.test('record_file through a symlinked folder is refused before anything is created (no newsub outside)', async (t) => {
  const s = await setup(t);
  const reply = await s.client.call('ext.duo_callback.construct', { ...DUO, record_file: 'linkdir/newsub/x.wav' });
  t.match(refusal(reply, [s.outside, s.config.recordingsDir]), /^record_file: 'linkdir\/newsub\/x.wav' links outside its folder$/);
  t.notOk(existsSync(join(s.outside, 'newsub')));
  s.untouched();
});

t.test('a dangling link (file or folder) is refused: its target would be created outside', async (t) => {
  const s = await setup(t);
  for (const name of ['dangling.wav', 'dangling-dir/x.wav', 'loop-a/x.wav', 'loop-a']) {
    const reply = await s.client.call('ext.duo_callback.construct', { ...DUO, record_file: name });
    t.match(refusal(reply, [s.outside, s.config.recordingsDir]), /^record_file: /, name);
  }
  s.untouched();
});

t.test('no folder is created when the construct is refused for any other reason', async (t) => {
  const s = await setup(t, { CTI_LIMITS__MAX_RESOURCES: '1' });
  const record_file = 'new-a/new-b/x.wav';
  const refusedFor = {
    'another param': { ...DUO, record_file, to2_uri: 'sips:1@gw1' },
    'the same number twice': { ...DUO, record_file, to2_uri: DUO.to1_uri },
  };
  for (const [why, params] of Object.entries(refusedFor)) {
    t.equal((await s.client.call('ext.duo_callback.construct', params)).error?.code, -32602, why);
  }
  s.engine.available = false;
  t.equal((await s.client.call('ext.duo_callback.construct', { ...DUO, record_file })).error?.code, -32005, 'engine unavailable');
  s.engine.available = true;
  t.ok((await s.client.call('ext.notify_call.construct', { to_uri: '1', play_content: 'prompt.wav' })).result, 'the one resource allowed');
  t.equal((await s.client.call('ext.duo_callback.construct', { ...DUO, record_file })).error?.code, -32003, 'capacity exceeded');
  t.notOk(existsSync(join(s.recordingsDir, 'new-a')), 'no folder left behind');
  s.untouched();
});

t.test('an accepted construct creates its sub-folders inside, also through a link that stays inside', async (t) => {
  const s = await setup(t);
  const reply = await s.client.call('ext.duo_callback.construct', { ...DUO, record_file: 'inner-link/2026/12/x.wav' });
  t.ok(reply.result, JSON.stringify(reply.error));
  t.ok(lstatSync(join(s.recordingsDir, 'inner', '2026', '12')).isDirectory(), 'created under the real folder');
  s.untouched();
});

t.test('a name longer than the file system allows is refused at construct, nothing dialled', async (t) => {
  const s = await setup(t);
  const long = 'é'.repeat(128) + '.wav'; // 260 bytes in UTF-8, within the schema's 255 characters
  for (const params of [{ ...DUO, record_file: long }, { ...DUO, ring_play_file: long }]) {
    const reply = await s.client.call('ext.duo_callback.construct', params);
    t.match(refusal(reply, [s.config.recordingsDir, s.config.mediaDir]), /: has a name longer than 255 bytes/);
  }
  const notify = await s.client.call('ext.notify_call.construct', { to_uri: '1', play_content: [[`prompt.wav|${long}`, 7]] });
  t.match(refusal(notify, [s.config.mediaDir]), /^play_content: has a name longer than 255 bytes/);
  t.equal(s.engine.legs.length, 0, 'nobody was called');
});

t.test('media is never read through links out, nor with control characters in names', async (t) => {
  const s = await setup(t);
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['ext.duo_callback.construct', { ...DUO, ring_play_file: 'evil.wav' }, /^ring_play_file: 'evil.wav' links outside its folder$/],
    ['ext.duo_callback.construct', { ...DUO, ring_play_file: 'linkdir/victim.wav' }, /links outside its folder/],
    ['ext.notify_call.construct', { to_uri: '1', play_content: 'linkdir/victim.wav' }, /^play_content: .*links outside/],
    ['ext.notify_call.construct', { to_uri: '1', play_content: [['prompt.wav|evil.wav', 7]] }, /^play_content: 'evil.wav' links outside/],
    ['ext.notify_call.construct', { to_uri: '1', play_content: 'prompt.wav\n' }, /^play_content: must not contain control characters$/],
    ['ext.duo_callback.construct', { ...DUO, record_file: 'a\u0085b.wav' }, /^record_file: must not contain control characters$/],
    ['ext.duo_callback.construct', { ...DUO, record_file: 'x\ud800.wav' }, /^record_file: must be well-formed Unicode/],
  ];
  for (const [method, params, expected] of cases) {
    t.match(refusal(await s.client.call(method, params), [s.outside, s.config.mediaDir, s.config.recordingsDir]), expected);
  }
  s.untouched();
});

t.test('engine failures reach clients without server paths', async (t) => {
  const s = await setup(t);
  const { res_id } = (await s.client.call('ext.notify_call.construct', { to_uri: '1', play_content: 'prompt.wav' })).result as { res_id: string };
  await s.client.waitForEvent('ext.notify_call.on_progress', res_id);
  const path = join(s.recordingsDir, 'x'.repeat(300), 'y.wav');
  s.engine.legs[0]!.end({ by: 'engine', reason: `ENAMETOOLONG: name too long, open '${path}'` });
  const [released] = await s.client.waitForEvent('ext.notify_call.on_released', res_id);
  t.match(released!.params, { error: { code: 'engine_error', message: "ENAMETOOLONG: name too long, open '<path>'" } });
});

t.test("one account's record_file can never name another account's recording (reproduced: B overwrote A's order-77.wav)", async (t) => {
  const s = await setup(t);
  const otherKey = await s.accounts.create('other');
  const other = await RpcTestClient.connect(s.url, otherKey);
  t.teardown(() => other.close());
  /** Constructs a recorded duo_callback, answers both parties; the path the engine was told to record to. */
  const recordedPath = async (client: RpcTestClient, record_file: string): Promise<string | undefined> => {
    const legs = s.engine.legs.length;
    const reply = await client.call('ext.duo_callback.construct', { ...DUO, record_file });
    t.ok(reply.result, JSON.stringify(reply.error));
    await until(() => s.engine.legs.length > legs);
    s.engine.legs[legs]!.answer();
    await until(() => s.engine.legs.length > legs + 1);
    s.engine.legs[legs + 1]!.answer();
    await until(() => s.engine.legs[legs]!.recordings.length > 0);
    return s.engine.legs[legs]!.recordings[0]!.path;
  };
  const mine = await recordedPath(s.client, 'order-77.wav');
  const theirs = await recordedPath(other, 'order-77.wav');
  t.not(theirs, mine, 'the same name is two different files');
  t.equal(mine, join(realpathSync(s.config.recordingsDir), s.accountId, 'order-77.wav'), "in the first account's folder");
  t.equal(theirs, join(realpathSync(s.config.recordingsDir), 'other', 'order-77.wav'), "in the other account's folder");
  const climb = await other.call('ext.duo_callback.construct', { ...DUO, record_file: `../${s.accountId}/order-77.wav` });
  t.match(refusal(climb, [s.config.recordingsDir]), /^record_file: /, "'..' cannot reach a sibling account's folder");
  s.untouched();
});

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 5));
  if (!condition()) throw new Error('timed out waiting for the engine');
}
