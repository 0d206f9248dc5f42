/**
 * The public {@linkcode StoragePool} object and libvirt's pool lifecycle rules: define leaves a pool
 * inactive; build and delete need it inactive; start, stop and refresh move or need it active; undefine
 * needs it inactive. Lifecycle operations on one pool run one at a time.
 *
 * @module
 */
import { ConflictError, StateError } from "../errors.ts";
import type { SignalOptions } from "../options.ts";
import type { PoolConfig, PoolInfo, StoragePool } from "../storage_pool.ts";
import { signalOnly } from "./job_support.ts";
import type { PoolEntry, PoolTable } from "./pool_table.ts";
import { UNFINISHED_JOB_STATES } from "../job.ts";
import { findReader, requireOp } from "./volume_checks.ts";
import { createVolumeCollection } from "./volume_handle.ts";
import { poolToXml } from "../xml/pool_xml.ts";

type PoolVerb = "build" | "start" | "stop" | "refresh" | "delete" | "undefine";

/**
 * The handle of a defined pool. It names the pool: once the pool is undefined every call throws
 * `NotFoundError`.
 *
 * @param table The connection's pools.
 * @param name The pool's name.
 * @param type Its backend type.
 * @returns The public pool object.
 * @internal Reached through `conn.pools`.
 * @example How a user reaches it: `conn.pools` hands out the handle, which follows the pool's state
 * ```ts
 * import { connect } from "virtkit";
 * await using conn = await connect("test:///empty");
 * const pool = await conn.pools.define({ name: "scratch", type: "memory" });
 * const before = (await pool.info()).state;
 * await pool.build();
 * await pool.start();
 * const after = (await pool.info()).state;
 * if (pool.name !== "scratch" || pool.type !== "memory" || before !== "inactive" || after !== "active") throw new Error("unexpected");
 * ```
 */
export function createPoolHandle(table: PoolTable, name: string, type: string): StoragePool {
  const verb = (body: (entry: PoolEntry, options: SignalOptions) => Promise<void>) =>
    async (options: SignalOptions = {}): Promise<void> => {
      await table.ready(options);
      await table.serial(name, async (entry) => {
        options.signal?.throwIfAborted();
        await body(entry, options);
      });
    };
  return {
    name,
    type,
    volumes: createVolumeCollection(table, name),
    async info(options) {
      await table.ready(options);
      const entry = table.entry(name);
      const { autostart } = entry;
      if (!entry.active || !entry.backend) {
        return { state: "inactive", capacityBytes: 0, allocationBytes: 0, availableBytes: 0, autostart } satisfies PoolInfo;
      }
      const sizes = await entry.backend.sizes(signalOnly(options));
      return {
        state: "active",
        capacityBytes: sizes.capacityBytes,
        allocationBytes: sizes.allocationBytes,
        availableBytes: sizes.availableBytes,
        autostart,
      };
    },
    async setAutostart(autostart, options = {}) {
      if (typeof autostart !== "boolean") throw new TypeError(`Invalid autostart for pool "${name}": expected true or false`);
      await table.ready(options);
      await table.serial(name, async (entry) => {
        options.signal?.throwIfAborted();
        if (!entry.persistent) {
          throw new StateError(`Cannot set autostart of pool "${name}": it is transient (the driver brought it)`, { state: "transient", driver: driverOf(entry) });
        }
        const previous = entry.autostart;
        entry.autostart = autostart;
        try {
          await table.persist();
        } catch (error) {
          entry.autostart = previous;
          throw error;
        }
      });
    },
    async config(options): Promise<PoolConfig> {
      await table.ready(options);
      return structuredClone(table.entry(name).config);
    },
    async xml(options): Promise<string> {
      await table.ready(options);
      return poolToXml(table.entry(name).config);
    },
    build: verb(async (entry, options) => {
      assertInactive(entry, "build");
      // libvirt treats a backend without a build step as one that needs none (iSCSI): success, not "unsupported".
      await (await table.backendOf(entry)).build?.(signalOnly(options));
      table.bus.emit("pool:built", { pool: name });
    }),
    start: verb(async (entry, options) => {
      await table.activate(entry, options, false);
      if (entry.persistent) {
        try {
          await table.persist();
        } catch (error) {
          // Not saved as active, so not started: the next connection would not find it active.
          await entry.backend?.stop?.().catch(() => {});
          entry.active = false;
          await table.releaseBackend(entry).catch(() => {});
          throw error;
        }
      }
      table.bus.emit("pool:started", { pool: name });
    }),
    stop: verb(async (entry, options) => {
      if (!entry.active || !entry.backend) throw inactive(entry, "stop");
      const busy = (await table.jobs.list({ pool: name, state: UNFINISHED_JOB_STATES }))[0]?.id ??
        findReader(table.jobs, { pool: name });
      if (busy !== undefined) {
        throw new ConflictError(`Cannot stop pool "${name}": job "${busy}" is using it`, { jobId: busy, driver: driverOf(entry) });
      }
      await entry.backend.stop?.(signalOnly(options));
      entry.active = false;
      try {
        await table.releaseBackend(entry);
        if (entry.persistent) await table.persist();
      } finally {
        table.bus.emit("pool:stopped", { pool: name });
      }
    }),
    refresh: verb(async (entry, options) => {
      if (!entry.active || !entry.backend) throw inactive(entry, "refresh");
      await entry.backend.refresh(signalOnly(options));
      table.bus.emit("pool:refreshed", { pool: name });
    }),
    delete: verb(async (entry, options) => {
      assertInactive(entry, "delete");
      const backend = await table.backendOf(entry);
      await requireOp(backend, "delete", driverOf(entry), name)(signalOnly(options));
      table.bus.emit("pool:deleted", { pool: name });
    }),
    undefine: verb(async (entry) => {
      assertInactive(entry, "undefine");
      await forget(table, entry);
      table.bus.emit("pool:undefined", { pool: name });
    }),
  };
}

/**
 * Removes a pool's definition and saves the rest; on a failed save the pool stays defined.
 *
 * @param table The connection's pools.
 * @param entry The pool.
 * @internal
 * @example Undefining a stopped pool: `pool.undefine()` forgets it through here
 * ```ts
 * import { connect } from "virtkit";
 * await using conn = await connect("test:///empty");
 * const pool = await conn.pools.define({ name: "scratch", type: "memory" });
 * await pool.undefine();
 * const names = (await conn.pools.list()).map((p) => p.name);
 * const error = await pool.info().catch((e) => e);
 * if (names.includes("scratch") || error.code !== "not-found") throw new Error("unexpected");
 * ```
 */
export async function forget(table: PoolTable, entry: PoolEntry): Promise<void> {
  table.remove(entry.name);
  if (entry.persistent) {
    try {
      await table.persist();
    } catch (error) {
      table.restore(entry);
      throw error;
    }
  }
  await table.releaseBackend(entry);
}

function assertInactive(entry: PoolEntry, action: PoolVerb): void {
  if (entry.active) {
    throw new StateError(`Cannot ${action} pool "${entry.name}": it is active`, { state: "active", driver: driverOf(entry) });
  }
}

function inactive(entry: PoolEntry, action: PoolVerb): StateError {
  return new StateError(`Cannot ${action} pool "${entry.name}": it is not active`, { state: "inactive", driver: driverOf(entry) });
}

function driverOf(entry: PoolEntry): string {
  return entry.definition.name;
}
