/**
 * Times each FreeSWITCH endpoint creation's steps in a process that uses
 * drachtio-fsmrf, for the knee analysis in docs/performance.md ("The accept
 * queue"). Preloaded into both systems of the drachtio section, never part of
 * the server:
 *
 *   FS_TIME_DIR=/tmp/fs-time NODE_OPTIONS="--require ./bench/drachtio/timeEndpointCreation.cjs" \
 *     npm run bench -- --drachtio-only --quick
 *
 * Each process that creates endpoints writes `<FS_TIME_DIR>/creation-<pid>.txt`
 * at exit: per run (creations more than 3 s apart start a new one) and per
 * half second of it, the median and p95 ms from the creation's start
 * (drachtio-fsmrf's INVITE) to FreeSWITCH's 200, to the TCP accept of the
 * channel's outbound event socket in this process, to that socket's
 * `connect` handshake, and to the endpoint being ready.
 */
'use strict';
const { mkdirSync, writeFileSync } = require('node:fs');
const { createRequire } = require('node:module');
const { join } = require('node:path');

const dir = process.env.FS_TIME_DIR;
let fromProject;
try {
  fromProject = createRequire(join(process.cwd(), 'package.json'));
  fromProject.resolve('drachtio-fsmrf');
} catch {
  fromProject = undefined; // npm, tsx, SIPp wrappers: nothing to time
}
if (dir && fromProject) {
  const now = () => performance.timeOrigin + performance.now();
  /** fsmrf's creation id (its User-Agent) → the creation's times. */
  const creations = new Map();
  const byConnection = new WeakMap();
  const idOf = (userAgent) => /^drachtio-fsmrf:(.+)$/.exec(userAgent ?? '')?.[1];

  const Srf = fromProject('drachtio-srf');
  const createUAC = Srf.prototype.createUAC;
  Srf.prototype.createUAC = function (uri, opts, ...rest) {
    const id = idOf(opts?.headers?.['User-Agent']);
    const pending = createUAC.call(this, uri, opts, ...rest);
    if (id && pending?.then) {
      const times = { start: now() };
      creations.set(id, times);
      pending.then(() => (times.answered = now()), () => undefined);
    }
    return pending;
  };
  const EslServer = fromProject('drachtio-modesl/lib/esl/Server.js');
  const onConnection = EslServer.prototype._onConnection;
  EslServer.prototype._onConnection = function (socket) {
    socket.acceptedAt = now();
    return onConnection.call(this, socket);
  };
  const MediaServer = fromProject('drachtio-fsmrf/lib/mediaserver.js');
  const onNewCall = MediaServer.prototype._onNewCall;
  MediaServer.prototype._onNewCall = function (conn, id) {
    const times = creations.get(idOf(conn.getInfo().getHeader('variable_sip_user_agent')));
    if (times) {
      times.accepted = conn.socket?.acceptedAt;
      times.connected = now();
      byConnection.set(conn, times);
    }
    return onNewCall.call(this, conn, id);
  };
  const Endpoint = fromProject('drachtio-fsmrf/lib/endpoint.js');
  const emit = Endpoint.prototype.emit;
  Endpoint.prototype.emit = function (name, ...args) {
    const times = name === 'ready' ? byConnection.get(this.conn) : undefined;
    if (times) times.ready = now();
    return emit.call(this, name, ...args);
  };

  const summary = () => {
    const all = [...creations.values()].sort((a, b) => a.start - b.start);
    const runs = [];
    for (const c of all) {
      const run = runs[runs.length - 1];
      if (!run || c.start - run[run.length - 1].start > 3000) runs.push([c]);
      else run.push(c);
    }
    const lines = [];
    const step = (list, key) => {
      const ms = list.filter((c) => c[key] !== undefined).map((c) => c[key] - c.start).sort((a, b) => a - b);
      return ms.length ? `${Math.round(ms[Math.floor(ms.length / 2)])}/${Math.round(ms[Math.min(ms.length - 1, Math.floor(ms.length * 0.95))])}` : '-';
    };
    for (const run of runs) {
      lines.push(`run of ${run.length} creations; ms from the INVITE, median/p95`);
      lines.push('from s | n | 200 | accepted | connect | ready');
      const bins = new Map();
      for (const c of run) {
        const bin = Math.floor((c.start - run[0].start) / 500);
        bins.set(bin, [...(bins.get(bin) ?? []), c]);
      }
      for (const [bin, list] of bins) {
        lines.push(`${(bin / 2).toFixed(1)} | ${list.length} | ${step(list, 'answered')} | ${step(list, 'accepted')} | ${step(list, 'connected')} | ${step(list, 'ready')}`);
      }
    }
    return lines.join('\n') + '\n';
  };
  process.on('exit', () => {
    if (!creations.size) return;
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `creation-${process.pid}.txt`), summary());
  });
}
