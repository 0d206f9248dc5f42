/**
 * qcow2 volumes of a `dir` pool through the image engine (`core/image`): the top file is the pool's
 * volume (opened without following links, writable when asked); its backing chain is opened read-only.
 *
 * Backing rule: a backing file may live anywhere on the host (libvirt and QEMU allow a template outside
 * the pool), because it is only ever read; nothing but the top file is ever written. A relative backing
 * name is resolved against the directory of the image that records it (QEMU's rule); the file is opened
 * at its canonical path, which also detects loops.
 *
 * A writable top file gets the same background writeback as a raw volume ({@linkcode BackgroundWriteback}):
 * a commit or clone into a qcow2 image otherwise leaves all its data to the final `fdatasync`.
 *
 * @module
 */
import path from "node:path";
import type { StorageAccess } from "../../core/storage_backend.ts";
import { NotFoundError } from "../../core/errors.ts";
import type { LayerBackingRef, RawExtentsHook } from "../../core/image/layer.ts";
import { openQcow2 } from "../../core/image/open_image.ts";
import type { PositionalFile } from "../../core/image/positional_file.ts";
import type { VolumeIO } from "../../core/volume_io.ts";
import { BackgroundWriteback, WRITEBACK_BYTES } from "./background_writeback.ts";
import { type DirFile, type DirFs, errnoOf, OPEN_FLAGS } from "./dir_fs.ts";
import type { HoleFinder } from "./hole_finder.ts";
import { isNetworkBacking, openNetworkBacking } from "./network_backing.ts";
import { positionalFileOf } from "./positional_handle.ts";
import { rawExtents } from "./raw_extents.ts";
import { trustedFinder } from "./raw_volume_io.ts";
import type { WritebackStarter } from "./writeback_starter.ts";

const DRIVER = "dir";

/** Options of {@linkcode openQcow2Volume}. */
export interface Qcow2VolumeOptions {
  /** The open top file (the volume owns it from now on). */
  file: DirFile;
  /** Its canonical path. */
  path: string;
  /** Open for writing. */
  write: boolean;
  /** File system calls, to open backing files. */
  fs: DirFs;
  /** Finds holes of raw backing files. */
  holeFinder: HoleFinder | undefined;
  /** How messages name the volume. */
  label: string;
  /** The connection's pools, to read a network backing (an `iscsi://` LUN) through. */
  storage?: StorageAccess;
  /**
   * Starts the background writeback of a writable top file (`sync_file_range`); used only when the
   * hole finder trusts its descriptor (it is the OS one). Absent: background `fdatasync`s.
   */
  writebackStarter?: WritebackStarter;
  /** Bytes written between two background writebacks (default 16 MiB); `0` never starts one. */
  writebackBytes?: number;
}

/**
 * The image engine's file over a writable top file, with background writeback: every write counts
 * toward the next one; `flush` waits for it (reporting its error) before its own `fdatasync`, and
 * `close` never closes the descriptor under it.
 *
 * @param file The open file.
 * @param writeback Its background writeback.
 * @returns The positional file.
 * @example
 * ```ts
 * import fsp from "node:fs/promises";
 * import os from "node:os";
 * import path from "node:path";
 * import { BackgroundWriteback } from "./background_writeback.ts";
 * import { writebackFileOf } from "./image_volume.ts";
 * const dir = await fsp.mkdtemp(path.join(os.tmpdir(), "wb-"));
 * try {
 *   const handle = await fsp.open(path.join(dir, "f"), "w+");
 *   let syncs = 0;
 *   const writeback = new BackgroundWriteback({ fd: handle.fd, datasync: async () => void syncs++, starter: undefined, thresholdBytes: 4 });
 *   const file = writebackFileOf(handle, writeback);
 *   await file.write(0, new Uint8Array([1, 2, 3, 4]));
 *   await file.close();
 *   if (syncs !== 1) throw new Error("unexpected");
 * } finally {
 *   await fsp.rm(dir, { recursive: true, force: true });
 * }
 * ```
 */
