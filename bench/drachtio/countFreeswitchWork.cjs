/**
 * Counts what a process asks FreeSWITCH, for the per-callback comparison in
 * docs/performance.md ("What each system asks FreeSWITCH"). Preloaded into
 * both systems of the drachtio section, never part of the server:
 *
 *   FS_COUNT_DIR=/tmp/fs-count NODE_OPTIONS="--require ./bench/drachtio/countFreeswitchWork.cjs" \
 *     npm run bench -- --drachtio-only --quick
 *
 * Each process that loads drachtio-modesl writes `<FS_COUNT_DIR>/count-<pid>.json`
 * (every 2 s and at exit): event-socket commands by socket (inbound: the one
 * connection to FreeSWITCH; outbound: each endpoint's own) and kind (api and
 * sendmsg by command, event subscriptions, filters), and the SIP requests
 * placed through drachtio-srf (INVITEs to FreeSWITCH are endpoints; re-INVITEs
 * to FreeSWITCH are endpoint.modify). Divide by the callbacks connected.
 */
'use strict';
const { mkdirSync, writeFileSync } = require('node:fs');
const { createRequire } = require('node:module');
const { join } = require('node:path');

const dir = process.env.FS_COUNT_DIR;
let fromProject;
try {
  fromProject = createRequire(join(process.cwd(), 'package.json'));
  fromProject.resolve('drachtio-modesl/lib/esl/Connection.js');
} catch {
  fromProject = undefined; // a process without drachtio (npm, tsx, sipp wrappers): nothing to count
}
if (dir && fromProject) {
  const counts = {};
  const add = (key) => (counts[key] = (counts[key] ?? 0) + 1);
  const Connection = fromProject('drachtio-modesl/lib/esl/Connection.js');
  const send = Connection.prototype.send;
  Connection.prototype.send = function (command, args) {
    const [word, name] = String(command).split(' ');
    let key = word;
    if (word === 'api' || word === 'bgapi') key = `${word} ${name}`;
    else if (word === 'sendmsg') key = `sendmsg ${args?.['call-command'] ?? ''} ${args?.['execute-app-name'] ?? ''}`.trim();
    else if (word === 'event') key = `event ${String(command).split(' ').slice(1).join(' ')}`;
    else if (word === 'filter') key = `filter ${name}`;
    add(`ESL ${this._inbound ? 'inbound' : 'outbound'}: ${key}`);
    return send.call(this, command, args);
  };
  const Srf = fromProject('drachtio-srf');
  const createUAC = Srf.prototype.createUAC;
  Srf.prototype.createUAC = function (uri, ...rest) {
    const target = typeof uri === 'string' ? uri : uri?.uri;
    // drachtio-fsmrf addresses FreeSWITCH as sip:drachtio@<its SIP address>.
    add(`SIP INVITE to ${/^sips?:drachtio@/.test(String(target)) ? 'FreeSWITCH (new endpoint)' : 'a party'}`);
    return createUAC.call(this, uri, ...rest);
  };
  const Dialog = fromProject('drachtio-srf/lib/dialog.js');
  for (const method of ['modify', 'destroy']) {
    const original = Dialog.prototype[method];
    Dialog.prototype[method] = function (...args) {
      const toFreeswitch = /FreeSWITCH/i.test(String(this.remote?.sdp));
      add(`SIP ${method === 'modify' ? 're-INVITE' : 'BYE'} to ${toFreeswitch ? 'FreeSWITCH' : 'a party'}`);
      return original.apply(this, args);
    };
  }
  mkdirSync(dir, { recursive: true });
  const dump = () => writeFileSync(join(dir, `count-${process.pid}.json`), JSON.stringify(counts, null, 1));
  setInterval(dump, 2000).unref();
  process.on('exit', dump);
}
