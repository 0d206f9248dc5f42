/**
 * The files of one `dir` pool, addressed safely: a volume name becomes exactly one entry of the pool
 * directory, never a path outside it, and nothing here follows a symbolic link.
 *
 * Which entries are volumes: regular files directly in the directory whose names are valid volume
 * names. Subdirectories, sockets, FIFOs, devices and symbolic links are not volumes, wherever a link
 * points (libvirt lists links to files; skipping them all is the rule that cannot be tricked by a link
 * swapped in later). The backend's own temporary files (`.virtkit-tmp-*`) are never listed.
 *
 * @module
 */
import path from "node:path";
import { NotFoundError, StateError } from "../../core/errors.ts";
import { probeImage, type ImageProbe } from "../../core/image/probe.ts";
import { assertName } from "../../core/validate.ts";
import { type DirFile, type DirFs, errnoOf, OPEN_FLAGS } from "./dir_fs.ts";
import { positionalFileOf } from "./positional_handle.ts";

const DRIVER = "dir";
/** Prefix of the files `createVolume` writes before linking them into place. */
export const TEMP_PREFIX = ".virtkit-tmp-";
/**
 * Age after which a temporary file is an orphan (its creator crashed between `open` and `link`): a
 * create holds one for milliseconds, so an hour leaves a wide margin for a stalled creator, which would
 * at worst see its `link` fail, never lose data.
 */
export const TEMP_ORPHAN_AGE_MS = 60 * 60 * 1000;

/**
 * One pool directory.
 *
 * @example
 * ```ts
 * import fsp from "node:fs/promises";
 * import os from "node:os";
 * import path from "node:path";
 * import { nodeDirFs } from "./dir_fs.ts";
 * import { PoolDirectory } from "./pool_directory.ts";
 * const root = await fsp.mkdtemp(path.join(os.tmpdir(), "pool-dir-"));
 * try {
 *   await fsp.writeFile(path.join(root, "a.img"), "");
 *   await fsp.mkdir(path.join(root, "sub"));
 *   const dir = new PoolDirectory("p", root, nodeDirFs);
 *   await dir.resolve();
 *   const names = await dir.names();
 *   if (names.join() !== "a.img") throw new Error("unexpected");
 * } finally {
 *   await fsp.rm(root, { recursive: true, force: true });
 * }
 * ```
 */
export class PoolDirectory {
  /** The pool's name, for messages. */
  readonly pool: string;
  /** The directory as configured. */
  readonly configuredPath: string;
  /** The file system calls. */
  readonly fs: DirFs;
  #canonical: string | undefined;

  /**
   * @param pool Pool name.
   * @param dirPath The configured absolute directory.
   * @param fs The file system calls.
   */
  constructor(pool: string, dirPath: string, fs: DirFs) {
    this.pool = pool;
    this.configuredPath = dirPath;
    this.fs = fs;
  }

  /** The canonical directory, as resolved by the last {@linkcode resolve}. */
  get path(): string {
    if (this.#canonical === undefined) {
      throw new StateError(`Cannot use pool "${this.pool}": its directory is not resolved (start the pool)`, { state: "inactive", driver: DRIVER });
    }
    return this.#canonical;
  }

  /**
   * Checks the directory exists and resolves its canonical path (keys are built on it).
   *
   * @throws {StateError} When it does not exist or is not a directory.
   */
  async resolve(): Promise<string> {
    let stats;
    try {
      stats = await this.fs.stat(this.configuredPath);
    } catch (error) {
      if (errnoOf(error) !== "ENOENT" && errnoOf(error) !== "ENOTDIR") throw error;
    }
    if (!stats?.isDirectory()) {
      throw new StateError(
        `Cannot start pool "${this.pool}": directory "${this.configuredPath}" does not exist${stats ? " (it is not a directory)" : " (build the pool first)"}`,
        { state: "unbuilt", driver: DRIVER },
      );
    }
    this.#canonical = await this.fs.realpath(this.configuredPath);
    return this.#canonical;
  }

  /**
   * The path of a volume's file: the name is validated and the result is checked to be directly in the
   * pool directory.
   *
   * @param name Volume name.
   * @returns The absolute path.
   * @throws {TypeError} For a name that is not a valid volume name.
   */
  fileOf(name: string): string {
    assertName(name, "volume name");
    const dir = this.path;
    const file = path.join(dir, name);
    if (path.dirname(file) !== dir) throw new TypeError(`Invalid volume name "${name}": it leaves pool "${this.pool}"`);
    return file;
  }

