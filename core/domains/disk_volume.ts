/**
 * Finding the pool volumes behind a disk: its top image and the images of its backing chain, so the
 * offline disk jobs (and the `test` driver's live ones) work on volumes of the connection's pools.
 *
 * @module
 */
import type { DiskConfig } from "../domain.ts";
import type { StorageAccess } from "../storage_backend.ts";
import { UnsupportedError } from "../errors.ts";
import type { SignalOptions } from "../options.ts";
import { MAX_BACKING_CHAIN_DEPTH, type VolumeInfo } from "../volume.ts";

/** A pool volume, described. */
export interface DiskVolume {
  /** Pool name. */
  readonly pool: string;
  /** Volume name. */
  readonly name: string;
  /** Its key (locks are taken on it). */
  readonly key: string;
  /** Its path. */
  readonly path: string;
  /** Sizes, format and backing. */
  readonly info: VolumeInfo;
}

/**
 * Describes a volume of a pool.
 *
 * @param storage The connection's pools.
 * @param pool Pool name.
 * @param name Volume name.
 * @param options Signal.
 * @returns The volume.
 * @throws {NotFoundError} For an unknown pool or volume. `StateError` for an inactive pool.
 * @example
 * ```ts
 * import { describeVolume } from "./disk_volume.ts";
 * const access = { backend: async () => ({ lookupVolume: async (name: string) => ({ name, key: "/k", path: "/p" }),
 *   volumeInfo: async () => ({ capacityBytes: 1, allocationBytes: 0, physicalBytes: 0, format: "raw" }) }) };
 * const volume = await describeVolume(access as never, "images", "a.img");
 * if (volume.key !== "/k" || volume.info.format !== "raw") throw new Error("unexpected");
 * ```
 */
export async function describeVolume(storage: StorageAccess, pool: string, name: string, options?: SignalOptions): Promise<DiskVolume> {
  const call = options?.signal ? { signal: options.signal } : undefined;
  const backend = await storage.backend(pool);
  const record = await backend.lookupVolume(name, call);
  return { pool, name: record.name, key: record.key, path: record.path, info: await backend.volumeInfo(record.name, call) };
}

/**
 * The pool volume behind a path or key, when an active pool holds one.
 *
 * @param storage The connection's pools.
 * @param path A path or key.
 * @param options Signal.
 * @returns The volume, or undefined.
 * @example
 * ```ts
 * import { findVolumeByPath } from "./disk_volume.ts";
 * const storage = { findVolume: async () => undefined };
 * if ((await findVolumeByPath(storage as never, "/nowhere")) !== undefined) throw new Error("unexpected");
 * ```
 */
export async function findVolumeByPath(storage: StorageAccess, path: string, options?: SignalOptions): Promise<DiskVolume | undefined> {
  options?.signal?.throwIfAborted();
  const found = (await storage.findVolume({ path })) ?? (await storage.findVolume({ key: path }));
  return found && (await describeVolume(storage, found.pool, found.volume.name, options));
}

/**
 * The volume behind a disk's top image.
 *
 * @param storage The connection's pools.
 * @param disk The disk's definition.
 * @param options Signal.
 * @returns The volume, or undefined for a host path no pool holds.
 * @example
 * ```ts
 * import { diskVolume } from "./disk_volume.ts";
 * const storage = { findVolume: async () => undefined };
 * if ((await diskVolume(storage as never, { target: "vda", path: "/srv/raw.img" })) !== undefined) throw new Error("unexpected");
 * ```
 */
export async function diskVolume(storage: StorageAccess, disk: DiskConfig, options?: SignalOptions): Promise<DiskVolume | undefined> {
  if (disk.volume) return await describeVolume(storage, disk.volume.pool, disk.volume.name, options);
  return await findVolumeByPath(storage, disk.path!, options);
}

/**
 * The volume behind a disk's top image, for a job that must work on pool volumes.
 *
 * @param storage The connection's pools.
 * @param domain Domain name, for the message.
 * @param disk The disk's definition.
 * @param operation The public operation, for the error (`"blockPull"`).
 * @param options Signal.
 * @returns The volume.
 * @throws {UnsupportedError} For a host path no active pool holds.
 * @example
 * ```ts
 * import { requireDiskVolume } from "./disk_volume.ts";
 * const storage = { findVolume: async () => undefined };
 * const error = await requireDiskVolume(storage as never, "web1", { target: "vda", path: "/srv/a.img" }, "blockPull").catch((e) => e);
 * if (error.code !== "unsupported" || !error.message.includes("/srv/a.img")) throw new Error("unexpected");
 * ```
 */
export async function requireDiskVolume(
  storage: StorageAccess,
  domain: string,
  disk: DiskConfig,
  operation: string,
  options?: SignalOptions,
): Promise<DiskVolume> {
  const volume = await diskVolume(storage, disk, options);
  if (volume) return volume;
  throw new UnsupportedError(operation, {
    detail: `disk "${disk.target}" of domain "${domain}" is the host path "${disk.path}", which no active pool holds`,
  });
}

/**
 * The images of a volume's backing chain, nearest first, as far as pools hold them: a layer no active
 * pool holds ends the walk (it is listed as `undefined`).
 *
 * @param storage The connection's pools.
 * @param top The top volume.
 * @param options Signal.
 * @returns The backing volumes, nearest first.
 * @example
 * ```ts
 * import { backingVolumes } from "./disk_volume.ts";
 * const top = { pool: "p", name: "t", key: "/t", path: "/t", info: { capacityBytes: 1, allocationBytes: 0, physicalBytes: 0, format: "raw" } };
 * if ((await backingVolumes({} as never, top)).length !== 0) throw new Error("unexpected");
 * ```
 */
export async function backingVolumes(storage: StorageAccess, top: DiskVolume, options?: SignalOptions): Promise<Array<DiskVolume | undefined>> {
  const chain: Array<DiskVolume | undefined> = [];
  for (let ref = top.info.backing; ref !== undefined && chain.length < MAX_BACKING_CHAIN_DEPTH; ) {
    const layer = await findVolumeByPath(storage, ref.path, options);
    chain.push(layer);
    if (!layer) break;
    ref = layer.info.backing;
  }
  return chain;
}
