/**
 * How volume commands name a volume, as virsh does: a name with `--pool POOL`, or a path or key alone.
 *
 * @module
 */
import type { Connection } from "../../core/connection.ts";
import type { Volume } from "../../core/volume.ts";
import type { ArgSpec, OptionSpec } from "../spec.ts";
import { UsageError } from "../usage.ts";

/** The `VOL` argument. */
export const VOL_ARG: ArgSpec = { name: "VOL", description: "volume name (with --pool), path or key" };

/** The `--pool` option. */
export const POOL_OPTION: OptionSpec = { type: "string", value: "POOL", description: "the pool VOL is a name in" };

/**
 * Finds the volume a command names.
 *
 * @param conn The connection.
 * @param vol The `VOL` argument.
 * @param pool The `--pool` option.
 * @returns The volume.
 * @throws {UsageError} For a bare name without `--pool`.
 * @throws {NotFoundError} When there is no such volume.
 * @example
 * ```ts
 * import { connect } from "../../mod.ts";
 * import { findVolume } from "./volume_ref.ts";
 * await using conn = await connect("test:///default");
 * const byName = await findVolume(conn, "test.qcow2", "default-pool");
 * const byPath = await findVolume(conn, byName.path, undefined);
 * if (byPath.key !== byName.key) throw new Error("unexpected");
 * ```
 */
export async function findVolume(conn: Connection, vol: string, pool: string | undefined): Promise<Volume> {
  if (pool !== undefined) return (await conn.pools.get(pool)).volumes.get(vol);
  if (!vol.includes("/")) throw new UsageError(`"${vol}" is a volume name: say which pool with --pool POOL, or give its path`);
  try {
    return await conn.volumes.lookup({ path: vol });
  } catch (error) {
    return await conn.volumes.lookup({ key: vol }).catch(() => Promise.reject(error));
  }
}