  /**
   * Removes the temporary files a crashed create left behind: regular files named `.virtkit-tmp-*`
   * not modified for {@linkcode TEMP_ORPHAN_AGE_MS}. Best effort: a file that cannot be checked or
   * removed is left, and nothing else in the directory is ever touched.
   *
   * @param nowMs The current wall-clock time (file times are wall-clock times).
   * @returns The names removed.
   */
  async sweepOrphans(nowMs: number = Date.now()): Promise<string[]> {
    const removed: string[] = [];
    const entries = await this.fs.readdir(this.path, { withFileTypes: true });
    for (const entry of entries) {
      if (!entry.name.startsWith(TEMP_PREFIX) || !entry.isFile()) continue;
      const file = path.join(this.path, entry.name);
      try {
        const stats = await this.fs.lstat(file);
        if (!stats.isFile() || stats.mtimeMs === undefined || !(nowMs - stats.mtimeMs >= TEMP_ORPHAN_AGE_MS)) continue;
        await this.fs.unlink(file);
        removed.push(entry.name);
      } catch {
        // Removed meanwhile, or not ours to remove: either way, not a reason to fail starting the pool.
      }
    }
    return removed;
  }

  /** Names of the volumes, sorted. */
  async names(): Promise<string[]> {
    const entries = await this.fs.readdir(this.path, { withFileTypes: true });
    return entries
      .filter((entry) => entry.isFile() && !entry.name.startsWith(TEMP_PREFIX) && isVolumeName(entry.name))
      .map((entry) => entry.name)
      .sort();
  }

  /**
   * Checks that `name` is a volume (a regular file, not a link) and returns its path.
   *
   * @throws {NotFoundError} When it is not.
   */
  async existing(name: string): Promise<string> {
    const file = this.fileOf(name);
    if (name.startsWith(TEMP_PREFIX)) throw this.missing(name);
    let stats;
    try {
      stats = await this.fs.lstat(file);
    } catch (error) {
      if (errnoOf(error) !== "ENOENT") throw error;
    }
    if (!stats?.isFile()) throw this.missing(name, stats?.isSymbolicLink() ? "it is a symbolic link, not a volume" : undefined);
    return file;
  }

  /**
   * Opens a volume's file without following a link, and checks it is a regular file.
   *
   * @param name Volume name.
   * @param write Open for writing too.
   * @returns The open file and its path.
   * @throws {NotFoundError} When there is no such regular file.
   */
  async open(name: string, write: boolean): Promise<{ file: DirFile; path: string }> {
    const file = this.fileOf(name);
    // A file being created is not a volume yet.
    if (name.startsWith(TEMP_PREFIX)) throw this.missing(name);
    let handle: DirFile;
    try {
      handle = await this.fs.open(file, write ? OPEN_FLAGS.readWrite : OPEN_FLAGS.read);
    } catch (error) {
      const code = errnoOf(error);
      if (code === "ENOENT") throw this.missing(name);
      // ELOOP: the name is a symbolic link, which O_NOFOLLOW refused to follow.
      if (code === "ELOOP") throw this.missing(name, "it is a symbolic link, not a volume");
      throw error;
    }
    try {
      if (!(await handle.stat()).isFile()) throw this.missing(name, "it is not a regular file");
    } catch (error) {
      await handle.close().catch(() => {});
      throw error;
    }
    return { file: handle, path: file };
  }

  /**
   * Probes a volume's format from its content.
   *
   * @param name Volume name.
   * @returns The probe.
   */
  async probe(name: string): Promise<ImageProbe & { allocationBytes: number }> {
    const { file } = await this.open(name, false);
    try {
      const stats = await file.stat();
      const probe = await probeImage(positionalFileOf(file), `${this.path}/${name}`);
      return { ...probe, allocationBytes: stats.blocks * 512 };
    } finally {
      await file.close();
    }
  }

  /**
   * The error for a name that is not a volume of this pool.
   *
   * @param name Volume name.
   * @param why Optional reason.
   * @returns The error.
   */
  missing(name: string, why?: string): NotFoundError {
    return new NotFoundError("volume", name, { driver: DRIVER, detail: `pool "${this.pool}" has no such volume${why ? ` (${why})` : ""}` });
  }
}

function isVolumeName(name: string): boolean {
  try {
    assertName(name, "volume name");
    return true;
  } catch {
    return false;
  }
}
