/**
 * Resolves a domain's disks to volumes and backing chains through the connection's pools.
 *
 * @module
 */
import type { BackingLayer, DiskConfig, DiskInfo } from "../../core/domain.ts";
import type { StorageAccess, VolumeRecord } from "../../core/storage_backend.ts";
import { type BackingRef, MAX_BACKING_CHAIN_DEPTH, type VolumeInfo } from "../../core/volume.ts";
import type { MemoryHost } from "./memory_host.ts";
import { MemoryPool } from "./memory_pool.ts";

/** What disk resolution reads: the connection's pools and its memory storage. */
export interface DiskEnv {
  /** The connection's pools. */
  readonly storage: StorageAccess;
  /** The connection's memory storage, searched first for paths (without listing every pool). */
  readonly host: MemoryHost;
}


/** A pool volume, described. */
export interface ResolvedVolume {
  /** Pool name. */
  readonly pool: string;
  /** The backend's record. */
  readonly record: VolumeRecord;
  /** Its sizes, format and backing. */
  readonly info: VolumeInfo;
}

/**
 * Describes a pool volume. Volumes of `memory` pools are read directly, so failures armed with
 * `failNext` for the pool's own operations are not spent on the driver's internal reads.
 *
 * @param storage The connection's pools.
 * @param pool Pool name.
 * @param name Volume name.
 * @returns The volume.
 * @throws {NotFoundError} For an unknown pool or volume; `StateError` for an inactive pool.
 * @example
 * ```ts
 * import { describeVolume } from "./disks.ts";
 * const storage = undefined as import("../../core/driver.ts").StorageAccess | undefined; // a connection's ctx.storage
 * if (storage) {
 *   const { info } = await describeVolume(storage, "default-pool", "test.qcow2");
 *   if (info.format !== "qcow2") throw new Error("unexpected");
 * }
 * ```
 */
export async function describeVolume(storage: StorageAccess, pool: string, name: string): Promise<ResolvedVolume> {
  const backend = await storage.backend(pool);
  if (backend instanceof MemoryPool) return { pool, ...backend.describe(name) };
  const record = await backend.lookupVolume(name);
  return { pool, record, info: await backend.volumeInfo(name) };
}

/** The pool volume behind a path or key, if an active pool of the connection holds one. */
async function findByPath({ storage, host }: DiskEnv, path: string): Promise<ResolvedVolume | undefined> {
  const memory = host.findByKey(path);
  if (memory) return await describeVolume(storage, memory.pool.name, memory.volume.name).catch(() => undefined);
  const found = (await storage.findVolume({ path })) ?? (await storage.findVolume({ key: path }));
  return found && (await describeVolume(storage, found.pool, found.volume.name));
}

/** Follows backing references through the pools; a layer no pool holds ends the chain as recorded. */
async function backingChain(env: DiskEnv, first: BackingRef | undefined): Promise<BackingLayer[]> {
  const chain: BackingLayer[] = [];
  for (let ref = first; ref !== undefined && chain.length < MAX_BACKING_CHAIN_DEPTH; ) {
    const layer = await findByPath(env, ref.path);
    chain.push(layer ? { path: layer.record.path, format: layer.info.format } : { path: ref.path, format: ref.format });
    ref = layer?.info.backing;
  }
  return chain;
}

/**
 * The volume a disk sits on: its pool volume, or the pool volume whose path it names.
 *
 * @param env The connection's pools and memory storage.
 * @param disk The disk's config.
 * @returns The volume, or `undefined` for a host path no pool holds.
 * @throws {NotFoundError} When the disk names a pool volume that does not exist.
 * @example
 * ```ts
 * import { diskVolume } from "./disks.ts";
 * const env = undefined as import("./disks.ts").DiskEnv | undefined; // a connection's pools and memory host
 * if (env) {
 *   const volume = await diskVolume(env, { target: "vda", volume: { pool: "default-pool", name: "test.qcow2" } });
 *   if (volume?.pool !== "default-pool") throw new Error("unexpected");
 * }
 * ```
 */
export async function diskVolume(env: DiskEnv, disk: DiskConfig): Promise<ResolvedVolume | undefined> {
  if (disk.volume) return await describeVolume(env.storage, disk.volume.pool, disk.volume.name);
  return await findByPath(env, disk.path!);
}

/**
 * Describes a domain's disks as the guest sees them now, with their backing chains (nearest first).
 *
 * @param env The connection's pools and memory storage.
 * @param disks The domain's disk configs.
 * @returns One entry per disk, in order.
 * @throws {NotFoundError} When a disk names a pool volume that does not exist.
 * @example
 * ```ts
 * import { resolveDisks } from "./disks.ts";
 * const env = undefined as import("./disks.ts").DiskEnv | undefined; // a connection's pools and memory host
 * if (env) {
 *   const [vda] = await resolveDisks(env, [{ target: "vda", volume: { pool: "default-pool", name: "test.qcow2" } }]);
 *   if (vda?.backingChain.length !== 1) throw new Error("unexpected");
 * }
 * ```
 */
export async function resolveDisks(env: DiskEnv, disks: readonly DiskConfig[]): Promise<DiskInfo[]> {
  const out: DiskInfo[] = [];
  for (const disk of disks) {
    const volume = await diskVolume(env, disk);
    if (!volume) {
      out.push({ target: disk.target, path: disk.path!, format: disk.format ?? "raw", backingChain: [] });
      continue;
    }
    out.push({
      target: disk.target,
      path: volume.record.path,
      format: volume.info.format,
      backingChain: await backingChain(env, volume.info.backing),
      volume: { pool: volume.pool, name: volume.record.name },
    });
  }
  return out;
}
