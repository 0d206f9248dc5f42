/**
 * A block commit on the pool volumes of a disk's chain, through the copy loop (what `qemu-img commit`
 * does): the offline path of `dom.blockCommit()` for shut-off domains on every driver, and the `test`
 * driver's live commit. An intermediate commit re-links the image above `top` to `base` and completes;
 * an active commit runs the mirror phase and pivots the disk onto `base` on `finalize()`.
 *
 * @module
 */
import type { LiveBlockCommitRequest } from "../driver.ts";
import { UnsupportedError } from "../errors.ts";
import type { Job } from "../job.ts";
import { requireOp } from "../storage/volume_checks.ts";
import type { Extent } from "../volume.ts";
import type { VolumeIO } from "../volume_io.ts";
import { backingVolumes, type DiskVolume, requireDiskVolume } from "./disk_volume.ts";
import { DEFAULT_GRANULARITY_BYTES, runMirror } from "./mirror.ts";
import type { MirrorHooks } from "./volume_block_copy.ts";
import type { DiskJobEnv } from "./volume_block_pull.ts";
import { copyExtents } from "../copy/copy_loop.ts";
import { pausable } from "../storage/job_support.ts";
import { MiB } from "../units.ts";

/**
 * Chunk size of a commit's copy: 4 MiB instead of the copy loop's 1 MiB, as a commit copies whole
 * images (read through the top's chain, written into the base's clusters). A quarter of the reads,
 * writes and stream round trips: a 256 MiB offline commit of a qcow2 top into a qcow2 base spent
 * visibly less CPU (bench/qemu_block_jobs.bench.ts, part 3). Pause, abort and progress still come
 * between chunks, a few milliseconds apart.
 */
const COMMIT_CHUNK_BYTES = MiB(4);

/**
 * Starts committing `chain[topIndex]` (and everything between it and the base) into `chain[baseIndex]`.
 *
 * @param env The connection's pools, jobs and bus.
 * @param request The disk, its chain, the resolved top and base, cap, locks and `deleteCommitted`.
 * @param hooks The guest's writes and the pivot (used by an active commit only).
 * @returns The running job (type `"block-commit"`).
 * @throws {UnsupportedError} When an image involved is not a volume of an active pool, or the image
 *   above `top` cannot change its backing.
 * @example Reached through `dom.blockCommit()` on a shut-off domain: the active image into its base
 * ```ts
 * import { connect } from "virtkit";
 * await using conn = await connect("test:///default");
 * const dom = await conn.domains.get("test");
 * await dom.destroy();
 * const job = await dom.blockCommit("vda");
 * await new Promise<void>((resolve) => conn.events.on("job:ready", (e) => e.job.id === job.id && resolve()));
 * await job.finalize();
 * await job.wait();
 * const [vda] = await dom.disks();
 * if (vda!.volume?.name !== "template.img" || job.type !== "block-commit") throw new Error("unexpected");
 * ```
 */