export function writebackFileOf(file: DirFile, writeback: BackgroundWriteback): PositionalFile {
  const plain = positionalFileOf(file);
  return {
    ...plain,
    async write(offset, data) {
      await plain.write(offset, data);
      writeback.written(offset, data.byteLength);
    },
    async flush() {
      await writeback.settle();
      await plain.flush();
    },
    async close() {
      await writeback.idle();
      await plain.close();
    },
  };
}

/**
 * A raw-layer hole hook over an open file: the same map {@linkcode rawExtents} gives raw volumes.
 *
 * @param file The open raw file.
 * @param finder The hole finder, if any.
 * @returns The hook.
 * @example
 * ```ts
 * import { rawExtentsHook } from "./image_volume.ts";
 * const hook = rawExtentsHook({ fd: -1, stat: async () => ({ size: 4096, blocks: 0 }) } as never, undefined);
 * const runs = await hook(0, 4096);
 * if (runs.length !== 1 || runs[0]!.data) throw new Error("unexpected");
 * ```
 */
export function rawExtentsHook(file: DirFile, finder: HoleFinder | undefined): RawExtentsHook {
  const source = {
    fd: file.fd,
    stat: () => file.stat(),
    read: async (at: number, target: Uint8Array) => (await file.read(target, 0, target.byteLength, at)).bytesRead,
  };
  return async (offset, length) => {
    const out: Array<{ offset: number; length: number; data: boolean }> = [];
    for await (const e of rawExtents(source, offset, length, finder)) out.push({ offset: e.offset, length: e.length, data: e.data });
    return out;
  };
}

/**
 * Opens a qcow2 volume with its backing chain as a {@linkcode VolumeIO}.
 *
 * @param options The top file, its path, the mode, file system calls, hole finder and label.
 * @returns The volume IO (reads through the chain; writes, zeroes and `setBacking` on the top file).
 * @throws {NotFoundError} When a backing file does not exist or is not a regular file.
 */
export async function openQcow2Volume(options: Qcow2VolumeOptions): Promise<VolumeIO> {
  const { fs, holeFinder, label } = options;
  // The chain is opened top-down, one layer at a time: relative names resolve against the last image's directory.
  let lastDir = path.dirname(options.path);
  const openBacking = async (ref: LayerBackingRef) => {
    if (isNetworkBacking(ref.path)) return await openNetworkBacking(ref.path, options.storage, label);
    const wanted = path.resolve(lastDir, ref.path);
    let canonical: string;
    let file: DirFile;
    try {
      canonical = await fs.realpath(wanted);
      file = await fs.open(canonical, OPEN_FLAGS.read);
    } catch (error) {
      const code = errnoOf(error);
      if (code === "ENOENT" || code === "ENOTDIR" || code === "ELOOP") {
        throw new NotFoundError("volume", wanted, { driver: DRIVER, detail: `the backing file of ${label} does not exist`, cause: error });
      }
      throw error;
    }
    if (!(await file.stat().then((s) => s.isFile(), () => false))) {
      await file.close().catch(() => {});
      throw new NotFoundError("volume", wanted, { driver: DRIVER, detail: `the backing file of ${label} is not a regular file` });
    }
    lastDir = path.dirname(canonical);
    return {
      file: positionalFileOf(file),
      name: canonical,
      key: canonical,
      rawExtents: rawExtentsHook(file, await trustedFinder(file, holeFinder)),
      ...(ref.format !== undefined ? { format: ref.format } : {}),
    };
  };
  let top = positionalFileOf(options.file);
  if (options.write) {
    const starter = (await trustedFinder(options.file, holeFinder)) ? options.writebackStarter : undefined;
    const writeback = new BackgroundWriteback({
      fd: options.file.fd,
      datasync: () => options.file.datasync(),
      starter,
      thresholdBytes: options.writebackBytes ?? WRITEBACK_BYTES,
    });
    top = writebackFileOf(options.file, writeback);
  }
  return await openQcow2(top, { name: options.path, key: options.path, writable: options.write, openBacking });
}
