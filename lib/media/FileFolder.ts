import { existsSync, mkdirSync, realpathSync, statSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import { ServiceError } from '../errors/ServiceError.js';

/**
 * A configured folder (media or recordings) that client-given file names
 * resolve inside. Names that would leave it — `..`, absolute paths, links
 * pointing out — are refused as invalid params.
 */
export class FileFolder {
  readonly root: string;

  /** `label` names the folder in errors ("media", "recordings"): clients never see server paths. */
  constructor(
    dir: string,
    private readonly label: string,
  ) {
    mkdirSync(dir, { recursive: true });
    this.root = realpathSync(dir);
  }

  /** An existing regular file inside the folder. */
  existingFile(name: string, param: string): string {
    const path = this.#inside(name, param);
    if (!existsSync(path)) throw this.#problem(param, `'${name}' does not exist in the ${this.label} folder`);
    const real = realpathSync(path);
    if (!this.#contains(real)) throw this.#problem(param, `'${name}' links outside its folder`);
    if (!statSync(real).isFile()) throw this.#problem(param, `'${name}' is not a file`);
    return real;
  }

  /** A path for a file to be written; its sub-folders are created. */
  newFile(name: string, param: string): string {
    const path = this.#inside(name, param);
    mkdirSync(dirname(path), { recursive: true });
    const parent = realpathSync(dirname(path));
    if (parent !== this.root && !this.#contains(parent)) throw this.#problem(param, `'${name}' links outside its folder`);
    return path;
  }

  #inside(name: string, param: string): string {
    if (isAbsolute(name) || name.includes('\0')) throw this.#problem(param, `'${name}' must be a relative file name`);
    const path = resolve(this.root, name);
    if (!this.#contains(path) || path === this.root) throw this.#problem(param, `'${name}' leaves its folder`);
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
