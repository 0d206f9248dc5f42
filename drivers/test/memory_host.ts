/**
 * The in-memory storage of one connection: every `memory` pool's volumes, and the failures armed with
 * `conn.testing.failNext`. The `test` hypervisor connection and the `memory` pool backends of the same
 * connection share it.
 *
 * How they find it: core gives the hypervisor driver and each pool backend its own `DriverContext`, and
 * copies pool configs (`structuredClone`), so nothing can ride along in a config or a context object. What
 * every context of one connection does share is the connection's one job manager, `ctx.jobs`. The host is
 * kept in a `WeakMap` keyed by it: created by whichever side asks first, gone with the connection, and
 * never visible to a user or to another connection.
 *
 * @module
 */
import type { DriverContext } from "../../core/driver.ts";
import { NotFoundError } from "../../core/errors.ts";
import { FaultTable } from "./faults.ts";
import type { MemoryVolumeStore } from "./memory_volume.ts";

/** Default capacity of a memory pool: libvirt's test driver `defaultPoolCap`. */
export const DEFAULT_POOL_CAPACITY_BYTES = 100 * 1024 ** 3;

/** One volume of a memory pool. */
export interface MemoryVolume {
  /** Name within the pool. */
  readonly name: string;
  /** Key and path: `/<pool>/<name>`. */
  readonly key: string;
  /** Format label: the store itself is format-agnostic. */
  readonly format: "raw" | "qcow2";
  /** The bytes. */
  readonly store: MemoryVolumeStore;
}

/** The storage of one memory pool; it outlives stop and start, and `delete()` empties it. */
export interface MemoryPoolData {
  /** Pool name. */
  readonly name: string;
  /** Capacity in bytes. */
  capacityBytes: number;
  /** Volumes by name. */
  readonly volumes: Map<string, MemoryVolume>;
}

/**
 * The key (and path) of a memory volume.
 *
 * @param pool Pool name.
 * @param volume Volume name.
 * @returns `/<pool>/<volume>`.
 * @example
 * ```ts
 * import { memoryVolumeKey } from "./memory_host.ts";
 * if (memoryVolumeKey("default-pool", "test.qcow2") !== "/default-pool/test.qcow2") throw new Error("unexpected");
 * ```
 */
export function memoryVolumeKey(pool: string, volume: string): string {
  return `/${pool}/${volume}`;
}

/**
 * Bytes a memory pool has in use: what its volumes' own layers allocate.
 *
 * @param data The pool's storage.
 * @returns Allocated bytes.
 * @example
 * ```ts
 * import { poolAllocationBytes } from "./memory_host.ts";
 * if (poolAllocationBytes({ name: "p", capacityBytes: 0, volumes: new Map() }) !== 0) throw new Error("unexpected");
 * ```
 */
export function poolAllocationBytes(data: MemoryPoolData): number {
  let total = 0;
  for (const volume of data.volumes.values()) total += volume.store.allocationBytes;
  return total;
}

/**
 * The memory storage and armed failures of one connection.
 *
 * @example
 * ```ts
 * import { MemoryHost } from "./memory_host.ts";
 * const host = new MemoryHost();
 * host.pools.set("p", { name: "p", capacityBytes: 1 << 30, volumes: new Map() });
 * if (host.findByKey("/p/missing") !== undefined) throw new Error("unexpected");
 * ```
 */
export class MemoryHost {
  /** Pool storage by pool name. */
  readonly pools = new Map<string, MemoryPoolData>();
  /** Failures armed by `failNext`. */
  readonly faults = new FaultTable();

  /**
   * The volume behind a key or path (`/<pool>/<name>`), in any memory pool of the connection.
   *
   * @param key The key or path.
   * @returns The pool and volume, or `undefined`.
   */
  findByKey(key: string): { pool: MemoryPoolData; volume: MemoryVolume } | undefined {
    const match = /^\/([^/]+)\/([^/]+)$/.exec(key);
    if (!match) return undefined;
    const pool = this.pools.get(match[1]!);
    const volume = pool?.volumes.get(match[2]!);
    return pool && volume ? { pool, volume } : undefined;
  }

  /**
   * The volume behind a backing reference's path.
   *
   * @param path A memory volume's key or path.
   * @returns Its pool and volume.
   * @throws {NotFoundError} When no memory pool of the connection has it.
   */
  resolve(path: string): { pool: MemoryPoolData; volume: MemoryVolume } {
    const found = this.findByKey(path);
    if (!found) {
      throw new NotFoundError("volume", path, {
        driver: "test",
        detail: "a memory volume can only be backed by a volume of a memory pool of the same connection",
      });
    }
    return found;
  }

  /**
   * The store behind a backing reference's path (see {@linkcode MemoryHost.resolve}).
   *
   * @param path A memory volume's key or path.
   * @returns Its store.
   */
  resolveStore(path: string): MemoryVolumeStore {
    return this.resolve(path).volume.store;
  }

  /**
   * The volumes whose backing is `store` (they would lose their data if it went away).
   *
   * @param store A volume's store.
   * @returns Keys of the volumes it backs.
   */
  dependentsOf(store: MemoryVolumeStore): string[] {
    const keys: string[] = [];
    for (const pool of this.pools.values()) {
      for (const volume of pool.volumes.values()) if (volume.store.backingStore === store) keys.push(volume.key);
    }
    return keys;
  }
}

const hosts = new WeakMap<object, MemoryHost>();

/**
 * The memory host of the connection a context belongs to, created on first use.
 *
 * @param ctx A context core gave the `test` driver or a `memory` pool.
 * @returns The connection's host.
 * @example
 * ```ts
 * import { memoryHostOf } from "./memory_host.ts";
 * const jobs = {};
 * const a = memoryHostOf({ jobs } as unknown as import("../../core/driver.ts").DriverContext);
 * const b = memoryHostOf({ jobs } as unknown as import("../../core/driver.ts").DriverContext);
 * if (a !== b) throw new Error("one host per connection expected");
 * ```
 */
export function memoryHostOf(ctx: Pick<DriverContext, "jobs">): MemoryHost {
  let host = hosts.get(ctx.jobs);
  if (!host) hosts.set(ctx.jobs, (host = new MemoryHost()));
  return host;
}
