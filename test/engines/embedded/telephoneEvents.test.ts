// Key presses: the RFC 4733 decoder against crafted packets, SIP INFO bodies, and the gate both engines use.
import t from 'tap';
import { pino } from 'pino';
import { writeRtpHeader } from '../../../lib/engines/embedded/Rtp.js';
import { TelephoneEventDecoder } from '../../../lib/engines/embedded/TelephoneEvents.js';
import { dtmfKeyOfInfo } from '../../../lib/engines/dtmfInfo.js';
import { DtmfGate } from '../../../lib/telephony/DtmfGate.js';
import { MAX_DTMF_PER_SECOND } from '../../../lib/telephony/TelephonyEngine.js';

/** An RTP packet of PT 101 with one RFC 4733 event (or `payload` as given). */
function eventPacket(ts: number, event: number, end: boolean, duration: number, payload?: Buffer): Buffer {
  const body = payload ?? Buffer.from([event, (end ? 0x80 : 0) | 10, duration >> 8, duration & 0xff]);
  const packet = Buffer.alloc(12 + body.length);
  writeRtpHeader(packet, 0, 101, false, 1, ts, 0x1234);
  body.copy(packet, 12);
  return packet;
}

/** What a phone sends for one key: start, updates, three end packets (RFC 4733 §2.5.1.4). */
function keyPress(ts: number, event: number): Buffer[] {
  return [
    eventPacket(ts, event, false, 160),
    eventPacket(ts, event, false, 320),
    eventPacket(ts, event, false, 480),
    eventPacket(ts, event, true, 640),
    eventPacket(ts, event, true, 640),
    eventPacket(ts, event, true, 640),
  ];
}

function decodeAll(decoder: TelephoneEventDecoder, packets: Buffer[]): string {
  return packets.map((p) => decoder.decode(p, 12) ?? '').join('');
}

t.test('one key per event timestamp, whatever repeats', async (t) => {
  const d = new TelephoneEventDecoder();
  t.equal(decodeAll(d, [...keyPress(1000, 1), ...keyPress(3000, 1), ...keyPress(5000, 11), ...keyPress(7000, 10)]), '11#*');
  t.equal(decodeAll(d, [...keyPress(9000, 12), ...keyPress(9160, 15)]), 'AD', 'A-D');
});

t.test('lost packets: only end packets, or only the start, still give the key once', async (t) => {
  const d = new TelephoneEventDecoder();
  t.equal(decodeAll(d, keyPress(1000, 5).slice(3)), '5', 'start lost');
  t.equal(decodeAll(d, keyPress(2000, 6).slice(0, 1)), '6', 'ends lost');
});

t.test('late or reordered packets of an older key are not a new key; the timestamp may wrap', async (t) => {
  const d = new TelephoneEventDecoder();
  t.equal(decodeAll(d, [...keyPress(5000, 2), eventPacket(1000, 3, true, 640), eventPacket(5000, 2, true, 640)]), '2');
  const w = new TelephoneEventDecoder();
  t.equal(decodeAll(w, [...keyPress(0xffffff00, 7), ...keyPress(0x00000100, 8)]), '78', 'across the 32-bit wrap');
});

t.test('garbage is no key: short, odd-sized, non-DTMF events, empty', async (t) => {
  const d = new TelephoneEventDecoder();
  const garbage = [
    eventPacket(100, 0, false, 0, Buffer.alloc(0)),
    eventPacket(200, 0, false, 0, Buffer.from([1, 0, 0])),
    eventPacket(300, 0, false, 0, Buffer.from([1, 0, 0, 160, 0])),
    eventPacket(400, 16, false, 160), // flash
    eventPacket(500, 255, false, 160),
    Buffer.from([0x80, 101]),
  ];
  t.equal(decodeAll(d, garbage), '');
  t.equal(d.decode(eventPacket(600, 9, false, 160), 12), '9', 'a valid key after garbage still decodes');
  t.equal(d.decode(eventPacket(700, 3, false, 160, Buffer.from([3, 0, 0, 160, 4, 0, 0, 160])), 12), '3', 'several events in one block: the first');
});

t.test('SIP INFO bodies: dtmf-relay and dtmf; anything else is no key', async (t) => {
  t.equal(dtmfKeyOfInfo('application/dtmf-relay', 'Signal=5\r\nDuration=160\r\n'), '5');
  t.equal(dtmfKeyOfInfo('Application/DTMF-Relay; charset=x', 'signal= #\r\nDuration=100'), '#');
  t.equal(dtmfKeyOfInfo('application/dtmf-relay', 'Signal=11\r\nDuration=100'), '#', 'event code 11');
  t.equal(dtmfKeyOfInfo('application/dtmf', '*\r\n'), '*');
  t.equal(dtmfKeyOfInfo('application/dtmf', 'd'), 'D');
  for (const [type, body] of [
    ['application/dtmf-relay', 'Signal=55\r\n'],
    ['application/dtmf-relay', 'Signal=16'],
    ['application/dtmf-relay', 'Signal=\r\n'],
    ['application/dtmf-relay', 'Duration=160'],
    ['application/dtmf-relay', 'Signal=E'],
    ['application/dtmf', '12'],
    ['application/dtmf', `1${' '.repeat(300)}`],
    ['text/plain', 'Signal=5'],
    ['', '5'],
  ] as const) {
    t.equal(dtmfKeyOfInfo(type, body), undefined, `${type} ${JSON.stringify(body.slice(0, 20))}`);
  }
});

t.test('the gate passes valid keys only, and at most MAX_DTMF_PER_SECOND a second', async (t) => {
  const passed: string[] = [];
  const gate = new DtmfGate(pino({ level: 'silent' }), (key) => passed.push(key));
  for (const key of ['1', 'a', '', '12', 'x', '\u0000', '#']) gate.pass(key, 'sip_info');
  t.same(passed, ['1', 'A', '#']);
  for (let i = 0; i < 100; i++) gate.pass('5', 'rfc4733');
  t.equal(passed.length, MAX_DTMF_PER_SECOND, 'a flood is cut at the rate');
  await new Promise((resolve) => setTimeout(resolve, 1050));
  gate.pass('7', 'rfc4733');
  t.equal(passed.at(-1), '7', 'the next second passes again');
});
