/** A real HTTP receiver of webhooks on loopback for tests: answers 500 while `fails(n)` (n: 1-based request count), else 204 and keeps the request. */
import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedWebhook {
  readonly body: string;
  readonly headers: IncomingHttpHeaders;
}

export interface WebhookReceiver {
  readonly server: Server;
  /** `http://127.0.0.1:<port>/hook`. */
  readonly url: string;
  /** Requests answered 204, in arrival order. */
  readonly received: ReceivedWebhook[];
  /** Requests so far, failed ones included. */
  requests(): number;
}

export async function startWebhookReceiver(fails: (n: number) => boolean): Promise<WebhookReceiver> {
  const received: ReceivedWebhook[] = [];
  let requests = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (fails(++requests)) return void res.writeHead(500).end('not yet');
      received.push({ body: Buffer.concat(chunks).toString(), headers: req.headers });
      res.writeHead(204).end();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, received, requests: () => requests };
}
