/**
 * A block pull on the pool volume behind a disk, through the copy loop: the offline path of
 * `dom.blockPull()` for shut-off domains on every driver, and the `test` driver's live pull.
 *
 * @module
 */
import type { LiveBlockPullRequest } from "../driver.ts";
import type { StorageAccess } from "../storage_backend.ts";
import type { EventBus } from "../event_bus.ts";
import type { Job } from "../job.ts";
import type { JobManager } from "../jobs/types.ts";
import type { WriteGuard } from "../storage/copy_on_read.ts";
import { startPullJob } from "../storage/volume_jobs.ts";
import { requireDiskVolume } from "./disk_volume.ts";

/** What the disk jobs that run in core need from the connection. */
export interface DiskJobEnv {
  /** The connection's pools. */
  readonly storage: StorageAccess;
  /** The connection's job manager. */
  readonly jobs: JobManager;
  /** The connection's bus (volume events of created or deleted volumes). */
  readonly bus?: EventBus;
}

/**
 * Starts pulling a disk's backing chain into its top volume. The job (type `"block-pull"`, target
 * `{ domain, disk, pool, volume }`) takes the request's locks and the volume's key; when it completes
 * the volume has no backing (or `base` as its backing) and reads exactly as before.
 *
 * @param env The connection's pools, jobs and bus.
 * @param request The domain, disk, locks, cap and base (checked by core).
 * @param guestWrites A running guest's writes to the disk (the `test` driver's live pull): the pull
 *   then never overwrites what the guest wrote, as QEMU's copy-on-read stream does.
 * @returns The running job.
 * @throws {NotFoundError} For an unknown volume, or a `base` not in the chain.
 * @throws {UnsupportedError} For a disk on a host path that no pool holds.
 * @throws {ConflictError} When a job already works on the disk or its volume (naming that job).
 * @example Reached through `dom.blockPull()` (here on a shut-off domain of the `test` driver)
 * ```ts
 * import { connect } from "virtkit";
 * await using conn = await connect("test:///default");
 * const dom = await conn.domains.get("test");
 * await dom.destroy();
 * const job = await dom.blockPull("vda");
 * await job.wait();
 * const [vda] = await dom.disks();
 * if (job.type !== "block-pull" || job.target.volume !== "test.qcow2" || vda!.backingChain.length !== 0) throw new Error("unexpected");
 * ```
 */
export async function startVolumeBlockPull(env: DiskJobEnv, request: LiveBlockPullRequest, guestWrites?: WriteGuard): Promise<Job<void>> {
  const { domain, disk } = request;
  const volume = await requireDiskVolume(env.storage, domain, disk, "blockPull", request);
  return await startPullJob({
    access: env.storage,
    jobs: env.jobs,
    ...(env.bus ? { bus: env.bus } : {}),
    pool: volume.pool,
    volume: volume.name,
    bandwidth: request.bandwidth,
    ...(request.base === undefined ? {} : { base: request.base }),
    ...(request.signal ? { signal: request.signal } : {}),
    type: "block-pull",
    target: { domain, disk: disk.target, pool: volume.pool, volume: volume.name },
    locks: [...request.locks],
    ...(guestWrites ? { guestWrites } : {}),
  });
}
