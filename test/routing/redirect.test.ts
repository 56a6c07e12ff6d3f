// The pure parts of redirects: which Contacts an engine passes up, and which one routing dials.
import t from 'tap';
import { redirectContacts } from '../../lib/engines/redirectContacts.js';
import { chooseRedirect } from '../../lib/routing/Redirect.js';
import type { GatewayConfig } from '../../lib/config/ServerConfig.js';

const gw: GatewayConfig = { name: 'gw', host: '192.0.2.10', port: 5060, transport: 'udp', callerId: '1', maxConcurrentCalls: 1 };
const c = (uri: unknown, q?: string) => ({ uri, params: q === undefined ? {} : { q } });

t.test('redirectContacts: only 300/301/302, q order (stable, missing q = 1, malformed last), bounded', async (t) => {
  const contacts = [c('sip:a@h', '0.5'), c('sip:b@h'), c('sip:c@h', '0.5'), c('sip:d@h', 'x'), c('sip:e@h', '1.000')];
  t.same(redirectContacts(302, contacts), ['sip:b@h', 'sip:e@h', 'sip:a@h', 'sip:c@h', 'sip:d@h']);
  for (const status of [300, 301]) t.ok(redirectContacts(status, contacts), `${status} followed`);
  for (const status of [303, 305, 380, 399, 486]) t.equal(redirectContacts(status, contacts), undefined, `${status} not`);
  t.equal(redirectContacts(302, '*'), undefined, 'Contact: *');
  t.equal(redirectContacts(302, undefined), undefined, 'no Contact');
  t.equal(redirectContacts(302, [null, 7, c(42), c(''), c(`sip:${'1'.repeat(300)}@h`)]), undefined, 'nothing usable');
  const many = Array.from({ length: 5000 }, (_, i) => c(`sip:${i}@h`, i === 40 ? '1' : '0.1'));
  const picked = redirectContacts(302, many)!;
  t.equal(picked.length, 8, 'at most MAX_REDIRECT_CONTACTS');
  t.notOk(picked.includes('sip:40@h'), 'entries past the first 32 are not looked at');
});

t.test('chooseRedirect: the first Contact with a grammatical, new user part, at the gateway', async (t) => {
  const tried = new Set(['1000']);
  t.same(chooseRedirect(['sip:2000@evil.example:1;transport=tcp'], gw, tried), { requestUri: 'sip:2000@192.0.2.10:5060', user: '2000' });
  t.same(chooseRedirect(['sip:1000@gw', 'sip:%32000@x'], gw, tried), { requestUri: 'sip:2000@192.0.2.10:5060', user: '2000' }, 'escapes canonical');
  t.same(chooseRedirect(['sip:1000@x', 'sip:%31000@x'], gw, tried), { problem: 'redirect loop (1000 already dialled)' });
  for (const hostile of ['sip:a%0Db@x', 'sip:a%00@x', 'sips:2000@x', 'sip:2000:pw@x', 'sip:2000@x?Route=y', 'sip:x', 'tel:2000', 'sip:a\r\nb@x', 'sip:ä@x']) {
    t.same(chooseRedirect([hostile], gw, tried), { problem: 'no usable Contact' }, JSON.stringify(hostile));
  }
  t.same(chooseRedirect(['sip:a\r\nb@x', 'sip:3000@x'], gw, tried), { requestUri: 'sip:3000@192.0.2.10:5060', user: '3000' }, 'a bad one is skipped');
});
