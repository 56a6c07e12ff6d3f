// One FreeSWITCH API command over a fresh inbound event socket, independent of
// the engine, so tests can check what FreeSWITCH really holds.
import { connect } from 'node:net';
import type { FreeswitchServerConfig } from '../../../lib/config/ServerConfig.js';

export function eslApi(fs: FreeswitchServerConfig, command: string, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: fs.host, port: fs.port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`ESL ${command}: no reply in ${timeoutMs} ms`));
    }, timeoutMs);
    let buffer = '';
    let step: 'auth' | 'authed' | 'api' = 'auth';
    socket.setEncoding('utf8');
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      if (step === 'auth' && buffer.includes('auth/request')) {
        buffer = '';
        step = 'authed';
        socket.write(`auth ${fs.secret}\n\n`);
      } else if (step === 'authed' && buffer.includes('\n\n')) {
        if (!buffer.includes('+OK')) return reject(new Error(`ESL auth refused: ${buffer.trim()}`));
        buffer = '';
        step = 'api';
        socket.write(`api ${command}\n\n`);
      } else if (step === 'api') {
        const head = buffer.indexOf('\n\n');
        const length = Number(/Content-Length: (\d+)/.exec(buffer)?.[1] ?? NaN);
        if (head < 0 || Number.isNaN(length) || buffer.length < head + 2 + length) return;
        clearTimeout(timer);
        socket.end();
        resolve(buffer.slice(head + 2, head + 2 + length));
      }
    });
  });
}
