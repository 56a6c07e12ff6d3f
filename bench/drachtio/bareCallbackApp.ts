/**
 * BASELINE of the drachtio bench: a bare drachtio-srf + drachtio-fsmrf
 * two-way callback app, the smallest program that does what ext.duo_callback
 * does on the drachtio engine. Per call: create an endpoint, dial party 1
 * with its SDP, apply the answer (modify); then the same for party 2;
 * bridge; when either party hangs up, hang up the other and free both
 * endpoints. No API, no events, no ring tone, no admission control: what
 * drachtio-server + FreeSWITCH sustain for this call flow.
 *
 * Driven by bench/drachtio/section.ts over Node IPC (bench/IpcChild.ts):
 * `connect` {drachtio, freeswitch} then `run` {rate, count, to1, to2, proxy}
 * answers with one record per call (ms since the call was started).
 */
import Srf from 'drachtio-srf';
import Mrf from 'drachtio-fsmrf';
import { paced } from '../DuoCallbackDriver.js';

interface Message {
  readonly id: number;
  readonly type: string;
  readonly [key: string]: unknown;
}

export interface BareCallRecord {
  /** Party 1 answered, ms after the call started. */
  party1AnsweredMs?: number;
  /** Both bridged, ms after the call started. */
  connectedMs?: number;
  /** Why the call failed before connecting; absent when it connected. */
  error?: string;
}

/** A call that has neither connected nor failed by then counts as failed (the CTI server's own limits are shorter). */
const CALL_LIMIT_MS = 40_000;

const srf = new Srf();
// The connection's errors surface as failed calls; unhandled, they would end the process.
srf.on('error', () => undefined);
let media: Mrf.MediaServer | undefined;

function reply(id: number, body: Record<string, unknown>): void {
  process.send?.({ id, ...body });
}

/** One callback; resolves once it connected or failed (party 2's BYE later ends it). */
async function callback(o: { to1: string; to2: string; proxy: string }): Promise<BareCallRecord> {
  const t0 = performance.now();
  const record: BareCallRecord = {};
  const endpoints: Mrf.Endpoint[] = [];
  const dialogs: Srf.Dialog[] = [];
  const hangUpAll = (): void => {
    for (const d of dialogs) d.destroy(undefined, () => undefined); // with a callback: its error is not thrown
    for (const e of endpoints) e.destroy().catch(() => undefined);
  };
  const leg = async (uri: string): Promise<Mrf.Endpoint> => {
    const endpoint = await media!.createEndpoint();
    endpoints.push(endpoint);
    const dialog = await srf.createUAC(uri, { localSdp: endpoint.local.sdp, proxy: o.proxy });
    dialogs.push(dialog);
    dialog.on('destroy', () => {
      dialogs.splice(dialogs.indexOf(dialog), 1);
      hangUpAll();
    });
    await endpoint.modify(dialog.remote.sdp);
    return endpoint;
  };
  let timer: NodeJS.Timeout | undefined;
  // drachtio-fsmrf may never settle a command on a channel whose event socket broke (EPIPE under load).
  const stuck = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no result in ${CALL_LIMIT_MS} ms`)), CALL_LIMIT_MS)));
  try {
    await Promise.race([
      stuck,
      (async () => {
        const ep1 = await leg(o.to1);
        record.party1AnsweredMs = performance.now() - t0;
        const ep2 = await leg(o.to2);
        await ep1.bridge(ep2);
        record.connectedMs = performance.now() - t0;
      })(),
    ]);
  } catch (err) {
    record.error = err instanceof Error ? err.message : `${(err as { status?: number }).status ?? String(err)}`;
    hangUpAll();
  } finally {
    clearTimeout(timer);
  }
  return record;
}

process.on('message', (m: Message) => {
  void (async () => {
    try {
      if (m.type === 'connect') {
        const d = m['drachtio'] as { host: string; port: number; secret: string };
        const f = m['freeswitch'] as { host: string; port: number; secret: string };
        await new Promise<void>((resolve, reject) => {
          srf.once('connect', (err: Error | null) => (err ? reject(err) : resolve()));
          void srf.connect(d);
        });
        media = await new Mrf(srf).connect({ address: f.host, port: f.port, secret: f.secret, listenAddress: '127.0.0.1' });
        reply(m.id, {});
      } else if (m.type === 'run') {
        const o = m as unknown as { rate: number; count: number; to1: string; to2: string; proxy: string };
        const calls: Promise<BareCallRecord>[] = [];
        await paced(o.rate, o.count, () => calls.push(callback(o)));
        reply(m.id, { records: await Promise.all(calls) });
      }
    } catch (err) {
      reply(m.id, { error: String(err) });
    }
  })();
});
process.on('SIGTERM', () => {
  media?.disconnect();
  srf.disconnect();
  process.exit(0);
});
