import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

/**
 * JSON lines on stdout (`fd`); pipe through `pino-pretty` to read them by eye.
 *
 * Written synchronously: pino's default asynchronous destination flushes at
 * exit with sonic-boom's flushSync, which retries a write failing with EPIPE
 * forever, so a server whose log reader had gone away never finished its
 * shutdown (measured here). A synchronous write that fails with EPIPE turns
 * logging off instead (pino's broken-pipe filter); any other write error
 * drops that line and logging goes on. Nothing is flushed at exit.
 */
export function createLogger(level: LevelWithSilent, fd = 1): Logger {
  const destination = pino.destination({ dest: fd, sync: true });
  destination.on('error', () => {}); // a line that could not be written is dropped, never thrown at the caller
  return pino({ level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime }, destination);
}
