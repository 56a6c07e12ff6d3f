import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

/** The lowest byte rate of the audio the engines play (8 kHz 8-bit G.711): a size-based upper bound on play time. */
const LOWEST_BYTES_PER_SECOND = 8000;
/** A WAV's fmt and data chunk headers are looked for in this much of the file. */
const HEADER_BYTES = 16_384;

/**
 * Seconds a media file plays, for the play-time limit: from a RIFF/WAVE
 * header (data bytes ÷ the fmt chunk's byte rate) when there is one, else
 * an upper bound from the file size at 8000 bytes/s, so a file the header
 * reader does not understand can never count as shorter than it plays.
 */
export function playSeconds(path: string): number {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const head = Buffer.alloc(Math.min(size, HEADER_BYTES));
    readSync(fd, head, 0, head.length, 0);
    return wavSeconds(head, size) ?? size / LOWEST_BYTES_PER_SECOND;
  } finally {
    closeSync(fd);
  }
}

function wavSeconds(head: Buffer, size: number): number | null {
  if (head.length < 12 || head.toString('latin1', 0, 4) !== 'RIFF' || head.toString('latin1', 8, 12) !== 'WAVE') return null;
  let byteRate = 0;
  for (let offset = 12; offset + 8 <= head.length; ) {
    const id = head.toString('latin1', offset, offset + 4);
    const chunk = head.readUInt32LE(offset + 4);
    const body = offset + 8;
    if (id === 'fmt ' && body + 12 <= head.length) byteRate = head.readUInt32LE(body + 8);
    if (id === 'data') {
      if (byteRate === 0) return null;
      // An unfinalized header says 0 or too much: count what is in the file.
      const bytes = chunk === 0 ? size - body : Math.min(chunk, size - body);
      return bytes / byteRate;
    }
    offset = body + chunk + (chunk & 1);
  }
  return null;
}
