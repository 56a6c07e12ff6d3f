// Conformance, issue 11 kind 8 (overload): a saturated engine refuses
// constructs with -32006 and retry_after_ms, and nobody is called for them.
// Each target gets a tiny capacity: the embedded engine 2 RTP ports (one
// duo_callback), the drachtio engine 2 endpoints per second (one
// duo_callback per second). Party 1 of the admitted call rings ("ring") and
// holds the capacity; the refused call's party 1 is "busy", so any INVITE
// that reached it would show in the carrier's log.
import t from 'tap';
import { carrierCallWhen, forEachTarget, setup } from './support.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface RpcError {
  readonly code: number;
  readonly data?: { retry_after_ms?: number; cause?: string; reason?: string };
}

forEachTarget(t, 'a saturated engine refuses constructs with -32006 and retry_after_ms; nobody is called for them', async (t, target) => {
  const fx = await setup(t, target, { tuning: { rtpPorts: 2, drachtioAdmission: { maxEndpointsPerSecond: 2 } } });
  if (!fx) return;
  const held = await fx.construct('ext.duo_callback.construct', { to1_uri: 'sip:ring@carrier', to2_uri: 'sip:answer-9@carrier' });
  await fx.progress(held, 'ringing', 1);

  const refused = await fx.client.call('ext.duo_callback.construct', { to1_uri: 'sip:busy@carrier', to2_uri: 'sip:answer-9@carrier' });
  const error = refused.error as RpcError | undefined;
  t.equal(error?.code, -32006, 'refused with RateLimited');
  const retryAfterMs = error?.data?.retry_after_ms ?? 0;
  t.ok(Number.isInteger(retryAfterMs) && retryAfterMs >= 1, `retry_after_ms given (${retryAfterMs})`);
  t.equal(error?.data?.cause, target.name === 'embedded' ? 'rtp_ports' : 'endpoint_rate', `cause ${error?.data?.cause}: ${error?.data?.reason}`);
  const notify = await fx.client.call('ext.notify_call.construct', { to_uri: 'sip:busy@carrier', play_content: 'prompt.wav' });
  t.equal((notify.error as RpcError | undefined)?.code, -32006, 'a notify_call (one leg) is refused too');

  // The capacity comes back: the embedded engine's ports when the held call ends, the drachtio rate after retry_after_ms.
  if (target.name === 'embedded') {
    await fx.client.call('ext.duo_callback.cancel', { res_id: held });
    await fx.released(held);
  } else {
    await sleep(retryAfterMs);
  }
  const later = await fx.client.call('ext.duo_callback.construct', { to1_uri: 'sip:answer-9@carrier', to2_uri: 'sip:answer-11@carrier' });
  t.ok(later.result, `accepted once capacity is back ${JSON.stringify(later.error ?? '')}`);
  const ring = await carrierCallWhen(fx.carrier, 'ring', (c) => c.messages.length > 0);
  t.ok(ring.messages.length > 0, 'the admitted call reached its party 1 (the carrier log works)');
  await sleep(500);
  const busy = await carrierCallWhen(fx.carrier, 'busy', () => false, 0);
  t.equal(busy.messages.length, 0, 'no INVITE reached the party of a refused call');
  if (target.name !== 'embedded') {
    await fx.client.call('ext.duo_callback.cancel', { res_id: held });
    await fx.released(held);
  }
});
