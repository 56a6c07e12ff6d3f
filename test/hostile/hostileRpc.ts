/**
 * A seeded generator of hostile JSON-RPC frames, each with the answer the
 * JSON-RPC 2.0 spec and rpc-schema/openrpc.json prescribe. The expectation
 * comes from how the frame was built (its category), never from the
 * server's own validator: an independent oracle.
 *
 * Decisions the oracle encodes (docs/security.md): an invalid request echoes
 * its id when the id itself is valid (string, number, null), else null; a
 * batch longer than the server's limit gets one -32600 object.
 */

/** One reply the server must send: an error with this code (and for -32602, a problem naming `param`), or a result. */
export type Expected =
  | { readonly id: unknown; readonly code: number; readonly param?: string }
  | { readonly id: unknown; readonly result: unknown };

export interface HostileFrame {
  readonly category: string;
  readonly text: string;
  /** null: no reply at all (notifications only); an array: a batch reply, in any order. */
  readonly expect: Expected | Expected[] | null;
}

export const GATEWAY = 'gw1';
export const MAX_BATCH = 100;
export const PROMPT = 'prompt.wav';
/** Frames stay under the server's default 64 KiB frame limit (oversized frames have their own test). */
const FRAME_BUDGET = 60_000;

/** mulberry32: small, fast, reproducible. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const INVALID_REQUEST = -32600;
const METHOD_NOT_FOUND = -32601;
const INVALID_PARAMS = -32602;
const NOT_FOUND = -32001;

/** Characters that must never reach a SIP message, in the forms an attacker would try. */
const URI_POISON = ['\r\n', '\r', '\n', '\u0000', '\u010d\u010a', '\u0120', ' ', '\t', '\u007f', '\u0085', '\u2028', '\ufeff', '\ud800', 'é'];
/** URIs that break RFC 3261's grammar (or this server's rules) in ASCII alone. */
const BAD_ASCII_URIS = [
  'sip:%ZZ@gw1', 'sip:%E0%A4%A@gw1', 'sip:%@gw1', 'sip:1000%@gw1', 'sip:%0d%0a@gw1', 'sip:%0D%0AX-Evil:%201@gw1', 'sip:a%00@gw1',
  'sip:1000@gw1;x=%0a', 'sips:1000@gw1', 'SIPS:1000@gw1', 'sip:1000@gw1?X-Evil=1', 'sip:a:secret@gw1', 'sip:1000@gw1:0',
  'sip:1000@gw1:99999', 'sip:1000@gw1:5o60', 'sip:1000@-gw1', 'sip:1000@gw1..', 'sip:1000@999.1.1.1', 'sip:1000@[::g]',
  'sip:a@b@gw1', 'sip:<1000>@gw1', 'sip:"1000"@gw1', 'sip:1000@gw1;=x', 'sip:1000@gw1;a=', 'sip:', 'sip:@gw1', 'tel:1000',
  'http://gw1/', 'sip:1000@gw1>;tag=x', '<sip:1000@gw1>', '1000 ', '+', '++1', '1-000', 'sip:1000@gw1%',
];
/** Valid grammar, but not a configured gateway: refused for callees only. */
const FOREIGN_HOSTS = ['sip:1000@evil.example', 'sip:1000@192.0.2.99', 'sip:1000@[2001:db8::1]', 'sip:1000@gw1.example'];
const WRONG_TYPES: unknown[] = [42, -1, 1.5, true, false, {}, { a: 1 }, [1], [[]], ['sip:1@gw1', 2]];
const BAD_FILE_NAMES = [
  '../escape.wav', '../../etc/passwd', '/etc/passwd', 'a\u0000b.wav', 'a\nb.wav', 'a\rb.wav', 'x\u0085.wav', 'bad\ud800.wav',
  'é'.repeat(200), `${'d'.repeat(250)}/${'f'.repeat(256)}`, 'missing-file.wav', 'sub/../../x.wav', '.', '..',
];

interface MethodSpec {
  readonly name: string;
  /** Valid params by name; `bad` mutates exactly one of them. */
  readonly base: Record<string, unknown>;
  /** The params in schema order, for by-position calls. */
  readonly order: readonly string[];
  /** For each param: hostile values that must each give -32602 naming it. */
  readonly bad: Record<string, (r: () => number) => unknown>;
}

