/**
 * One `dir` pool: the {@linkcode StoragePoolBackend} over a directory of image files.
 *
 * @module
 */
import path from "node:path";
import type { PoolSizes, StorageAccess, StoragePoolBackend, VolumeCreateSpec, VolumeRecord } from "../../core/storage_backend.ts";
import { ConflictError, UnsupportedError } from "../../core/errors.ts";
import { probeImage } from "../../core/image/probe.ts";
import { resizeQcow2 } from "../../core/image/qcow2/resize.ts";
import type { SignalOptions } from "../../core/options.ts";
import type { DirPoolConfig } from "../../core/storage_pool.ts";
import type { BackingRef, VolumeInfo } from "../../core/volume.ts";
import type { VolumeIO } from "../../core/volume_io.ts";
import { createVolumeFile } from "./create_volume.ts";
import { type DirFs, errnoOf, nodeDirFs, OPEN_FLAGS } from "./dir_fs.ts";
import { type HoleFinder, runtimeHoleFinder } from "./hole_finder.ts";
import { isNetworkBacking } from "./network_backing.ts";
import { PoolDirectory } from "./pool_directory.ts";
import { openQcow2Volume } from "./image_volume.ts";
import { positionalFileOf } from "./positional_handle.ts";
import { openRawVolumeIO } from "./raw_volume_io.ts";
import { type ReadAdvisor, runtimeReadAdvisor } from "./read_advisor.ts";
import { runtimeWritebackStarter, type WritebackStarter } from "./writeback_starter.ts";

const DRIVER = "dir";
/** How many entries a `ConflictError` from `delete()` names. */
const LISTED_ENTRIES = 5;

/** Options of {@linkcode DirPool}: seams for tests. */
export interface DirPoolOptions {
  /** File system calls (default: the real ones). */
  fs?: DirFs;
  /** How holes are found: a finder, `null` to always read, absent for the runtime's best. */
  holeFinder?: HoleFinder | null;
  /** How reads of a source are advised ahead (default: this runtime's; `null`: never). */
  readAdvisor?: ReadAdvisor | null;
  /** How a written volume's background writeback starts (default: this runtime's; `null`: `fdatasync`). */
  writebackStarter?: WritebackStarter | null;
  /** The connection's pools, to read network backings (`iscsi://` LUN templates) through. */
  storage?: StorageAccess;
}

/**
 * A directory of image files as a pool. Volumes are the regular files directly in it (see
 * `PoolDirectory` for the exact rule); key and path of a volume are its canonical absolute
 * path. Sizes come from the filesystem, as libvirt reports them: capacity = blocks x block size,
 * available = free blocks, allocation = capacity - available.
 *
 * @example
 * ```ts
 * import fsp from "node:fs/promises";
 * import os from "node:os";
 * import path from "node:path";
 * import { DirPool } from "./dir_pool.ts";
 * const scratch = await fsp.mkdtemp(path.join(os.tmpdir(), "dir-pool-"));
 * try {
 *   const root = path.join(scratch, "images");
 *   const pool = new DirPool({ name: "images", type: "dir", path: root });
 *   await pool.build();
 *   await pool.start();
 *   const record = await pool.createVolume({ name: "a.img", capacityBytes: 1 << 20, format: "raw" });
 *   const info = await pool.volumeInfo("a.img");
 *   await pool.deleteVolume("a.img");
 *   await pool.delete();
 *   const expectedKey = path.join(await fsp.realpath(scratch), "images", "a.img");
 *   if (record.key !== expectedKey) throw new Error("unexpected key");
 *   if (info.capacityBytes !== 1 << 20 || info.format !== "raw") throw new Error("unexpected info");
 * } finally {
 *   await fsp.rm(scratch, { recursive: true, force: true });
 * }
 * ```
 */
export class DirPool implements StoragePoolBackend {
  readonly #dir: PoolDirectory;
  readonly #finder: HoleFinder | undefined;
  readonly #readAdvisor: ReadAdvisor | undefined;
  readonly #writebackStarter: WritebackStarter | undefined;
  readonly #storage: StorageAccess | undefined;