export async function startVolumeBlockCommit(env: DiskJobEnv, request: LiveBlockCommitRequest, hooks: MirrorHooks): Promise<Job<void>> {
  const { storage, jobs, bus } = env;
  const { domain, disk, topIndex, baseIndex } = request;
  const call = request.signal ? { signal: request.signal } : undefined;
  const what = `commit disk "${disk.target}" of domain "${domain}"`;
  const active = await requireDiskVolume(storage, domain, disk, "blockCommit", request);
  const volumes: Array<DiskVolume | undefined> = [active, ...(await backingVolumes(storage, active, request))];
  const involved = volumes.slice(Math.max(0, topIndex - 1), baseIndex + 1);
  const missing = request.chain.slice(Math.max(0, topIndex - 1), baseIndex + 1).find((_, i) => involved[i] === undefined);
  if (missing || involved.length !== baseIndex + 1 - Math.max(0, topIndex - 1)) {
    throw new UnsupportedError("blockCommit", {
      detail: `cannot ${what}: image "${missing?.path ?? "?"}" of its chain is not a volume of an active pool`,
    });
  }
  const top = volumes[topIndex]!;
  const base = volumes[baseIndex]!;
  const above = topIndex > 0 ? volumes[topIndex - 1]! : undefined;
  const committed = volumes.slice(topIndex, baseIndex) as DiskVolume[];
  const opened: VolumeIO[] = [];
  const closeAll = async () => {
    for (const io of opened.splice(0)) await io.close().catch(() => {});
  };
  try {
    const input = await storage.openVolume(top.pool, top.name, { write: false }, call);
    opened.push(input);
    const output = await storage.openVolume(base.pool, base.name, { write: true }, call);
    opened.push(output);
    let relink: VolumeIO | undefined;
    if (above) {
      relink = await storage.openVolume(above.pool, above.name, { write: true }, call);
      opened.push(relink);
      if (typeof relink.setBacking !== "function") {
        throw new UnsupportedError("blockCommit", { detail: `cannot ${what}: "${above.path}" cannot change its backing image` });
      }
    }
    if (output.capacityBytes < input.capacityBytes) {
      throw new RangeError(`Cannot ${what}: base "${base.path}" has ${output.capacityBytes} bytes, the top ${input.capacityBytes}`);
    }
    // Depth is counted from the top image: what lies above the base moves down into it.
    const baseDepth = baseIndex - topIndex;
    const plan = (e: Extent) => (e.depth >= baseDepth ? "skip" : e.data && !e.zero ? "copy" : e.zero ? "zero" : "skip");
    const deleteCommitted = async () => {
      if (!request.deleteCommitted) return;
      for (const volume of committed) {
        await requireOp(await storage.backend(volume.pool), "deleteVolume", undefined, volume.pool)(volume.name);
        bus?.emit("volume:deleted", { pool: volume.pool, volume: volume.name });
      }
    };
    return jobs.startLocal<void>({
      type: "block-commit",
      target: { domain, disk: disk.target, pool: top.pool, volume: top.name },
      endBytes: input.capacityBytes,
      bandwidth: request.bandwidth,
      locks: [...request.locks, ...involved.map((v) => v!.key)],
      async run(ctx) {
        try {
          if (topIndex === 0) {
            await runMirror({
              ctx,
              source: input,
              target: output,
              plan,
              zeroChunks: "zero",
              dirtyPlan: (e) => (e.data && !e.zero ? "copy" : "zero"),
              granularityBytes: DEFAULT_GRANULARITY_BYTES,
              ...(hooks.writes ? { writes: hooks.writes } : {}),
              readAhead: true,
              chunkBytes: COMMIT_CHUNK_BYTES,
              onFinalize: () => hooks.pivot(disk.path !== undefined ? { path: base.path, format: base.info.format } : { volume: { pool: base.pool, name: base.name }, format: base.info.format }),
            });
          } else {
            await copyExtents({
              source: input,
              target: pausable(output, ctx.checkpoint),
              length: input.capacityBytes,
              plan,
              zeroChunks: "zero",
              readAhead: true,
              chunkBytes: COMMIT_CHUNK_BYTES,
              limiter: ctx.limiter,
              signal: ctx.signal,
              checkpoint: ctx.checkpoint,
              onProgress: (cur) => ctx.progress(cur),
            });
            await output.flush({ signal: ctx.signal });
            await ctx.checkpoint();
            // Only once the base holds everything: a stopped commit leaves the chain reading as before.
            await relink!.setBacking!({ path: base.path, format: base.info.format }, { signal: ctx.signal });
            await relink!.flush({ signal: ctx.signal });
          }
        } finally {
          await closeAll();
        }
        await deleteCommitted();
      },
      async cleanup() {
        await closeAll();
      },
    });
  } catch (error) {
    await closeAll();
    throw error;
  }
}