const pick = <T>(r: () => number, list: readonly T[]): T => list[Math.floor(r() * list.length)]!;
const int = (r: () => number, lo: number, hi: number): number => lo + Math.floor(r() * (hi - lo + 1));

function poisonedUri(r: () => number): string {
  const base = pick(r, ['sip:1000@gw1', 'sip:1000@192.0.2.10:5060', '13800000000', 'sip:user@gw1;transport=udp']);
  const at = int(r, base.startsWith('sip:') ? 4 : 0, base.length);
  return base.slice(0, at) + pick(r, URI_POISON) + pick(r, ['', 'X-Evil: 1', 'Content-Length: 0\r\n\r\n']) + base.slice(at);
}

/**
 * A value nested `depth` levels deep. Built as a token replaced in the frame
 * text (`expand`): JSON.stringify itself would overflow the test's stack.
 */
function deep(r: () => number, depth = int(r, 100, 5000)): string {
  return `@@deep:${depth}:${r() < 0.5 ? 'array' : 'object'}@@`;
}

function expand(text: string): string {
  return text.replace(/"@@deep:(\d+):(array|object)@@"/g, (_token, depth: string, kind: string) => {
    const n = Number(depth);
    return kind === 'array' ? `${'['.repeat(n)}1${']'.repeat(n)}` : `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`;
  });
}

function badUri(r: () => number, callee: boolean): unknown {
  const roll = r();
  if (roll < 0.35) return poisonedUri(r);
  if (roll < 0.65) return pick(r, BAD_ASCII_URIS);
  if (roll < 0.72 && callee) return pick(r, FOREIGN_HOSTS);
  if (roll < 0.8) return `sip:${'a'.repeat(int(r, 257, 20_000))}@gw1`;
  if (roll < 0.9) return pick(r, WRONG_TYPES);
  return deep(r, int(r, 10, 2000));
}

const badInt = (min: number, max: number) => (r: () => number): unknown =>
  pick(r, [min - 1, -1e6, 1.5, max + 1, 1e300, '10', true, [], {}, deep(r, 50)]);
const badString = (max: number) => (r: () => number): unknown =>
  r() < 0.5 ? 'u'.repeat(max + int(r, 1, 1000)) : pick(r, [1, true, [], { a: 'b' }, deep(r, 100)]);
const badResId = (r: () => number): unknown => pick(r, ['', 'r'.repeat(129), 7, null, true, [], { id: 1 }, deep(r, 300)]);
const badEventId = (r: () => number): unknown => pick(r, [-1, -1e6, 1.5, 2 ** 53, 1e300, '10', true, [], {}, deep(r, 50)]);
/** Refused by the schema (type, length) or at construct (grammar, private targets: the test server does not allow them). */
const badStatusUrl = (r: () => number): unknown =>
  pick(r, [
    'ftp://hooks.example/x',
    'http://127.0.0.1:9/x',
    'https://[::1]/x',
    'http://localhost/x',
    'http://169.254.169.254/latest/meta-data',
    'https://u:p@hooks.example/x',
    'https://hooks.example/x#f',
    'hooks.example/x',
    'javascript:alert(1)',
    `https://hooks.example/${'a'.repeat(int(r, 2048, 5000))}`,
    1,
    true,
    [],
    deep(r, 50),
  ]);
const badFile = (r: () => number): unknown => (r() < 0.8 ? pick(r, BAD_FILE_NAMES) : pick(r, [1, true, {}, [PROMPT]]));

