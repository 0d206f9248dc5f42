/**
 * Atomic creation of a volume file: the image is written under a hidden temporary name in the pool
 * directory, made durable, then linked to its name with `link(2)`, which fails with `EEXIST` instead of
 * replacing a file (a `rename` would silently overwrite one created meanwhile). Any failure removes the
 * temporary file, so a crash-free failure leaves nothing; after a crash only a hidden `.virtkit-tmp-*`
 * file can remain, never a half-made volume under a real name.
 *
 * @module
 */
import path from "node:path";
import type { VolumeCreateSpec } from "../../core/storage_backend.ts";
import { ConflictError, NotFoundError } from "../../core/errors.ts";
import { probeImage } from "../../core/image/probe.ts";
import { createQcow2 } from "../../core/image/qcow2/create.ts";
import type { BackingRef } from "../../core/volume.ts";
import { type DirFile, errnoOf, OPEN_FLAGS } from "./dir_fs.ts";
import { isNetworkBacking } from "./network_backing.ts";
import type { PoolDirectory } from "./pool_directory.ts";
import { TEMP_PREFIX } from "./pool_directory.ts";
import { positionalFileOf } from "./positional_handle.ts";

const DRIVER = "dir";
/** Mode of new volume files (libvirt's default volume permissions). */
const VOLUME_MODE = 0o600;

function randomSuffix(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Resolves a backing reference: the path must be absolute and name a regular file (inside the pool or
 * anywhere else on the host, as libvirt allows), whose content must be of the format given. The
 * reference recorded is the canonical path, which is also the backing volume's key when it is one.
 *
 * @param dir The pool directory (its file system calls).
 * @param spec The volume being created.
 * @returns The reference to record.
 * @throws {TypeError} For a relative path or a format that does not match the file's content.
 * @throws {NotFoundError} When no regular file is there.
 */
async function resolveBacking(dir: PoolDirectory, spec: VolumeCreateSpec & { backing: BackingRef }): Promise<BackingRef> {
  const given = spec.backing.path;
  // A LUN template is recorded as its URL: QEMU opens it, the pool cannot look into it.
  if (isNetworkBacking(given)) return { path: given, format: spec.backing.format };
  if (!path.isAbsolute(given) || given.includes("\0")) {
    throw new TypeError(`Invalid backing of volume "${spec.name}": path "${given}" must be absolute`);
  }
  let canonical: string;
  let file: DirFile;
  try {
    canonical = await dir.fs.realpath(given);
    file = await dir.fs.open(canonical, OPEN_FLAGS.read);
  } catch (error) {
    if (errnoOf(error) === "ENOENT" || errnoOf(error) === "ENOTDIR" || errnoOf(error) === "ELOOP") {
      throw new NotFoundError("volume", given, { driver: DRIVER, detail: `the backing of volume "${spec.name}" does not exist` });
    }
    throw error;
  }
  try {
    if (!(await file.stat()).isFile()) {
      throw new NotFoundError("volume", given, { driver: DRIVER, detail: `the backing of volume "${spec.name}" is not a regular file` });
    }
    const probed = await probeImage(positionalFileOf(file), canonical);
    // A raw backing that really is qcow2 (or the reverse) would hand the guest the other image's metadata.
    if (probed.format !== spec.backing.format) {
      throw new TypeError(
        `Invalid backing of volume "${spec.name}": "${given}" is ${probed.format}, not ${spec.backing.format}`,
      );
    }
  } finally {
    await file.close();
  }
  return { path: canonical, format: spec.backing.format };
}

/**
 * Creates a volume atomically.
 *
 * @param dir The pool directory.
 * @param spec Name, capacity, format and backing (validated by core).
 * @param signal Cancels between steps with its reason; nothing is left behind.
 * @returns The canonical path of the new file.
 * @throws {ConflictError} When the name exists (the existing file is never touched).
 * @example
 * ```ts
 * import fsp from "node:fs/promises";
 * import os from "node:os";
 * import path from "node:path";
 * import { nodeDirFs } from "./dir_fs.ts";
 * import { PoolDirectory } from "./pool_directory.ts";
 * import { createVolumeFile } from "./create_volume.ts";
 * const root = await fsp.mkdtemp(path.join(os.tmpdir(), "create-"));
 * try {
 *   const dir = new PoolDirectory("p", root, nodeDirFs);
 *   await dir.resolve();
 *   const file = await createVolumeFile(dir, { name: "a.img", capacityBytes: 1 << 20, format: "raw" });
 *   const size = (await fsp.stat(file)).size;
 *   if (size !== 1 << 20) throw new Error("unexpected");
 * } finally {
 *   await fsp.rm(root, { recursive: true, force: true });
 * }
 * ```
 */
export async function createVolumeFile(dir: PoolDirectory, spec: VolumeCreateSpec, signal?: AbortSignal): Promise<string> {
  const target = dir.fileOf(spec.name);
  if (spec.name.startsWith(TEMP_PREFIX)) throw new TypeError(`Invalid volume name "${spec.name}": the prefix "${TEMP_PREFIX}" is reserved`);
  const exists = () => new ConflictError(`Cannot create volume "${spec.name}" in pool "${dir.pool}": it exists`, { driver: DRIVER });
  try {
    await dir.fs.lstat(target);
    throw exists();
  } catch (error) {
    if (errnoOf(error) !== "ENOENT") throw error;
  }
  if (spec.backing && spec.format !== "qcow2") {
    throw new TypeError(`Invalid backing for volume "${spec.name}": only a qcow2 volume can have one`);
  }
  const backing = spec.backing ? await resolveBacking(dir, { ...spec, backing: spec.backing }) : undefined;
  signal?.throwIfAborted();

  const temp = path.join(dir.path, `${TEMP_PREFIX}${randomSuffix()}`);
  const file = await dir.fs.open(temp, OPEN_FLAGS.createNew, VOLUME_MODE);
  let open = true;
  let linked = false;
  try {
    if (spec.format === "raw") {
      await file.truncate(spec.capacityBytes);
      await file.sync();
    } else {
      // createQcow2 ends with a flush (fdatasync: the metadata and the file's size), which is all the
      // durability the image needs before its link: one flush per new qcow2 volume, not two.
      await createQcow2(positionalFileOf(file), { capacityBytes: spec.capacityBytes, ...(backing ? { backing } : {}) });
    }
    open = false;
    await file.close();
    signal?.throwIfAborted();
    try {
      await dir.fs.link(temp, target);
    } catch (error) {
      if (errnoOf(error) === "EEXIST") throw exists();
      throw error;
    }
    linked = true;
    await dir.fs.unlink(temp);
    await syncDirectory(dir);
    return target;
  } catch (error) {
    if (open) await file.close().catch(() => {});
    await dir.fs.unlink(temp).catch(() => {});
    // Linked but then failed (the temp name could not be removed, the directory not synced): the
    // volume itself is complete, but the caller is told it failed, so it must not stay either.
    if (linked) await dir.fs.unlink(target).catch(() => {});
    throw error;
  }
}

/** Makes the new directory entry durable; a directory that cannot be opened for it is left to the filesystem. */
async function syncDirectory(dir: PoolDirectory): Promise<void> {
  let handle: DirFile | undefined;
  try {
    handle = await dir.fs.open(dir.path, OPEN_FLAGS.read);
    await handle.sync();
  } catch {
    // Some filesystems refuse fsync on a directory; the data itself is already durable.
  } finally {
    await handle?.close().catch(() => {});
  }
}
