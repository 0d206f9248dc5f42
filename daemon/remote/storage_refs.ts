/**
 * Pools and volumes as libvirt names them on the wire (`remote_nonnull_storage_pool`: name, UUID;
 * `remote_nonnull_storage_vol`: pool, name, key) and back.
 *
 * @module
 */
import { NotFoundError } from "../../core/errors.ts";
import type { StoragePool } from "../../core/storage_pool.ts";
import type { Volume } from "../../core/volume.ts";
import type { PoolRefValue, VolumeRefValue } from "../../drivers/remote/rpc/protocol/common.ts";
import type { CallContext } from "../dispatch.ts";
import { poolUuid } from "../object_ids.ts";
import { connOf } from "./domain_refs.ts";

/**
 * The UUID a pool is known by: its config's own, when the backend keeps one, else derived from its name.
 *
 * @example
 * ```ts
 * import { connect } from "../../mod.ts";
 * import { localContext, localSession } from "../local_call.ts";
 * import { allPools, poolByUuid, poolOf, poolRefOf, uuidOfPool, volumeOf, volumeRefOf } from "./storage_refs.ts";
 * await using conn = await connect("test:///default");
 * const ctx = localContext(localSession(conn));
 * const pool = await conn.pools.get("default-pool");
 * if ((await uuidOfPool(pool)) !== (await uuidOfPool(pool))) throw new Error("stable");
 * ```
 */
export async function uuidOfPool(pool: StoragePool): Promise<string> {
  const config = await pool.config() as { uuid?: unknown };
  return typeof config.uuid === "string" ? config.uuid : poolUuid(pool.name);
}

/**
 * The wire reference of a pool.
 *
 * @example
 * ```ts
 * import { connect } from "../../mod.ts";
 * import { localContext, localSession } from "../local_call.ts";
 * import { allPools, poolByUuid, poolOf, poolRefOf, uuidOfPool, volumeOf, volumeRefOf } from "./storage_refs.ts";
 * await using conn = await connect("test:///default");
 * const ctx = localContext(localSession(conn));
 * const ref = await poolRefOf(await conn.pools.get("default-pool"));
 * if (ref.name !== "default-pool" || (await poolOf(ctx, ref)).name !== "default-pool") throw new Error("unexpected");
 * ```
 */
export async function poolRefOf(pool: StoragePool): Promise<PoolRefValue> {
  return { name: pool.name, uuid: await uuidOfPool(pool) };
}

/**
 * The wire reference of a volume.
 *
 * @example
 * ```ts
 * import { connect } from "../../mod.ts";
 * import { localContext, localSession } from "../local_call.ts";
 * import { allPools, poolByUuid, poolOf, poolRefOf, uuidOfPool, volumeOf, volumeRefOf } from "./storage_refs.ts";
 * await using conn = await connect("test:///default");
 * const ctx = localContext(localSession(conn));
 * const vol = await (await conn.pools.get("default-pool")).volumes.get("test.qcow2");
 * if ((await volumeOf(ctx, volumeRefOf(vol))).key !== vol.key) throw new Error("unexpected");
 * ```
 */
export function volumeRefOf(vol: Volume): VolumeRefValue {
  return { pool: vol.pool, name: vol.name, key: vol.key };
}

/**
 * The pool a wire reference names (by name; libvirt clients always send both).
 *
 * @example
 * ```ts
 * import { connect } from "../../mod.ts";
 * import { localContext, localSession } from "../local_call.ts";
 * import { allPools, poolByUuid, poolOf, poolRefOf, uuidOfPool, volumeOf, volumeRefOf } from "./storage_refs.ts";
 * await using conn = await connect("test:///default");
 * const ctx = localContext(localSession(conn));
 * if ((await poolOf(ctx, { name: "default-pool", uuid: "" })).type !== "memory") throw new Error("unexpected");
 * ```
 */
export async function poolOf(ctx: CallContext, ref: PoolRefValue): Promise<StoragePool> {
  return await connOf(ctx).conn.pools.get(ref.name);
}

/**
 * Every pool.
 *
 * @example
 * ```ts
 * import { connect } from "../../mod.ts";
 * import { localContext, localSession } from "../local_call.ts";
 * import { allPools, poolByUuid, poolOf, poolRefOf, uuidOfPool, volumeOf, volumeRefOf } from "./storage_refs.ts";
 * await using conn = await connect("test:///default");
 * const ctx = localContext(localSession(conn));
 * if ((await allPools(ctx)).length !== 1) throw new Error("unexpected");
 * ```
 */
export async function allPools(ctx: CallContext): Promise<StoragePool[]> {
  return await connOf(ctx).conn.pools.list();
}

/**
 * The pool with a UUID.
 *
 * @throws {NotFoundError} When none has it.
 * @example
 * ```ts
 * import { connect } from "../../mod.ts";
 * import { localContext, localSession } from "../local_call.ts";
 * import { allPools, poolByUuid, poolOf, poolRefOf, uuidOfPool, volumeOf, volumeRefOf } from "./storage_refs.ts";
 * await using conn = await connect("test:///default");
 * const ctx = localContext(localSession(conn));
 * const { uuid } = await poolRefOf(await conn.pools.get("default-pool"));
 * if ((await poolByUuid(ctx, uuid.toUpperCase())).name !== "default-pool") throw new Error("unexpected");
 * ```
 */
export async function poolByUuid(ctx: CallContext, uuid: string): Promise<StoragePool> {
  for (const pool of await allPools(ctx)) if ((await uuidOfPool(pool)).toLowerCase() === uuid.toLowerCase()) return pool;
  throw new NotFoundError("pool", uuid, { driver: "virtkitd", detail: "no storage pool with matching uuid" });
}

/**
 * The volume a wire reference names: by pool and name, then checked against the key.
 *
 * @example
 * ```ts
 * import { connect } from "../../mod.ts";
 * import { localContext, localSession } from "../local_call.ts";
 * import { allPools, poolByUuid, poolOf, poolRefOf, uuidOfPool, volumeOf, volumeRefOf } from "./storage_refs.ts";
 * await using conn = await connect("test:///default");
 * const ctx = localContext(localSession(conn));
 * let stale = false;
 * try { await volumeOf(ctx, { pool: "default-pool", name: "test.qcow2", key: "old" }); } catch { stale = true; }
 * if (!stale) throw new Error("a changed key is a different volume");
 * ```
 */
export async function volumeOf(ctx: CallContext, ref: VolumeRefValue): Promise<Volume> {
  const pool = await connOf(ctx).conn.pools.get(ref.pool);
  const vol = await pool.volumes.get(ref.name);
  if (vol.key !== ref.key) throw new NotFoundError("volume", ref.name, { driver: "virtkitd", detail: `its key is no longer "${ref.key}"` });
  return vol;
}
