import t from 'tap';
import { existsSync, mkdirSync, mkdtempSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileFolder } from '../../lib/media/FileFolder.js';
import { ServiceError } from '../../lib/errors/ServiceError.js';

const base = mkdtempSync(join(tmpdir(), 'cti-folder-'));
const folder = new FileFolder(join(base, 'media'), 'media');
const outside = join(base, 'secret.wav');
writeFileSync(outside, 'x');
writeFileSync(join(folder.root, 'a.wav'), 'x');
mkdirSync(join(folder.root, 'sub'));
writeFileSync(join(folder.root, 'sub', 'b.wav'), 'x');
symlinkSync(outside, join(folder.root, 'link.wav'));
symlinkSync(base, join(folder.root, 'escape'));

const problem = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    if (err instanceof ServiceError && err.kind === 'invalid_params') {
      return (err.data!.errors as Array<{ param: string; message: string }>).map((e) => `${e.param}: ${e.message}`).join();
    }
    throw err;
  }
  return '';
};

t.test('existing files resolve inside the folder only', async (t) => {
  t.equal(folder.existingFile('a.wav', 'p'), join(folder.root, 'a.wav'));
  t.equal(folder.existingFile('sub/b.wav', 'p'), join(folder.root, 'sub', 'b.wav'));
  t.match(problem(() => folder.existingFile('missing.wav', 'p')), /^p: 'missing.wav' does not exist in the media folder$/);
  t.match(problem(() => folder.existingFile('../secret.wav', 'p')), /leaves its folder/);
  t.match(problem(() => folder.existingFile(outside, 'p')), /must be a relative file name/);
  t.match(problem(() => folder.existingFile('link.wav', 'p')), /links outside its folder/);
  t.match(problem(() => folder.existingFile('escape/secret.wav', 'p')), /links outside its folder/);
  t.match(problem(() => folder.existingFile('sub', 'p')), /is not a file/);
});

t.test('new files: at the top, in new sub-folders, never outside', async (t) => {
  t.equal(folder.newFile('r.wav', 'record_file'), join(folder.root, 'r.wav'));
  t.equal(folder.newFile('2026/11/r.wav', 'record_file'), join(folder.root, '2026', '11', 'r.wav'));
  t.match(problem(() => folder.newFile('../r.wav', 'record_file')), /record_file: '..\/r.wav' leaves its folder/);
  t.match(problem(() => folder.newFile('escape/r.wav', 'record_file')), /links outside its folder/);
  t.match(problem(() => folder.newFile('/tmp/r.wav', 'record_file')), /relative/);
});

t.test('PATH_MAX: a name that makes the whole path too long is refused before any file system call', async (t) => {
  // A root about 3,000 bytes long (components within NAME_MAX), then a 1,200-byte name.
  const deepRoot = join(base, ...Array.from({ length: 12 }, (_, i) => `${i}`.padEnd(250, 'r')));
  const deepFolder = new FileFolder(deepRoot, 'recordings');
  const name = Array.from({ length: 6 }, () => 'n'.repeat(200)).join('/');
  t.match(problem(() => deepFolder.newFile(name, 'record_file')), /^record_file: makes a path longer than the file system's limit \(4096 bytes\)$/);
  t.match(problem(() => deepFolder.existingFile(name, 'play_content')), /4096 bytes/);
  t.notOk(problem(() => deepFolder.newFile('n'.repeat(200), 'record_file')), 'a short name in the same folder is fine');
});

t.test('newFile creates nothing; createFolders makes the missing folders one by one', async (t) => {
  const path = folder.newFile('y2026/m12/r.wav', 'record_file');
  t.notOk(existsSync(join(folder.root, 'y2026')), 'checked, not created');
  folder.createFolders(path, 'y2026/m12/r.wav', 'record_file');
  t.ok(statSync(join(folder.root, 'y2026', 'm12')).isDirectory());
  t.notOk(existsSync(path), 'the file itself is left to the recorder');
});
