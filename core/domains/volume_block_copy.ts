/**
 * A block copy of the pool volume behind a disk, through the copy loop and the mirror phase: the offline
 * path of `dom.blockCopy()` for shut-off domains on every driver, and the `test` driver's live copy.
 *
 * @module
 */
import type { DiskSource, LiveBlockCopyRequest } from "../driver.ts";
import type { Job } from "../job.ts";
import type { Extent } from "../volume.ts";
import type { VolumeIO } from "../volume_io.ts";
import { resolveCopyDestination } from "./copy_destination.ts";
import { requireDiskVolume } from "./disk_volume.ts";
import { DEFAULT_GRANULARITY_BYTES, type GuestWriteSource, runMirror } from "./mirror.ts";
import type { DiskJobEnv } from "./volume_block_pull.ts";

/** What a driver adds to a copy core runs: the guest's writes and the pivot. */
export interface MirrorHooks {
  /** The guest's writes to the disk (absent for a shut-off domain: nothing writes). */
  readonly writes?: GuestWriteSource;
  /** Points the disk at its new image (`finalize()`); `disks()` and the definition say so afterwards. */
  pivot(source: DiskSource): Promise<void>;
}

/**
 * Starts copying a disk's volume to a destination: a pool volume, or a host path no pool holds (made
 * through the `dir` backend over its directory, see {@linkcode resolveCopyDestination}). The job (type `"block-copy"`) is `ready` once
 * the destination is in sync; `finalize()` pivots, `abort()` in `ready` keeps the destination as a
 * consistent copy, `abort()` (or a failure) before `ready` deletes a destination the job created.
 *
 * @param env The connection's pools, jobs and bus.
 * @param request The disk, destination, format, shallow, reuse, cap, granularity and locks (checked by core).
 * @param hooks The guest's writes and the pivot.
 * @returns The running job.
 * @throws {NotFoundError} For a destination volume that does not exist with `reuseExisting`.
 * @throws {ConflictError} For a destination that exists without `reuseExisting`, or one a job uses.
 * @throws {UnsupportedError} For a disk no active pool holds, or a host path on a connection without a `dir` backend.
 * @throws {RangeError} For a reused destination smaller than the disk.
 * @example Reached through `dom.blockCopy()` on a shut-off domain: ready at once, pivot on finalize()
 * ```ts
 * import { connect } from "virtkit";
 * await using conn = await connect("test:///default");
 * const dom = await conn.domains.get("test");
 * await dom.destroy();
 * const job = await dom.blockCopy("vda", { destination: { pool: "default-pool", name: "flat.raw" }, format: "raw" });
 * await new Promise<void>((resolve) => conn.events.on("job:ready", (e) => e.job.id === job.id && resolve()));
 * await job.finalize();
 * await job.wait();
 * const [vda] = await dom.disks();
 * if (vda!.volume?.name !== "flat.raw" || vda!.backingChain.length !== 0) throw new Error("unexpected");
 * ```
 */
export async function startVolumeBlockCopy(env: DiskJobEnv, request: LiveBlockCopyRequest, hooks: MirrorHooks): Promise<Job<void>> {
  const { storage, jobs, bus } = env;
  const { domain, disk } = request;
  const call = request.signal ? { signal: request.signal } : undefined;
  const what = `copy disk "${disk.target}" of domain "${domain}"`;
  const source = await requireDiskVolume(storage, domain, disk, "blockCopy", request);
  const shallow = request.shallow && source.info.backing !== undefined;
  const dest = await resolveCopyDestination({ storage, ...(bus ? { bus } : {}) }, request, { source, shallow, diskByPath: disk.path !== undefined, what });
  const opened: VolumeIO[] = [];
  const closeAll = async () => {
    for (const io of opened.splice(0)) await io.close().catch(() => {});
  };
  try {
    if (dest.key === source.key) throw new TypeError(`Cannot ${what}: the destination is the disk's own image`);
    if (dest.capacityBytes < source.info.capacityBytes) {
      throw new RangeError(`Cannot ${what}: destination "${dest.path}" has ${dest.capacityBytes} bytes, the disk ${source.info.capacityBytes}`);
    }
    const input = await storage.openVolume(source.pool, source.name, { write: false }, call);
    opened.push(input);
    const output = await dest.open(call);
    opened.push(output);
    const fresh = dest.created;
    const data = (e: Extent) => e.data && !e.zero;
    // A fresh destination reads zeros (or its backing, for a shallow copy) everywhere: only data needs writing.
    const plan = shallow
      ? (e: Extent) => (e.depth > 0 ? "skip" : data(e) ? "copy" : "zero")
      : (e: Extent) => (data(e) ? "copy" : fresh ? "skip" : "zero");
    const dirtyPlan = (e: Extent) => (shallow && e.depth > 0 ? "skip" : data(e) ? "copy" : "zero");
    let ready = false;
    return jobs.startLocal<void>({
      type: "block-copy",
      target: { domain, disk: disk.target, pool: source.pool, volume: source.name },
      endBytes: source.info.capacityBytes,
      bandwidth: request.bandwidth,
      locks: [...request.locks, source.key, dest.key],
      async run(ctx) {
        try {
          await runMirror({
            ctx,
            source: input,
            target: output,
            plan,
            zeroChunks: fresh ? "skip" : "zero",
            dirtyPlan,
            granularityBytes: request.granularityBytes ?? DEFAULT_GRANULARITY_BYTES,
            ...(hooks.writes ? { writes: hooks.writes } : {}),
            readAhead: true,
            onFinalize: () => hooks.pivot(dest.pivotTo),
          }, () => (ready = true));
        } finally {
          await closeAll();
        }
        // After a failure or an abort, cleanup() still needs it (to remove what the job created).
        await dest.release();
      },
      async cleanup() {
        await closeAll();
        try {
          // Once in sync the destination is a consistent copy: it stays (libvirt's abort without --pivot).
          if (!ready) await dest.removeCreated();
        } finally {
          await dest.release();
        }
      },
    });
  } catch (error) {
    await closeAll();
    await dest.removeCreated().catch(() => {});
    await dest.release().catch(() => {});
    throw error;
  }
}
