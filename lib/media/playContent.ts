import type { PlayContent } from '../api/generated/types.js';
import { ServiceError } from '../errors/ServiceError.js';

/** Play item types the server plays today (seed: sys.call.play_start content types). */
const FILE = 0;
const FILE_LIST = 7;

/** The file names a `play_content` names, in play order. */
export function playContentFileNames(content: PlayContent, param: string): string[] {
  if (typeof content === 'string') return [content];
  return content.flatMap((item, i) => {
    const [text, type] = item;
    if (type === FILE) return [text];
    if (type === FILE_LIST) {
      const names = text.split('|').filter((n) => n.length > 0);
      if (names.length) return names;
      throw ServiceError.invalidParams([{ param: `${param}[${i}]`, message: 'type 7 needs file names joined by |' }]);
    }
    throw ServiceError.invalidParams([
      { param: `${param}[${i}]`, message: `play type ${type} is not supported (supported: 0 = one file, 7 = files joined by |)` },
    ]);
  });
}
