/**
 * Backings that are not host files but network block devices named by URL (`iscsi://host:port/IQN/LUN`,
 * the key of an `iscsi` pool volume): a qcow2 overlay in a `dir` pool may sit on such a template, as
 * `qemu-img create -b iscsi://... -F raw` makes it. QEMU opens it with its own driver; the image engine
 * reads it through the connection's pools (the `iscsi` pool that has the LUN, read-only), so offline
 * pull, clone and download of such an overlay work too.
 *
 * @module
 */
import type { StorageAccess } from "../../core/storage_backend.ts";
import { NotFoundError, StateError, UnsupportedError } from "../../core/errors.ts";
import type { OpenedBacking } from "../../core/image/open_image.ts";
import type { PositionalFile } from "../../core/image/positional_file.ts";
import type { VolumeIO } from "../../core/volume_io.ts";

/** The schemes recorded as they are, never resolved against the pool directory. */
const NETWORK_BACKING = /^iscsi:\/\/[^/]+\/[^/]+\/\d+$/;

/**
 * Whether a backing reference names a network LUN rather than a file.
 *
 * @param backingPath The recorded or requested backing.
 * @returns `true` for an `iscsi://host:port/IQN/LUN` URL.
 * @example
 * ```ts
 * import { isNetworkBacking } from "./network_backing.ts";
 * if (!isNetworkBacking("iscsi://127.0.0.1:3260/iqn.2026-01.com.example:t/1") || isNetworkBacking("/images/base.raw")) throw new Error("unexpected");
 * ```
 */
export function isNetworkBacking(backingPath: string): boolean {
  return NETWORK_BACKING.test(backingPath);
}

/**
 * Opens a network backing through the pool that has it, as a read-only raw layer.
 *
 * @param backingPath The backing's URL.
 * @param storage The connection's pools (absent when the pool was opened without a connection).
 * @param label The volume whose backing it is (`volume "a" in pool "p"`).
 * @returns The backing for the image engine (it closes the volume IO with the chain).
 * @throws {NotFoundError} When no active pool has a volume with that key.
 * @throws {UnsupportedError} Without a connection's pools to look in.
 * @example Without the connection's pools there is nothing to read it through
 * ```ts
 * import { openNetworkBacking } from "./network_backing.ts";
 * const error = await openNetworkBacking("iscsi://h:3260/iqn.2026-01.com.example:t/1", undefined, 'volume "a"').then(() => undefined, (e) => e);
 * if ((error as { code?: string }).code !== "unsupported") throw new Error("unexpected");
 * ```
 */
export async function openNetworkBacking(backingPath: string, storage: StorageAccess | undefined, label: string): Promise<OpenedBacking> {
  if (!storage) {
    throw new UnsupportedError("openVolume", { driver: "dir", detail: `${label} has the network backing "${backingPath}", which is read through the connection's pools, and this pool has none` });
  }
  const where = await storage.findVolume({ key: backingPath });
  if (!where) {
    throw new NotFoundError("volume", backingPath, { driver: "dir", detail: `the backing of ${label}: no active pool has it (define and start the iscsi pool of its target)` });
  }
  const io = await storage.openVolume(where.pool, where.volume.name, { write: false });
  return {
    file: readOnlyFile(io, backingPath),
    name: backingPath,
    key: backingPath,
    format: "raw",
    rawExtents: async (offset, length) => {
      const out: Array<{ offset: number; length: number; data: boolean }> = [];
      for await (const e of io.extents(offset, length)) out.push({ offset: e.offset, length: e.length, data: e.data });
      return out;
    },
  };
}

function readOnlyFile(io: VolumeIO, name: string): PositionalFile {
  const refuse = () => Promise.reject(new StateError(`Cannot write the backing "${name}": backings are read-only`, { state: "read-only", driver: "dir" }));
  return {
    read: (offset, target) => io.read(offset, target),
    write: refuse,
    truncate: refuse,
    size: () => Promise.resolve(io.capacityBytes),
    flush: () => Promise.resolve(),
    close: () => io.close(),
  };
}
