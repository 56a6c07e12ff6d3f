// From a real browser (Debian chromium driven by playwright-core): a page on a
// foreign origin cannot open the WebSocket (403 at the upgrade), a page on an
// allowed origin connects, authenticates with sys.authenticate and places a call.
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import t from 'tap';
import { startTestServer } from '../support/startTestServer.js';

const CHROMIUM = '/usr/bin/chromium';

function chromiumMissing(): string | null {
  try {
    accessSync(CHROMIUM, constants.X_OK);
    return null;
  } catch {
    return `${CHROMIUM} not found (test/setup/ensure-chromium.mjs installs it when run as root)`;
  }
}

/**
 * The app page: a plain script, as a web app would ship it. `runRpc` opens the
 * WebSocket, sends the frames one by one (each after the previous reply), and
 * resolves once `waitEvents` events arrived, the socket closed, or 5 s passed.
 */
const PAGE = `<!doctype html><title>app</title><script>
window.runRpc = (url, frames, waitEvents) => new Promise((resolve) => {
  const out = { opened: false, closeCode: null, replies: [], events: [] };
  const ws = new WebSocket(url);
  const next = () => {
    const frame = frames[out.replies.length];
    if (frame !== undefined) ws.send(JSON.stringify(frame));
    else if (out.events.length >= waitEvents) resolve(out);
  };
  ws.onopen = () => { out.opened = true; next(); };
  ws.onmessage = (m) => {
    const msg = JSON.parse(String(m.data));
    (msg.id === undefined ? out.events : out.replies).push(msg);
    next();
  };
  ws.onclose = (e) => { out.closeCode = e.code; resolve(out); };
  setTimeout(() => resolve(out), 5000);
});
</script>`;

/** Serves PAGE on its own port: its origin is `http://<host>:<port>`. */
async function pageServer(): Promise<{ server: Server; port: number }> {
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(PAGE);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

interface PageOutcome {
  opened: boolean;
  closeCode: number | null;
  replies: unknown[];
  events: unknown[];
}

function inPage(page: Page, url: string, frames: unknown[], waitEvents: number): Promise<PageOutcome> {
  return page.evaluate(
    ([u, f, w]) => (globalThis as unknown as { runRpc: (...a: unknown[]) => Promise<PageOutcome> }).runRpc(u, f, w),
    [url, frames, waitEvents] as const,
  );
}

t.test('a browser page: refused from a foreign origin, served from an allowed one', async (t) => {
  const missing = chromiumMissing();
  if (missing) {
    t.pass('skipped', { skip: missing });
    return;
  }
  const allowed = await pageServer();
  const foreign = await pageServer();
  // Two origins on this machine: `localhost:<allowed>` is allowed, `127.0.0.1:<foreign>` is not.
  const allowedOrigin = `http://localhost:${allowed.port}`;
  const ts = await startTestServer({ env: { CTI_LISTEN__ALLOWED_ORIGINS: JSON.stringify([allowedOrigin]) } });
  const profile = mkdtempSync(join(tmpdir(), 'cti-chromium-'));
  let context: BrowserContext | undefined;
  t.teardown(async () => {
    await context?.close();
    rmSync(profile, { recursive: true, force: true });
    await ts.stop();
    allowed.server.close();
    foreign.server.close();
  });
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = await context.newPage();
  const console: string[] = [];
  page.on('console', (m) => console.push(m.text()));

  await page.goto(`http://127.0.0.1:${foreign.port}/`);
  const refused = await inPage(page, ts.url, [{ jsonrpc: '2.0', id: 1, method: 'sys.authenticate', params: [ts.apiKey] }], 0);
  t.equal(refused.opened, false, 'the foreign page never got a connection, even with a valid key to send');
  t.equal(refused.closeCode, 1006, 'closed abnormally (the handshake failed)');
  t.ok(console.some((line) => /Unexpected response code: 403/.test(line)), `the browser saw 403: ${console.join(' | ')}`);

  await page.goto(`${allowedOrigin}/`);
  const frames = [
    { jsonrpc: '2.0', id: 1, method: 'sys.resource.exists', params: ['0.0.0-ext.notify_call-1'] },
    { jsonrpc: '2.0', id: 2, method: 'sys.authenticate', params: { api_key: ts.apiKey } },
    { jsonrpc: '2.0', id: 3, method: 'ext.notify_call.construct', params: { to_uri: '13800000000', play_content: 'prompt.wav', user_data: 'from-browser' } },
  ];
  const served = await inPage(page, ts.url, frames, 1);
  t.equal(served.opened, true, 'the allowed page connects');
  t.match(served.replies, [
    { id: 1, error: { code: -32004 } },
    { id: 2, result: { account_id: ts.accountId } },
    { id: 3, result: { res_id: /ext\.notify_call/, user_data: 'from-browser' } },
  ]);
  t.match(served.events, [{ method: 'ext.notify_call.on_progress', params: { progress: 'dialing', user_data: 'from-browser' } }], 'its events reach the page');
  t.match(ts.engine.legs.map((l) => l.request.requestUri), [/^sip:13800000000@/], 'the call was placed');
});
