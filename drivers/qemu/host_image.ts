/**
 * A block copy's destination at a bare host path, made by virtkit's own image engine (the qcow2 and raw
 * writer the `dir` pools create volumes with) instead of a `qemu-img create` process: the same image
 * (qcow2 v3 with 64 KiB clusters, or a sparse raw file, of the disk's virtual size, with the backing
 * recorded for a shallow copy), without the ~15-25 ms a process spawn costs. The file is created
 * atomically (written under a hidden name, flushed once, then linked to its name, which never replaces
 * a file made meanwhile), so a failure leaves nothing under the name.
 *
 * @module
 */
import { basename, dirname } from "node:path";
import { ConflictError, NotFoundError, StateError } from "../../core/errors.ts";
import type { BackingRef } from "../../core/volume.ts";
import { createVolumeFile } from "../dir/create_volume.ts";
import { nodeDirFs } from "../dir/dir_fs.ts";
import { PoolDirectory } from "../dir/pool_directory.ts";

/** What {@linkcode createHostImage} makes. */
export interface HostImageSpec {
  /** `"qcow2"` or `"raw"`. */
  readonly format: "qcow2" | "raw";
  /** Virtual size (a qcow2 rounds it up to 512 bytes, as `qemu-img create` does). */
  readonly capacityBytes: number;
  /** The backing a qcow2 records (a shallow copy's): an absolute path of that format, or a LUN URL. */
  readonly backing?: BackingRef;
}

/**
 * Creates a new image file at an absolute host path.
 *
 * @param path Where; its directory must exist.
 * @param spec Format, size and backing.
 * @param signal Cancels between steps; nothing is left behind.
 * @returns The path, canonical (its directory's symbolic links resolved).
 * @throws {NotFoundError} When the directory does not exist, or the backing does not.
 * @throws {ConflictError} When a file is at the path.
 * @throws {TypeError} For a file name a volume cannot have, or a backing of another format.
 * @example A 1 GiB qcow2 of 256 KiB (header, refcounts, L1)
 * ```ts
 * import { mkdtemp, rm, stat } from "node:fs/promises";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { createHostImage } from "./host_image.ts";
 * const dir = await mkdtemp(join(tmpdir(), "vk-host-image-"));
 * await createHostImage(join(dir, "copy.qcow2"), { format: "qcow2", capacityBytes: 2 ** 30 });
 * const { size } = await stat(join(dir, "copy.qcow2"));
 * await rm(dir, { recursive: true });
 * if (size !== 4 * 65536) throw new Error("unexpected");
 * ```
 */
export async function createHostImage(path: string, spec: HostImageSpec, signal?: AbortSignal): Promise<string> {
  const directory = new PoolDirectory("host-directory", dirname(path), nodeDirFs);
  try {
    await directory.resolve();
  } catch (error) {
    if (!(error instanceof StateError)) throw error;
    throw new NotFoundError("volume", path, { driver: "qemu", detail: `its directory "${dirname(path)}" does not exist`, cause: error });
  }
  try {
    return await createVolumeFile(directory, { name: basename(path), ...spec }, signal);
  } catch (error) {
    // The message names the path, not the pool-less directory the file is made in.
    if (error instanceof ConflictError) throw new ConflictError(`Cannot create image "${path}": a file is there`, { driver: "qemu", cause: error });
    throw error;
  }
}
