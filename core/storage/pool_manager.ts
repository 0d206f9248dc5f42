/**
 * The storage side of a connection: its pools (libvirt's storage driver), volume look-ups across them,
 * and the {@linkcode StorageAccess} drivers use to reach pool volumes.
 *
 * @module
 */
import type { Clock } from "../clock.ts";
import type { StorageAccess } from "../storage_backend.ts";
import { ConflictError, NotFoundError } from "../errors.ts";
import type { EventBus } from "../event_bus.ts";
import type { JobManager } from "../jobs/types.ts";
import type { PoolCollection, PoolConfig, StoragePool } from "../storage_pool.ts";
import type { ConnectionUri } from "../uri.ts";
import { assertName } from "../validate.ts";
import type { VolumeLookup } from "../volume.ts";
import { createMemoryPoolConfigStore, type PoolConfigStore } from "./pool_config_store.ts";
import { createPoolHandle, forget } from "./pool_handle.ts";
import { PoolTable, type StorageBackendSource } from "./pool_table.ts";
import { createVolumeHandle } from "./volume_handle.ts";
import { poolFromXml } from "../xml/pool_xml.ts";

export type { PoolConfigStore } from "./pool_config_store.ts";
export type { StorageBackendSource } from "./pool_table.ts";

/** Options of {@linkcode createPoolManager}. */
export interface PoolManagerOptions {
  /** Where storage backends come from (`registry.storageBackend(type)`). */
  registry: StorageBackendSource;
  /** The connection's bus: pool and volume events go there. */
  bus: EventBus;
  /** The connection's clock. */
  clock: Clock;
  /** The connection's job manager: volume jobs run there. */
  jobs: JobManager;
  /** The connection URI, passed on to backends. */
  uri: ConnectionUri;
  /** The connection's state directory, passed on to backends. */
  stateDir?: string;
  /** Where definitions persist (default: in memory, for the manager's life). */
  store?: PoolConfigStore;
}

/** The storage side of one connection. */
export interface PoolManager {
  /** `conn.pools`. */
  readonly pools: PoolCollection;
  /** `conn.volumes`. */
  readonly volumes: VolumeLookup;
  /** What drivers get as `ctx.storage`. */
  readonly access: StorageAccess;
  /**
   * Defines the pools a driver brings (the `test` driver's seed), quietly (no events) and without
   * saving them; those marked active are started. A saved definition of the same name wins. Pools a
   * driver brings later go through `access.addPools`, where a taken name is a `ConflictError`.
   *
   * @param list The pools and whether each starts active.
   */
  addInitialPools(list: ReadonlyArray<{ config: PoolConfig; active: boolean }>): Promise<void>;
  /** Closes every pool's backend; later calls throw `StateError`. Close the job manager first. */
  close(): Promise<void>;
}

/**
 * Creates the storage side of a connection. Saved definitions are loaded from the store before the
 * first operation. Pool backends are opened lazily (by the first `build`, `delete` or `start`), closed on
 * `stop`, and re-opened by the next `start`, so a backend must keep its data outside the object it returns
 * from `open` when it has any to keep.
 *
 * @param options The registry, the connection's bus, clock, job manager, URI and state directory, and
 *   the definition store.
 * @returns The pool collection, the volume look-up, the storage access, and lifecycle hooks.
 * @example A pool type defined on the spot
 * ```ts
 * import { createPoolManager } from "./pool_manager.ts";
 * import { createVirtualClock } from "virtkit";
 * import type { EventBus } from "virtkit";
 * import type { JobManager } from "virtkit";
 * const backend = {
 *   refresh: async () => {},
 *   sizes: async () => ({ capacityBytes: 1024, allocationBytes: 0, availableBytes: 1024 }),
 *   listVolumes: async () => [],
 *   lookupVolume: async (name: string) => { throw new Error(`no volume ${name}`); },
 *   volumeInfo: async (name: string) => { throw new Error(`no volume ${name}`); },
 * };
 * const manager = createPoolManager({
 *   registry: { storageBackend: async (type) => ({ kind: "storage", name: type, open: async () => backend }) },
 *   bus: { emit: () => undefined } as unknown as EventBus,
 *   clock: createVirtualClock(),
 *   jobs: {} as JobManager,
 *   uri: { href: "test:///empty", scheme: "test", host: "", path: "/empty", params: new Map() },
 * });
 * const pool = await manager.pools.create({ name: "scratch", type: "scratch" });
 * const info = await pool.info();
 * if (info.state !== "active" || info.capacityBytes !== 1024) throw new Error("unexpected");
 * await manager.close();
 * ```
 */
export function createPoolManager(options: PoolManagerOptions): PoolManager {
  if (typeof options?.registry?.storageBackend !== "function") {
    throw new TypeError("Invalid pool manager options: registry.storageBackend must be a function");
  }
  const table = new PoolTable({ ...options, store: options.store ?? createMemoryPoolConfigStore() });
  const handle = (name: string) => createPoolHandle(table, name, table.entry(name).config.type);

  const define = async (input: PoolConfig, signal?: AbortSignal): Promise<StoragePool> => {
    await table.ready({ signal });
    const { config, definition } = await table.checkConfig(input);
    signal?.throwIfAborted();
    if (table.has(config.name)) throw new ConflictError(`Cannot define pool "${config.name}": a pool of that name exists`);
    const entry = table.add(config, definition, { active: false, persistent: true });
    try {
      await table.persist();
    } catch (error) {
      table.remove(entry.name);
      throw error;
    }
    table.bus.emit("pool:defined", { pool: config.name });
    return handle(config.name);
  };

  const pools: PoolCollection = {
    async list(opts) {
      await table.ready(opts);
      return table.entries().map((entry) => handle(entry.name));
    },
    async get(name, opts) {
      assertName(name, "pool name");
      await table.ready(opts);
      return handle(table.entry(name).name);
    },
    define: (config, opts) => define(config, opts?.signal),
    async defineXml(xml, opts) {
      const { config, warnings } = poolFromXml(xml, opts);
      for (const warning of warnings) opts?.onWarning?.(warning);
      return await define(config, opts?.signal);
    },
    async create(config, opts) {
      const pool = await define(config, opts?.signal);
      try {
        await pool.build(opts);
        await pool.start(opts);
      } catch (error) {
        // create is one step for the caller: a pool that cannot be built and started is not left defined.
        await table.serial(pool.name, async (entry) => {
          await forget(table, entry);
          table.bus.emit("pool:undefined", { pool: pool.name });
        }).catch(() => {});
        throw error;
      }
      return pool;
    },
  };

  const volumes: VolumeLookup = {
    async lookup(query, opts) {
      opts?.signal?.throwIfAborted();
      const found = await table.findVolume(query);
      if (!found) {
        const [field, value] = "key" in query ? ["key", query.key] : ["path", query.path];
        throw new NotFoundError("volume", value, { detail: `no active pool has a volume with that ${field}` });
      }
      return createVolumeHandle(table, found.pool, found.volume);
    },
  };

  return {
    pools,
    volumes,
    access: table.access,
    addInitialPools: (list) => table.addPools(list, { skipTaken: true }),
    close: () => table.close(),
  };
}
