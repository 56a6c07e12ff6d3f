import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { guardedLookup, isPrivateAddress } from './targetAddress.js';

/** What one POST gave. */
export interface DeliveryResult {
  /** HTTP status, null when there was no answer. */
  readonly status: number | null;
  readonly latencyMs: number;
  /** One line; null on a 2xx. */
  readonly error: string | null;
}

export interface WebhookTransportOptions {
  /** Whole request bound, milliseconds. */
  readonly timeoutMs: number;
  readonly allowPrivateTargets: boolean;
}

/** How much of a receiver's answer is read before the socket is dropped, bytes. */
const MAX_RESPONSE_BYTES = 4096;

/**
 * POSTs one signed event (Standard Webhooks: `webhook-id`,
 * `webhook-timestamp`, `webhook-signature`). Never follows redirects (a 3xx
 * is a failed attempt), reads at most 4 KiB of the answer, aborts after
 * `timeoutMs`, and refuses private targets both as IP literals and as
 * resolved addresses at connect time (docs/security.md). Never throws.
 */
export class WebhookTransport {
  readonly #options: WebhookTransportOptions;
  readonly #lookup: ReturnType<typeof guardedLookup>;

  constructor(options: WebhookTransportOptions) {
    this.#options = options;
    this.#lookup = guardedLookup(options.allowPrivateTargets);
  }

  /** Signs `body` with `secret` (`whsec_…`) as message `messageId` and POSTs it to `url`. */
  post(url: URL, secret: string, messageId: string, body: string, now: Date): Promise<DeliveryResult> {
    const started = performance.now();
    const done = (status: number | null, error: string | null): DeliveryResult => ({
      status,
      latencyMs: Math.round(performance.now() - started),
      error,
    });
    const literal = url.hostname.replace(/^\[|\]$/g, '');
    if (isIP(literal) && !this.#options.allowPrivateTargets && isPrivateAddress(literal)) {
      return Promise.resolve(done(null, `refused: ${literal} is a private address`));
    }
    const headers = {
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(body)),
      'user-agent': 'cti-server-webhooks',
      'webhook-id': messageId,
      'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
      'webhook-signature': new Webhook(secret).sign(messageId, now, body),
    };
    const client = url.protocol === 'https:' ? https : http;
    return new Promise((resolve) => {
      let settled = false;
      const finish = (result: DeliveryResult) => {
        if (settled) return;
        settled = true;
        resolve(result);
      };
      const req = client.request(url, {
        method: 'POST',
        headers,
        lookup: this.#lookup as never,
        agent: false,
        signal: AbortSignal.timeout(this.#options.timeoutMs),
      });
      req.on('response', (res) => {
        const status = res.statusCode ?? 0;
        let read = 0;
        res.on('data', (chunk: Buffer) => {
          read += chunk.length;
          if (read > MAX_RESPONSE_BYTES) res.destroy();
        });
        const end = () => finish(done(status, status >= 200 && status < 300 ? null : `HTTP ${status}`));
        res.on('end', end);
        res.on('close', end);
        res.on('error', end);
      });
      req.on('error', (err: NodeJS.ErrnoException) => {
        const reason = err.name === 'AbortError' || err.name === 'TimeoutError' ? `timeout after ${this.#options.timeoutMs} ms` : err.message;
        finish(done(null, reason.replace(/\s+/g, ' ').slice(0, 500)));
      });
      req.end(body);
    });
  }
}
