/** A WebSocket client over a bare TCP socket, so a test can stop reading (which `ws` cannot be told to do). */
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';

/** A masked text frame (RFC 6455 §5.2: client frames are masked). */
export function textFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  const length = payload.length;
  const header =
    length < 126 ? Buffer.from([0x81, 0x80 | length])
    : length < 65_536 ? Buffer.from([0x81, 0x80 | 126, length >> 8, length & 0xff])
    : Buffer.concat([Buffer.from([0x81, 0x80 | 127]), bigLength(length)]);
  const mask = randomBytes(4);
  for (let i = 0; i < length; i++) payload[i]! ^= mask[i & 3]!;
  return Buffer.concat([header, mask, payload]);
}

function bigLength(length: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(length));
  return b;
}

/**
 * Opens a connection authenticated with `apiKey` (Bearer) and completes the
 * handshake; the socket is returned paused: nothing more is read.
 */
export async function openPausedWebSocket(url: string, apiKey: string): Promise<Socket> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  socket.write(
    `GET / HTTP/1.1\r\nHost: ${hostname}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n` +
      `Authorization: Bearer ${apiKey}\r\n\r\n`,
  );
  let head = '';
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      socket.pause();
      if (!head.startsWith('HTTP/1.1 101')) reject(new Error(`handshake refused: ${head.split('\r\n')[0]}`));
      else resolve();
    };
    socket.on('data', onData);
  });
  return socket;
}