  /**
   * @param config The pool's definition (validated).
   * @param options Test seams.
   */
  constructor(config: DirPoolConfig, options: DirPoolOptions = {}) {
    this.#dir = new PoolDirectory(config.name, config.path, options.fs ?? nodeDirFs);
    this.#finder = options.holeFinder === null ? undefined : (options.holeFinder ?? runtimeHoleFinder());
    this.#readAdvisor = options.readAdvisor === null ? undefined : (options.readAdvisor ?? runtimeReadAdvisor());
    this.#writebackStarter = options.writebackStarter === null ? undefined : (options.writebackStarter ?? runtimeWritebackStarter());
    this.#storage = options.storage;
  }

  /** Creates the directory and its parents (mode 0755); an existing directory is fine. */
  async build(options?: SignalOptions): Promise<void> {
    options?.signal?.throwIfAborted();
    await this.#dir.fs.mkdir(this.#dir.configuredPath, { recursive: true, mode: 0o755 });
  }

  /** Checks the directory exists (`StateError` otherwise) and removes the temporary files of crashed creates. */
  async start(options?: SignalOptions): Promise<void> {
    options?.signal?.throwIfAborted();
    await this.#dir.resolve();
    await this.#dir.sweepOrphans().catch(() => []);
  }

  /** Nothing to release: files stay where they are. */
  stop(options?: SignalOptions): Promise<void> {
    options?.signal?.throwIfAborted();
    return Promise.resolve();
  }

  /** Re-checks the directory (volumes and sizes are read from it on every call) and sweeps orphans as `start` does. */
  async refresh(options?: SignalOptions): Promise<void> {
    options?.signal?.throwIfAborted();
    await this.#dir.resolve();
    await this.#dir.sweepOrphans().catch(() => []);
  }