const METHODS: readonly MethodSpec[] = [
  {
    name: 'ext.duo_callback.construct',
    base: { to1_uri: '13900000001', to2_uri: '13900000002' },
    order: ['from1_uri', 'to1_uri', 'from2_uri', 'to2_uri', 'max_answer_seconds', 'max_ring_seconds', 'ring_play_file', 'ring_play_mode', 'record_file', 'user_data', 'countdown_seconds', 'countdown_play_file', 'record_mode', 'status_url'],
    bad: {
      to1_uri: (r) => badUri(r, true),
      to2_uri: (r) => badUri(r, true),
      from1_uri: (r) => badUri(r, false),
      from2_uri: (r) => badUri(r, false),
      max_answer_seconds: badInt(1, 86_400),
      max_ring_seconds: badInt(1, 600),
      ring_play_file: badFile,
      ring_play_mode: (r) => pick(r, [4, -1, 1.5, '3', true, [], {}]),
      record_mode: (r) => pick(r, [3, -1, 1.5, '1', true, [], {}]),
      status_url: badStatusUrl,
      record_file: (r) => pick(r, BAD_FILE_NAMES.filter((n) => n !== 'missing-file.wav')),
      user_data: badString(4096),
      countdown_seconds: badInt(1, 86_399),
      countdown_play_file: badFile,
    },
  },
  {
    name: 'ext.notify_call.construct',
    base: { to_uri: '13900000003', play_content: PROMPT },
    order: ['from_uri', 'to_uri', 'play_content', 'play_repeat', 'max_ring_seconds', 'user_data', 'collect_dtmf', 'status_url'],
    bad: {
      to_uri: (r) => (r() < 0.8 ? badUri(r, true) : [pick(r, BAD_ASCII_URIS)]),
      from_uri: (r) => badUri(r, false),
      play_content: (r) =>
        pick(r, [
          badFile(r),
          [[pick(r, BAD_FILE_NAMES), 0]],
          [[PROMPT, pick(r, [1, 2, 3, 8, -1])]],
          [[PROMPT, 0, 5]],
          [[PROMPT]],
          [],
          `${PROMPT}|`.repeat(10),
          [[`${PROMPT}|`.repeat(int(r, 101, 150)), 7]],
          Array.from({ length: 65 }, () => [PROMPT, 0]),
          deep(r, 200),
        ]),
      play_repeat: badInt(0, 100),
      max_ring_seconds: badInt(1, 600),
      user_data: badString(4096),
      status_url: badStatusUrl,
      collect_dtmf: (r) =>
        pick(r, [
          { max_digits: badInt(1, 32)(r) },
          { first_digit_timeout: badInt(1, 60)(r) },
          { inter_digit_timeout: badInt(1, 30)(r) },
          { terminator: pick(r, ['1', '##', 'x', 1, true]) },
          { barge_in: pick(r, ['yes', 1, []]) },
          { replies: { [pick(r, ['', '<x>', '1'.repeat(33), 'E', '1 '])]: PROMPT } },
          { replies: { '1': badFile(r) } },
          { replies: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [String(i), PROMPT])) },
          { [pick(r, ['x', '__proto__', 'MAX_DIGITS'])]: 1 },
          pick(r, ['1', 1, true, [], deep(r, 100)]),
        ]),
    },
  },
  { name: 'ext.duo_callback.cancel', base: { res_id: 'x' }, order: ['res_id'], bad: { res_id: badResId } },
  { name: 'ext.notify_call.cancel', base: { res_id: 'x' }, order: ['res_id'], bad: { res_id: badResId } },
  { name: 'sys.resource.get', base: { res_id: 'x' }, order: ['res_id'], bad: { res_id: badResId } },
  { name: 'sys.resource.exists', base: { res_id: 'x' }, order: ['res_id'], bad: { res_id: badResId } },
  {
    name: 'sys.subscribe',
    base: { class: 'ext.notify_call' },
    order: ['class', 'event', 'res_id', 'from_event_id'],
    bad: {
      class: (r) => pick(r, ['ext.other', '', 1, true, ['ext.notify_call'], deep(r, 100)]),
      event: (r) => pick(r, ['on_everything', '', 2, {}, deep(r, 100)]),
      res_id: (r) => pick(r, ['', 'r'.repeat(129), 7, true, [], { id: 1 }, deep(r, 300)]),
      from_event_id: badEventId,
    },
  },
  {
    name: 'sys.events.replay',
    base: { after_event_id: 0 },
    order: ['after_event_id', 'limit'],
    bad: { after_event_id: badEventId, limit: badInt(1, 1000) },
  },
  { name: 'sys.cdr.get', base: { res_id: 'x' }, order: ['res_id'], bad: { res_id: badResId } },
  {
    name: 'sys.cdr.list',
    base: {},
    order: ['since', 'until', 'cursor', 'limit'],
    bad: {
      since: badEventId,
      until: badEventId,
      cursor: (r) => pick(r, ['', "1:x' OR '1'='1", '1:../../etc', `1:${'r'.repeat(129)}`, '12345678901234567:a', 'a:b', 7, [], deep(r, 100)]),
      limit: badInt(1, 500),
    },
  },
  {
    name: 'sys.webhooks.attempts',
    base: {},
    order: ['before', 'limit'],
    bad: { before: badEventId, limit: badInt(1, 200) },
  },
  {
    name: 'sys.unsubscribe',
    base: { subscription_id: 's' },
    order: ['subscription_id'],
    bad: { subscription_id: (r) => pick(r, ['', 's'.repeat(65), 1, null, [], deep(r, 100)]) },
  },
];

