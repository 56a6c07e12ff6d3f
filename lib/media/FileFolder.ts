import { lstatSync, mkdirSync, realpathSync, statSync, type Stats } from 'node:fs';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { ServiceError } from '../errors/ServiceError.js';

/** Linux limits (limits.h): bytes per path component, and per whole path including the final NUL. */
export const NAME_MAX = 255;
export const PATH_MAX = 4096;

/** C0 controls, DEL and C1 controls: never part of a file name a client may give (they would reach logs and media-server commands). */
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
/** In u-mode a surrogate range matches only unpaired halves, which UTF-8 would silently turn into U+FFFD. */
const LONE_SURROGATE = /[\ud800-\udfff]/u;
/** A sub-folder the server itself names (an account id's grammar, docs/operations.md). */
const SUBFOLDER = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * A configured folder (media or recordings) that client-given file names
 * resolve inside. Every check happens before anything is created, and
 * nothing outside the folder is read, written or created whatever the links:
 *
 * - names are relative, well-formed Unicode without control characters,
 *   each component at most NAME_MAX bytes, the whole path below PATH_MAX;
 * - `..` may not climb out, and every existing component that is a link must
 *   resolve inside the folder (a dangling link is refused: its target could
 *   be created outside);
 * - a file to be written may not itself be a link, nor an existing non-file.
 *
 * Errors are invalid params naming the client's param and repeating only the
 * client's own name: no server path ever reaches a client.
 */
export class FileFolder {
  readonly root: string;

  /** `label` names the folder in errors ("media", "recordings"). Creates the folder itself (operator configuration). */
  constructor(
    dir: string,
    private readonly label: string,
  ) {
    mkdirSync(dir, { recursive: true });
    this.root = realpathSync(dir);
  }

  /**
   * The folder `<root>/<name>` (created when missing) as a FileFolder of its
   * own, so names resolved in it can never reach a sibling: one account's
   * recordings cannot overwrite another's (docs/security.md "Files").
   * `name` is one server-chosen component (an account id), never a client name.
   * @throws Error when `name` is not `[A-Za-z0-9_-]{1,64}` (a programming error).
   */
  subfolder(name: string): FileFolder {
    if (!SUBFOLDER.test(name)) throw new Error(`not a sub-folder name: ${JSON.stringify(name)}`);
    return new FileFolder(join(this.root, name), this.label);
  }

  /** An existing regular file inside the folder: its real path. */
  existingFile(name: string, param: string): string {
    const path = this.#inside(name, param);
    let real: string;
    try {
      real = realpathSync(path);
    } catch (err) {
      if (isMissing(err)) throw this.#problem(param, `'${name}' does not exist in the ${this.label} folder`);
      if (isLoop(err)) throw this.#problem(param, `'${name}' goes through links in a loop`);
      throw err;
    }
    if (!this.#contains(real)) throw this.#problem(param, `'${name}' links outside its folder`);
    if (!statSync(real).isFile()) throw this.#problem(param, `'${name}' is not a file`);
    return real;
  }

  /**
   * A path for a file to be written, checked but not created: its missing
   * sub-folders are made by `createFolders` once the request is accepted.
   */
  newFile(name: string, param: string): string {
    const path = this.#inside(name, param);
    this.#walk(name, param, path, false);
    return path;
  }

  /**
   * Creates the missing sub-folders of a path `newFile` returned, one at a
   * time, re-checking each component (a link may have appeared since).
   * @throws ServiceError invalid_params when a component is no longer a folder inside.
   */
  createFolders(path: string, name: string, param: string): void {
    this.#walk(name, param, path, true);
  }

  /**
   * Follows `path` component by component from the root. Existing links must
   * resolve inside; the walk stops at the first missing component, unless
   * `create` is set, when the missing folders are made (never the file).
   */
  #walk(name: string, param: string, path: string, create: boolean): void {
    const parts = relative(this.root, path).split(sep);
    let current = this.root;
    for (const [i, part] of parts.entries()) {
      const last = i === parts.length - 1;
      const next = join(current, part);
      let stats: Stats;
      try {
        stats = lstatSync(next);
      } catch (err) {
        if (!isMissing(err)) throw err;
        if (!create || last) return;
        mkdirSync(next);
        current = next;
        continue;
      }
      if (stats.isSymbolicLink()) {
        if (last) throw this.#problem(param, `'${name}' is a link: files are written only as plain files`);
        current = this.#followInside(next, name, param);
        continue;
      }
      if (last ? !stats.isFile() : !stats.isDirectory()) {
        throw this.#problem(param, last ? `'${name}' is not a file` : `'${name}' has a component that is not a folder`);
      }
      current = next;
    }
  }

  #followInside(link: string, name: string, param: string): string {
    let real: string;
    try {
      real = realpathSync(link);
    } catch (err) {
      if (isMissing(err)) throw this.#problem(param, `'${name}' goes through a link to nothing`);
      if (isLoop(err)) throw this.#problem(param, `'${name}' goes through links in a loop`);
      throw err;
    }
    if (!this.#contains(real) || !statSync(real).isDirectory()) throw this.#problem(param, `'${name}' links outside its folder`);
    return real;
  }

  /** Grammar, lengths and lexical containment; touches nothing. */
  #inside(name: string, param: string): string {
    if (name.length === 0) throw this.#problem(param, 'must not be empty');
    if (LONE_SURROGATE.test(name)) throw this.#problem(param, 'must be well-formed Unicode (no lone surrogates)');
    if (CONTROL.test(name)) throw this.#problem(param, 'must not contain control characters');
    if (isAbsolute(name)) throw this.#problem(param, `'${name}' must be a relative file name`);
    const long = name.split('/').find((c) => Buffer.byteLength(c) > NAME_MAX);
    if (long !== undefined) throw this.#problem(param, `has a name longer than ${NAME_MAX} bytes, the file system's limit`);
    const path = resolve(this.root, name);
    if (!this.#contains(path)) throw this.#problem(param, `'${name}' leaves its folder`);
    if (Buffer.byteLength(path) >= PATH_MAX) throw this.#problem(param, `makes a path longer than the file system's limit (${PATH_MAX} bytes)`);
    return path;
  }

  #contains(path: string): boolean {
    const rel = relative(this.root, path);
    return rel !== '' && !rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel);
  }

  #problem(param: string, message: string): ServiceError {
    return ServiceError.invalidParams([{ param, message }]);
  }
}

/** The path (or a component of it) is not there. */
function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

function isLoop(err: unknown): boolean {
  return (err as NodeJS.ErrnoException).code === 'ELOOP';
}