  /** Removes the directory when it is empty (libvirt's rule); `ConflictError` naming what is in it otherwise. */
  async delete(options?: SignalOptions): Promise<void> {
    options?.signal?.throwIfAborted();
    const dir = this.#dir.configuredPath;
    try {
      await this.#dir.fs.rmdir(dir);
    } catch (error) {
      const code = errnoOf(error);
      if (code === "ENOENT") return;
      if (code !== "ENOTEMPTY" && code !== "EEXIST") throw error;
      const entries = (await this.#dir.fs.readdir(dir, { withFileTypes: true })).map((e) => e.name).sort();
      const shown = entries.slice(0, LISTED_ENTRIES).map((n) => `"${n}"`).join(", ");
      const more = entries.length > LISTED_ENTRIES ? ` and ${entries.length - LISTED_ENTRIES} more` : "";
      throw new ConflictError(`Cannot delete pool "${this.#dir.pool}": directory "${dir}" is not empty (${shown}${more})`, {
        driver: DRIVER,
        cause: error,
      });
    }
  }

  /** The filesystem's sizes. */
  async sizes(options?: SignalOptions): Promise<PoolSizes> {
    options?.signal?.throwIfAborted();
    const s = await this.#dir.fs.statfs(this.#dir.path);
    const capacityBytes = s.blocks * s.bsize;
    const availableBytes = s.bfree * s.bsize;
    return { capacityBytes, allocationBytes: capacityBytes - availableBytes, availableBytes };
  }

  /** The volumes, sorted by name. */
  async listVolumes(options?: SignalOptions): Promise<VolumeRecord[]> {
    options?.signal?.throwIfAborted();
    return (await this.#dir.names()).map((name) => this.#record(name));
  }

  /** One volume; `NotFoundError` unless it is a regular file of the pool. */
  async lookupVolume(name: string, options?: SignalOptions): Promise<VolumeRecord> {
    options?.signal?.throwIfAborted();
    await this.#dir.existing(name);
    return this.#record(name);
  }

  /** Sizes, probed format and backing. */
  async volumeInfo(name: string, options?: SignalOptions): Promise<VolumeInfo> {
    options?.signal?.throwIfAborted();
    const probe = await this.#dir.probe(name);
    const info = {
      capacityBytes: probe.virtualSizeBytes,
      allocationBytes: probe.allocationBytes,
      physicalBytes: probe.fileBytes,
      format: probe.format,
    };
    const backing = probe.qcow2?.backing;
    if (!backing) return info;
    return { ...info, backing: await this.#backingRef(backing) };
  }

  /** Creates a volume atomically (see `createVolumeFile`). */
  async createVolume(spec: VolumeCreateSpec, options?: SignalOptions): Promise<VolumeRecord> {
    options?.signal?.throwIfAborted();
    await createVolumeFile(this.#dir, spec, options?.signal);
    return this.#record(spec.name);
  }

  /** Removes a volume's file; a symbolic link or anything else that is not a volume is `NotFoundError`. */
  async deleteVolume(name: string, options?: SignalOptions): Promise<void> {
    options?.signal?.throwIfAborted();
    const file = await this.#dir.existing(name);
    await this.#dir.fs.unlink(file);
  }

  /**
   * Resizes a raw volume with `ftruncate` (growing leaves a hole) and grows a qcow2 one through the
   * image engine (shrinking qcow2 is `UnsupportedError`, as `qemu-img resize` without `--shrink`);
   * other formats are `UnsupportedError`.
   */
  async resizeVolume(name: string, capacityBytes: number, options?: SignalOptions): Promise<void> {
    options?.signal?.throwIfAborted();
    const { file, path: filePath } = await this.#dir.open(name, true);
    try {
      const { format } = await probeImage(positionalFileOf(file), name);
      if (format === "qcow2") {
        await resizeQcow2(positionalFileOf(file), capacityBytes, filePath);
      } else if (format === "raw") {
        await file.truncate(capacityBytes);
        await file.sync();
      } else {
        throw this.#unsupported("resizeVolume", name, format);
      }
    } finally {
      await file.close();
    }
  }

  /**
   * Opens a raw or qcow2 volume for positional I/O (qcow2 through the image engine, with its backing
   * chain read-only: see `openQcow2Volume`); other formats are `UnsupportedError` naming it.
   */
  async openVolume(name: string, mode: { write: boolean }, options?: SignalOptions): Promise<VolumeIO> {
    options?.signal?.throwIfAborted();
    const write = mode.write === true;
    const { file, path: filePath } = await this.#dir.open(name, write);
    try {
      const { format } = await probeImage(positionalFileOf(file), name);
      const label = this.#label(name);
      if (format === "raw") {
        const [readAdvisor, writebackStarter] = [this.#readAdvisor, this.#writebackStarter];
        const fs = this.#dir.fs;
        return await openRawVolumeIO({
          file,
          write,
          holeFinder: this.#finder,
          label,
          ...(readAdvisor ? { readAdvisor } : {}),
          ...(writebackStarter ? { writebackStarter } : {}),
          ...(fs.copyFileRange ? { copyFileRange: fs.copyFileRange.bind(fs) } : {}),
        });
      }
      if (format === "qcow2") {
        const writebackStarter = this.#writebackStarter;
        return await openQcow2Volume({
          file,
          path: filePath,
          write,
          fs: this.#dir.fs,
          holeFinder: this.#finder,
          label,
          storage: this.#storage,
          ...(writebackStarter ? { writebackStarter } : {}),
        });
      }
      throw this.#unsupported("openVolume", name, format);
    } catch (error) {
      await file.close().catch(() => {});
      throw error;
    }
  }

  /** Nothing is held open between calls. */
  close(): Promise<void> {
    return Promise.resolve();
  }

  /** A backing reference as reported: a relative name is relative to the image's directory (QEMU's rule). */
  async #backingRef(backing: { path: string; format?: string }): Promise<BackingRef> {
    if (isNetworkBacking(backing.path)) return { path: backing.path, format: backing.format ?? "raw" };
    const absolute = path.resolve(this.#dir.path, backing.path);
    if (backing.format !== undefined) return { path: absolute, format: backing.format };
    // Old images record no backing format: probe the file, as qemu-img info does.
    try {
      const file = await this.#dir.fs.open(absolute, OPEN_FLAGS.read);
      try {
        return { path: absolute, format: (await probeImage(positionalFileOf(file), absolute)).format };
      } finally {
        await file.close();
      }
    } catch {
      return { path: absolute, format: "raw" };
    }
  }

  #record(name: string): VolumeRecord {
    const file = path.join(this.#dir.path, name);
    return { name, key: file, path: file };
  }

  #label(name: string): string {
    return `volume "${name}" in pool "${this.#dir.pool}"`;
  }

  #unsupported(operation: string, name: string, format: string): UnsupportedError {
    return new UnsupportedError(operation, {
      driver: DRIVER,
      detail: `${this.#label(name)} is ${format}; the dir backend reads and writes raw and qcow2 only`,
    });
  }
}