/** Ids the server must echo exactly. */
function validId(r: () => number, n: number): string | number | null {
  return pick(r, [n, `id-${n}`, -n, n + 0.5, 2 ** 53 - n, `ü\u2028${n}`, null, 'x'.repeat(int(r, 1, 2000)) + n]);
}

function invalidId(r: () => number): unknown {
  return pick(r, [true, false, {}, { id: 1 }, [], [1], deep(r, int(r, 1000, 8000))]);
}

export interface EntryBuild {
  readonly entry: unknown;
  readonly expect: Expected | null;
  readonly category: string;
}

/** One request object (or junk in its place) and its expected reply. */
function entry(r: () => number, n: number): EntryBuild {
  const roll = r();
  const id = validId(r, n);
  const request = (method: unknown, params?: unknown, extra: Record<string, unknown> = {}) => ({
    jsonrpc: '2.0',
    id,
    method,
    ...(params === undefined ? {} : { params }),
    ...extra,
  });
  if (roll < 0.04) return { category: 'not an object', entry: pick(r, [null, 0, 1, false, true, '', 'x', 'jsonrpc']), expect: { id: null, code: INVALID_REQUEST } };
  if (roll < 0.09) {
    return { category: 'method not a string', entry: request(pick(r, [1, null, [], ['sys.resource.exists'], {}, true, deep(r, 50)])), expect: { id, code: INVALID_REQUEST } };
  }
  if (roll < 0.15) {
    // Must not run: a construct that would otherwise be valid.
    const e = { jsonrpc: '2.0', id: invalidId(r), method: 'ext.notify_call.construct', params: { to_uri: '13900000009', play_content: PROMPT } };
    return { category: 'id of a wrong type', entry: e, expect: { id: null, code: INVALID_REQUEST } };
  }
  if (roll < 0.19) {
    const e = { ...request('sys.resource.exists', ['x']), jsonrpc: pick(r, ['1.0', '2', 2, null, '2.0 ', undefined]) };
    return { category: 'jsonrpc not "2.0"', entry: e, expect: { id, code: INVALID_REQUEST } };
  }
  if (roll < 0.23) {
    return { category: 'params not structured', entry: request('sys.resource.exists', pick(r, ['x', 1, true, null])), expect: { id, code: INVALID_REQUEST } };
  }
  if (roll < 0.26) {
    const extra = pick(r, [{ result: 1 }, { error: {} }, { Method: 'x' }, { extra: deep(r, 100) }]);
    return { category: 'unknown member', entry: request('sys.resource.exists', ['x'], extra), expect: { id, code: INVALID_REQUEST } };
  }
  if (roll < 0.31) {
    const method = pick(r, ['', 'nope', 'rpc.nothing', 'ext.duo_callback', 'sys.resource.get ', 'SYS.RESOURCE.GET', 'm'.repeat(int(r, 1, 30_000)), 'constructor', '__proto__', 'toString']);
    return { category: 'unknown method', entry: request(method, {}), expect: { id, code: METHOD_NOT_FOUND } };
  }
  if (roll < 0.36) {
    const method = pick(r, ['sys.resource.exists', 'sys.resource.get', 'ext.duo_callback.cancel', 'ext.notify_call.cancel', 'sys.unsubscribe']);
    const key = method === 'sys.unsubscribe' ? 'subscription_id' : 'res_id';
    const value = `0.0.0-ext.notify_call-${int(r, 1, 1e9)}`;
    const byPosition = r() < 0.5;
    const expect: Expected =
      method === 'sys.resource.exists' || method === 'sys.unsubscribe' ? { id, result: false } : { id, code: NOT_FOUND };
    return { category: 'well-formed, nothing there', entry: request(method, byPosition ? [value] : { [key]: value }), expect };
  }
  if (roll < 0.4) {
    return { category: 'notification', entry: { jsonrpc: '2.0', method: pick(r, ['sys.resource.exists', 'nope', 'ext.notify_call.cancel']), params: ['x'] }, expect: null };
  }
  if (roll < 0.43) {
    const spec = pick(r, METHODS);
    const extra = pick(r, ['colour', '__proto__', 'constructor', 'TO1_URI', 'p'.repeat(300)]);
    return { category: 'unknown param', entry: request(spec.name, { ...spec.base, [extra]: 1 }), expect: { id, code: INVALID_PARAMS, param: extra } };
  }
  if (roll < 0.45) {
    const spec = pick(r, METHODS);
    const params = Array.from({ length: spec.order.length + int(r, 1, 3) }, () => null);
    return { category: 'too many positional params', entry: request(spec.name, params), expect: { id, code: INVALID_PARAMS, param: 'params' } };
  }
  if (roll < 0.46) {
    return { category: 'rpc.discover with params', entry: request('rpc.discover', { x: 1 }), expect: { id, code: INVALID_PARAMS, param: 'x' } };
  }
  const spec = pick(r, METHODS);
  const param = pick(r, Object.keys(spec.bad));
  const params: Record<string, unknown> = { ...spec.base, [param]: spec.bad[param]!(r) };
  const positional = r() < 0.3 && params[param] !== null;
  const sent = positional ? spec.order.map((p) => (p in params ? params[p] : null)) : params;
  return { category: `bad ${spec.name} ${param}`, entry: request(spec.name, sent), expect: { id, code: INVALID_PARAMS, param } };
}

