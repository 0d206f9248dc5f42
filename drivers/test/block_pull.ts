/**
 * `dom.blockPull()` on the `test` driver: the generic pull job of core's storage layer, run on the
 * disk's pool volume and locked on the disk, so the same code path serves running and shut-off domains.
 *
 * @module
 */
import type { BlockPullOptions } from "../../core/domain.ts";
import type { StorageAccess } from "../../core/driver.ts";
import { NotFoundError, UnsupportedError } from "../../core/errors.ts";
import type { EventBus } from "../../core/event_bus.ts";
import type { Job } from "../../core/job.ts";
import type { JobManager } from "../../core/jobs/types.ts";
import { startPullJob } from "../../core/storage/volume_jobs.ts";
import { diskVolume } from "./disks.ts";
import type { DomainTable } from "./domains.ts";
import type { MemoryHost } from "./memory_host.ts";

/** What a block pull needs from the connection. */
export interface BlockPullEnv {
  /** The connection's pools. */
  readonly storage: StorageAccess;
  /** The connection's memory storage. */
  readonly host: MemoryHost;
  /** The connection's job manager. */
  readonly jobs: JobManager;
  /** The connection's bus. */
  readonly bus: EventBus;
  /** The connection's domains. */
  readonly domains: DomainTable;
}

/**
 * Starts pulling a disk's backing chain into its top volume. The job (type `"block-pull"`, target
 * `{ domain, disk, pool, volume }`) locks `disk:<domain>/<disk>` and the volume's key; when it
 * completes the volume has no backing (or `base` as its backing) and reads exactly as before.
 *
 * @param env The connection's parts.
 * @param domain Domain name.
 * @param disk Disk target (`"vda"`).
 * @param options Cap, base and signal (core has checked them).
 * @returns The running job.
 * @throws {NotFoundError} For an unknown domain, disk or volume, or a `base` not in the chain.
 * @throws {UnsupportedError} For a disk on a host path that no pool holds.
 * @throws {ConflictError} When a job already works on the disk or its volume (naming that job).
 * @example
 * ```ts
 * // Reached through dom.blockPull():
 * import { connect } from "../../mod.ts";
 * await using conn = await connect("test:///default");
 * const job = await (await conn.domains.get("test")).blockPull("vda");
 * await job.wait();
 * if (job.type !== "block-pull" || job.target.volume !== "test.qcow2") throw new Error("unexpected");
 * ```
 */
export async function startBlockPull(env: BlockPullEnv, domain: string, disk: string, options: BlockPullOptions): Promise<Job<void>> {
  const config = env.domains.config(domain);
  const diskConfig = config.disks.find((d) => d.target === disk);
  if (!diskConfig) throw new NotFoundError("disk", disk, { driver: "test", detail: `domain "${domain}" has no such disk` });
  const volume = await diskVolume(env, diskConfig);
  if (!volume) {
    throw new UnsupportedError("blockPull", {
      driver: "test",
      detail: `disk "${disk}" of domain "${domain}" is the host path "${diskConfig.path}", which no pool holds`,
    });
  }
  const pool = volume.pool;
  const name = volume.record.name;
  return await startPullJob({
    access: env.storage,
    jobs: env.jobs,
    bus: env.bus,
    pool,
    volume: name,
    bandwidth: options.bandwidth,
    ...(options.base === undefined ? {} : { base: options.base }),
    ...(options.signal ? { signal: options.signal } : {}),
    type: "block-pull",
    target: { domain, disk, pool, volume: name },
    locks: [`disk:${domain}/${disk}`],
  });
}
