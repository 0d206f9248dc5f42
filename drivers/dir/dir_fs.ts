/**
 * The file system calls the `dir` backend makes, behind one small interface, so tests can inject
 * `ENOSPC`, `EIO` or a crash in the middle of a step without a real full disk.
 *
 * @module
 */
import { constants } from "node:fs";
import fsp from "node:fs/promises";
import { runtimeFileCopier } from "./file_copier.ts";

/** What a positional read reports. */
export interface DirReadResult {
  /** Bytes read (0 at the end of the file). */
  bytesRead: number;
}

/** What a positional write reports. */
export interface DirWriteResult {
  /** Bytes written. */
  bytesWritten: number;
}

/** A filesystem's sizes, as `statfs(2)` gives them. */
export interface DirFsSizes {
  /** Block size in bytes. */
  bsize: number;
  /** Total blocks. */
  blocks: number;
  /** Free blocks. */
  bfree: number;
  /** Free blocks an unprivileged user may use. */
  bavail: number;
}

/** An open file, as the backend uses it (Node's `FileHandle` fits). */
export interface DirFile {
  /** The OS file descriptor. */
  readonly fd: number;
  /** Positional read of `length` bytes into `buffer[offset..]`. */
  read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<DirReadResult>;
  /** Positional write of `buffer[offset..offset + length)`. */
  write(buffer: Uint8Array, offset: number, length: number, position: number): Promise<DirWriteResult>;
  /** Sets the file size (`ftruncate`). */
  truncate(sizeBytes: number): Promise<void>;
  /** `fdatasync`. */
  datasync(): Promise<void>;
  /** `fsync`. */
  sync(): Promise<void>;
  /** `fstat`. */
  stat(): Promise<DirStats>;
  /** Closes the descriptor. */
  close(): Promise<void>;
}

/** The parts of `fs.Stats` the backend reads. */
export interface DirStats {
  /** Size in bytes. */
  readonly size: number;
  /** Allocated 512-byte blocks. */
  readonly blocks: number;
  /** Last modification, in milliseconds since the epoch (when the file system tells). */
  readonly mtimeMs?: number;
  /** Regular file? */
  isFile(): boolean;
  /** Directory? */
  isDirectory(): boolean;
  /** Symbolic link (only from `lstat`)? */
  isSymbolicLink(): boolean;
}

/** A directory entry. */
export interface DirEntry {
  /** File name. */
  readonly name: string;
  /** Regular file? */
  isFile(): boolean;
}

/** The file system calls of the `dir` backend (Node's `fs/promises` fits; Deno runs the same through `node:`). */
export interface DirFs {
  /** `open(2)` with numeric flags. */
  open(path: string, flags: number, mode?: number): Promise<DirFile>;
  /** `mkdir -p`. */
  mkdir(path: string, options: { recursive: true; mode: number }): Promise<unknown>;
  /** `stat(2)`. */
  stat(path: string): Promise<DirStats>;
  /** `lstat(2)`: never follows a symbolic link. */
  lstat(path: string): Promise<DirStats>;
  /** Entries of a directory. */
  readdir(path: string, options: { withFileTypes: true }): Promise<DirEntry[]>;
  /** Canonical absolute path. */
  realpath(path: string): Promise<string>;
  /** Removes an empty directory. */
  rmdir(path: string): Promise<void>;
  /** Filesystem sizes. */
  statfs(path: string): Promise<DirFsSizes>;
  /** `link(2)`: fails with `EEXIST` instead of replacing. */
  link(existing: string, created: string): Promise<void>;
  /** `unlink(2)`: removes the name itself, even of a symbolic link. */
  unlink(path: string): Promise<void>;
  /** Reads a small file whole. */
  readFile(path: string, encoding: "utf8"): Promise<string>;
  /** Writes a small file whole. */
  writeFile(path: string, data: string, options: { mode: number }): Promise<void>;
  /** `rename(2)`. */
  rename(from: string, to: string): Promise<void>;
  /**
   * `copy_file_range(2)`: copies up to `length` bytes between two open files inside the kernel
   * (absent: copies always read and write).
   *
   * @param from The source file.
   * @param fromPosition Where to read in it.
   * @param to The target file.
   * @param toPosition Where to write in it.
   * @param length At most this many bytes.
   * @returns The bytes copied (0 at the end of the source), or `undefined` when this runtime or the
   *   kernel cannot copy between these two files.
   * @throws {Error} With `code` for a real failure (`EIO`, `ENOSPC`...).
   */
  copyFileRange?(from: DirFile, fromPosition: number, to: DirFile, toPosition: number, length: number): Promise<number | undefined>;
}

/** The real file system. */
export const nodeDirFs: DirFs = {
  open: (path, flags, mode) => fsp.open(path, flags, mode),
  mkdir: (path, options) => fsp.mkdir(path, options),
  stat: (path) => fsp.stat(path),
  lstat: (path) => fsp.lstat(path),
  readdir: (path, options) => fsp.readdir(path, options),
  realpath: (path) => fsp.realpath(path),
  rmdir: (path) => fsp.rmdir(path),
  statfs: (path) => fsp.statfs(path),
  link: (existing, created) => fsp.link(existing, created),
  unlink: (path) => fsp.unlink(path),
  readFile: (path, encoding) => fsp.readFile(path, encoding),
  writeFile: (path, data, options) => fsp.writeFile(path, data, options),
  rename: (from, to) => fsp.rename(from, to),
  copyFileRange(from, fromPosition, to, toPosition, length) {
    const copier = runtimeFileCopier();
    return copier ? copier.copy(from.fd, fromPosition, to.fd, toPosition, length) : Promise.resolve(undefined);
  },
};

/** `open(2)` flags the backend uses: never follow a symbolic link, never block on a FIFO (libuv adds `O_CLOEXEC` itself). */
export const OPEN_FLAGS = Object.freeze({
  read: constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK,
  readWrite: constants.O_RDWR | constants.O_NOFOLLOW | constants.O_NONBLOCK,
  createNew: constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
});

/**
 * The `code` of a Node system error (`"ENOENT"`), if it is one.
 *
 * @param error Anything thrown.
 * @returns The code, or `undefined`.
 * @example
 * ```ts
 * import { errnoOf } from "./dir_fs.ts";
 * if (errnoOf(Object.assign(new Error("x"), { code: "EEXIST" })) !== "EEXIST") throw new Error("unexpected");
 * ```
 */
export function errnoOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}