/** Frame `n` of the seeded stream. */
export function hostileFrame(r: () => number, n: number): HostileFrame {
  const roll = r();
  if (roll < 0.04) {
    const text = expand(JSON.stringify(entry(r, n).entry) ?? '{}');
    // A strict prefix of an object or array text is never JSON.
    const whole = text.startsWith('{') || text.startsWith('[') ? text : `{"a":${text}}`;
    return { category: 'not JSON', text: whole.slice(0, int(r, 0, whole.length - 1)) + pick(r, ['', ' ', '\u0000']), expect: { id: null, code: -32700 } };
  }
  if (roll < 0.06) return { category: 'top-level scalar', text: pick(r, ['false', 'true', '0', '-1.5e3', 'null', '""', '"x"']), expect: { id: null, code: INVALID_REQUEST } };
  if (roll < 0.07) return { category: 'empty batch', text: pick(r, ['[]', ' [ ] ']), expect: { id: null, code: INVALID_REQUEST } };
  if (roll < 0.08) {
    const length = MAX_BATCH + int(r, 1, 500);
    const text = JSON.stringify(Array.from({ length }, (_, i) => ({ jsonrpc: '2.0', id: i, method: 'sys.resource.exists', params: ['x'] })));
    return { category: 'batch over the limit', text, expect: { id: null, code: INVALID_REQUEST } };
  }
  if (roll < 0.25) {
    const length = r() < 0.3 ? 1 : int(r, 2, r() < 0.9 ? 12 : MAX_BATCH);
    const built = Array.from({ length }, (_, i) => entry(r, n * 1000 + i));
    const expect = built.map((b) => b.expect).filter((e): e is Expected => e !== null);
    const text = expand(JSON.stringify(built.map((b) => b.entry)));
    if (Buffer.byteLength(text) > FRAME_BUDGET) return hostileFrame(r, n);
    return { category: `batch of ${length}`, text, expect: expect.length ? expect : null };
  }
  const built = entry(r, n);
  const text = expand(JSON.stringify(built.entry) ?? 'null');
  if (Buffer.byteLength(text) > FRAME_BUDGET) return hostileFrame(r, n);
  return { category: built.category, text, expect: built.expect };
}
