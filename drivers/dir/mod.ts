/**
 * The `dir` storage backend: a pool is a directory of image files on the host (`{ name, type: "dir",
 * path }`). Register {@linkcode dirBackend} on a registry; every connection can then define `dir` pools.
 *
 * The rules it follows (libvirt's dir pool, except where safety asks for more):
 * - `build` is `mkdir -p` (0755); `start`/`refresh` need the directory (`StateError` otherwise);
 *   `delete` removes it only when empty (`ConflictError` naming what is in it); sizes come from
 *   `statfs` as libvirt computes them (available = free blocks, allocation = capacity - available).
 * - Volumes are the regular files directly in the directory. Symbolic links are never volumes, never
 *   followed (every open uses `O_NOFOLLOW`, every delete `lstat`s first); subdirectories, FIFOs,
 *   sockets and the backend's hidden `.virtkit-tmp-*` files are not listed. Key = path = canonical path.
 * - Formats are probed from content: raw and qcow2 are read and written (qcow2 through the image
 *   engine, its backing chain read-only, wherever it lives); others are listed with their format name
 *   and refuse I/O and resize with `UnsupportedError`.
 * - Creation is atomic: written under a temporary name, fsync'ed, then `link`ed into place, which
 *   fails with `EEXIST` (`ConflictError`) rather than overwrite; any failure removes the temporary file.
 *   A temporary file a crash left behind is removed by the next `start` or `refresh` once it is an
 *   hour old.
 * - A finished clone (and any job that writes a volume) is durable: its data is `fdatasync`ed before
 *   the job completes, as libvirt's raw clone does; a background writeback every 16 MiB
 *   (`sync_file_range`, or `fdatasync` where that is not available) keeps that last step short.
 * - A clone between two raw files is copied inside the kernel (`copy_file_range`), each chunk through
 *   the job's cap; where the kernel declines, it reads and writes.
 * - Holes are found with `lseek(SEEK_DATA/SEEK_HOLE)`: through FFI on Deno, through the small native addon
 *   `npm install` builds (`native/lseek`) on Node; only where neither is available by reading 64 KiB
 *   blocks; see {@linkcode HoleFinder}.
 *
 * @module
 */
import { defineStorageBackend, type StorageBackendDefinition } from "../../core/storage_backend.ts";
import { DirPoolConfigSchema } from "../../core/config/pool_config.ts";
import type { DirPoolConfig } from "../../core/storage_pool.ts";
import { DirPool, type DirPoolOptions } from "./dir_pool.ts";

export { DirPool, type DirPoolOptions } from "./dir_pool.ts";
export { createPoolConfigFileStore } from "./pool_config_file_store.ts";
export type { DirEntry, DirFile, DirFs, DirFsSizes, DirReadResult, DirStats, DirWriteResult } from "./dir_fs.ts";
export { nodeDirFs } from "./dir_fs.ts";
export { type HoleFinder, lseekHoleFinder, runtimeHoleFinder } from "./hole_finder.ts";

/**
 * Makes a `dir` backend definition with test seams (a fault-injecting file system, a fixed hole
 * finder). Most code wants {@linkcode dirBackend}.
 *
 * @param options File system and hole finder for every pool it opens.
 * @returns The backend definition (name `"dir"`).
 * @example
 * ```ts
 * import { createDirBackend, nodeDirFs } from "./mod.ts";
 * const backend = createDirBackend({ fs: nodeDirFs, holeFinder: null });
 * if (backend.name !== "dir" || backend.kind !== "storage") throw new Error("unexpected");
 * ```
 */
export function createDirBackend(options: DirPoolOptions = {}): StorageBackendDefinition {
  return defineStorageBackend({
    name: "dir",
    // core checks every dir definition against it: an absolute path without control characters.
    configSchema: DirPoolConfigSchema,
    capabilities: ["build", "start", "stop", "delete", "createVolume", "deleteVolume", "resizeVolume", "openVolume"],
    open: (config, ctx) => Promise.resolve(new DirPool(config as DirPoolConfig, { storage: ctx?.storage, ...options })),
  });
}

/**
 * The `dir` storage backend.
 *
 * @example
 * ```ts
 * import { createDefaultRegistry } from "virtkit";
 * import { dirBackend } from "./mod.ts";
 * const registry = createDefaultRegistry();
 * if (!registry.list("storage").some((entry) => entry.name === "dir")) registry.register(dirBackend);
 * if (!registry.list("storage").some((entry) => entry.name === "dir")) throw new Error("unexpected");
 * ```
 */
export const dirBackend: StorageBackendDefinition = createDirBackend();
