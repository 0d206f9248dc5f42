/**
 * The volume jobs that run through the copy loop: clone, allocate, pull (offline flatten) and wipe. Each
 * is a local job on the connection's job manager that locks the volume it writes, honours pause, resume,
 * `setSpeed` and abort, and leaves its target consistent when it stops early.
 *
 * @module
 */
import { copyExtents } from "../copy/copy_loop.ts";
import type { StorageAccess } from "../storage_backend.ts";
import { NotFoundError, UnsupportedError } from "../errors.ts";
import type { Job, JobTarget, JobType } from "../job.ts";
import type { LocalJobContext } from "../jobs/types.ts";
import type { SignalOptions } from "../options.ts";
import { type BackingRef, type Extent, MAX_BACKING_CHAIN_DEPTH } from "../volume.ts";
import type { VolumeIO } from "../volume_io.ts";
import { startCloneJob } from "./clone_job.ts";
import { copyOnReadTarget, type WriteGuard } from "./copy_on_read.ts";
import { guard, pausable, prepare, type PreparedVolume, signalOnly, type VolumeJobOptions } from "./job_support.ts";
import { resolveRange } from "./volume_checks.ts";

export { startCloneJob };
export type { VolumeJobEnv, VolumeJobOptions } from "./job_support.ts";

/** Options of {@linkcode startAllocateJob}. */
export interface AllocateJobOptions extends VolumeJobOptions {
  /** Start of the range (default 0). */
  offset?: number;
  /** Length of the range (default: to the end). */
  length?: number;
}

/** Options of {@linkcode startPullJob}. */
export interface PullJobOptions extends VolumeJobOptions {
  /** Keep this layer of the backing chain (its path or key) and everything below it; pull only what lies above. */
  base?: string;
  /** Job type (default `"volume-pull"`; the `test` driver's `blockPull` says `"block-pull"`). */
  type?: JobType;
  /** Job target (default `{ pool, volume }`). */
  target?: JobTarget;
  /** Locks taken besides the volume's key (a disk lock such as `"disk:web1/vda"`). */
  locks?: string[];
  /**
   * A running guest's writes to the volume: the pull then writes each chunk only where the volume still
   * reads from its backing, with no guest write in between, and changes the backing likewise.
   */
  guestWrites?: WriteGuard;
}

/**
 * Fills the holes of a range: data the backing chain serves is copied in, everything else becomes
 * allocated zeros; what the volume holds already is left alone.
 *
 * @param options The volume, range and cap.
 * @returns The running job.
 * @throws {NotFoundError} For an unknown pool or volume. `StateError` for an inactive pool.
 * @throws {ConflictError} When another job uses the volume.
 * @throws {RangeError} For a bad range or bandwidth.
 * @internal Reached through `volume.allocate()`.
 * @example How a user reaches it: `volume.allocate()`
 * ```ts
 * import { connect } from "virtkit";
 * await using conn = await connect("test:///default");
 * const pool = await conn.pools.get("default-pool");
 * const volume = await pool.volumes.create({ name: "thick.qcow2", capacityBytes: 1 << 20, format: "qcow2" });
 * await (await volume.allocate({ bandwidth: 64 << 20 })).wait();
 * if ((await volume.info()).allocationBytes < 1 << 20) throw new Error("unexpected");
 * ```
 */
export async function startAllocateJob(options: AllocateJobOptions): Promise<Job<void>> {
  const prepared = await prepare(options, { action: "allocate" });
  const { offset, length } = await guard(prepared.io, () => resolveRange(options, prepared.io.capacityBytes, prepared.label));
  return startCopyJob(options, prepared, "volume-allocate", { pool: options.pool, volume: options.volume }, offset, length, {
    plan: (e) => (e.depth === 0 ? (e.data ? "skip" : "allocate-zero") : e.data && !e.zero ? "copy" : "allocate-zero"),
    zeroChunks: "write",
  });
}

/**
 * Overwrites the whole volume with zeros: its own data becomes allocated zeros, and regions its backing
 * chain serves are marked zero so they no longer fall through.
 *
 * @param options The volume and cap.
 * @returns The running job.
 * @throws {NotFoundError} For an unknown pool or volume. `StateError` for an inactive pool.
 * @throws {ConflictError} When another job uses the volume.
 * @internal Reached through `volume.wipe()`.
 * @example How a user reaches it: `volume.wipe()` (the thin disk's own and its backing's data read as zeros)
 * ```ts
 * import { connect } from "virtkit";
 * await using conn = await connect("test:///default");
 * const volume = await (await conn.pools.get("default-pool")).volumes.get("test.qcow2");
 * await (await volume.wipe()).wait();
 * const reader = (await volume.download({ offset: 0, length: 4096 })).readable.getReader();
 * const { value } = await reader.read();
 * if (!value || value.some((byte) => byte !== 0)) throw new Error("unexpected");
 * ```
 */
export async function startWipeJob(options: VolumeJobOptions): Promise<Job<void>> {
  const prepared = await prepare(options, { action: "wipe" });
  return startCopyJob(options, prepared, "volume-wipe", { pool: options.pool, volume: options.volume }, 0, prepared.io.capacityBytes, {
    plan: (e) => (e.depth > 0 ? "zero" : e.data && !e.zero ? "allocate-zero" : "skip"),
    zeroChunks: "write",
  });
}

/**
 * The offline flatten: copies what the backing chain serves into the volume, then drops the backing (or,
 * with `base`, re-points it at that layer). An aborted or failed pull keeps the backing, so the volume
 * reads the same throughout. A volume without backing completes at once.
 *
 * @param options The volume, cap, optional base, and the job's type, target and extra locks.
 * @returns The running job.
 * @throws {NotFoundError} For an unknown pool or volume, or a `base` that is not in the chain.
 * @throws {UnsupportedError} When the volume has a backing its backend cannot change.
 * @throws {ConflictError} When another job uses the volume or one of `locks`.
 * @example How a user reaches it: `volume.pull()` (and `dom.blockPull()` on a shut-off domain)
 * ```ts
 * import { connect } from "virtkit";
 * await using conn = await connect("test:///default");
 * await (await conn.domains.get("test")).destroy(); // the domain's disk is this volume
 * const volume = await (await conn.pools.get("default-pool")).volumes.get("test.qcow2");
 * const job = await volume.pull();
 * await job.wait();
 * if (job.type !== "volume-pull" || (await volume.info()).backing !== undefined) throw new Error("unexpected");
 * ```
 */
export async function startPullJob(options: PullJobOptions): Promise<Job<void>> {
  const extraLocks = options.locks ?? [];
  if (!Array.isArray(extraLocks) || extraLocks.some((lock) => typeof lock !== "string" || lock === "")) {
    throw new TypeError("Invalid pull locks: expected an array of non-empty strings");
  }
  if (options.base !== undefined && (typeof options.base !== "string" || options.base.length === 0)) {
    throw new TypeError("Invalid pull base: expected the path or key of a backing layer");
  }
  const prepared = await prepare(options, { action: "pull", locks: extraLocks });
  const { io, label } = prepared;
  const { baseDepth, baseRef, backing } = await guard(io, async () => {
    const info = await (await options.access.backend(options.pool)).volumeInfo(options.volume, signalOnly(options));
    const chain = await backingChain(options.access, info.backing, options);
    if (options.base === undefined) return { baseDepth: Infinity, baseRef: undefined, backing: info.backing };
    const index = chain.findIndex((layer) => [layer.ref.path, layer.key, layer.path].includes(options.base));
    if (index < 0) throw new NotFoundError("volume", options.base, { detail: `it is not in the backing chain of ${label}` });
    return { baseDepth: index + 1, baseRef: chain[index]!.ref, backing: info.backing };
  });
  if (backing !== undefined && typeof io.setBacking !== "function") {
    await io.close();
    throw new UnsupportedError("setBacking", { detail: `${label} has a backing image its backend cannot change` });
  }
  const target = options.target ?? { pool: options.pool, volume: options.volume };
  const guestWrites = options.guestWrites;
  const exclusive = <T>(work: () => Promise<T>) => (guestWrites ? guestWrites.exclusive(work) : work());
  // Without a base nothing stays below, so zeros need no marks: once the backing is gone they read as zeros.
  const keepBase = baseDepth !== Infinity;
  return startCopyJob(options, prepared, options.type ?? "volume-pull", target, 0, io.capacityBytes, {
    plan: (e) => (e.depth === 0 || e.depth >= baseDepth ? "skip" : e.data && !e.zero ? "copy" : keepBase ? "zero" : "skip"),
    zeroChunks: keepBase ? "zero" : "skip",
    // Dropped or re-pointed only once every byte above the base is in: a stopped pull changes nothing visible.
    finish: backing === undefined ? undefined : (signal) => exclusive(() => io.setBacking!(baseRef, { signal })),
    ...(guestWrites ? { target: copyOnReadTarget(io, guestWrites) } : {}),
  });
}

/** A layer of a backing chain: the reference recorded above it, and its volume when a pool holds it. */
interface ChainLayer {
  ref: BackingRef;
  key?: string;
  path?: string;
}

/** Walks a backing chain through the pools; a layer no active pool holds ends the walk. */
async function backingChain(access: StorageAccess, first: BackingRef | undefined, options: SignalOptions): Promise<ChainLayer[]> {
  const chain: ChainLayer[] = [];
  for (let ref = first; ref !== undefined && chain.length < MAX_BACKING_CHAIN_DEPTH; ) {
    options.signal?.throwIfAborted();
    const found = (await access.findVolume({ path: ref.path })) ?? (await access.findVolume({ key: ref.path }));
    chain.push({ ref, key: found?.volume.key, path: found?.volume.path });
    if (!found) break;
    ref = (await (await access.backend(found.pool)).volumeInfo(found.volume.name)).backing;
  }
  return chain;
}

/** Starts a job that runs the copy loop over one volume onto itself, then flushes (and `finish`es). */
function startCopyJob(
  options: VolumeJobOptions,
  prepared: PreparedVolume,
  type: JobType,
  target: JobTarget,
  offset: number,
  length: number,
  loop: {
    plan(extent: Extent): "copy" | "skip" | "zero" | "allocate-zero";
    zeroChunks: "skip" | "zero" | "write";
    finish?: (signal: AbortSignal) => Promise<void>;
    /** Where the chunks go (default: the volume itself). */
    target?: Pick<VolumeIO, "write" | "writeZeroes">;
  },
): Promise<Job<void>> {
  const { io } = prepared;
  return guard(io, () => {
    // The one busy check, in the same step as the start: nothing can start in between.
    prepared.assertIdle();
    return options.jobs.startLocal<void>({
      type,
      target,
      endBytes: length,
      bandwidth: prepared.bandwidth,
      locks: prepared.locks,
      async run(ctx: LocalJobContext) {
        try {
          await copyExtents({
            source: io,
            target: pausable(loop.target ?? io, ctx.checkpoint),
            offset,
            length,
            targetOffset: offset,
            plan: loop.plan,
            zeroChunks: loop.zeroChunks,
            limiter: ctx.limiter,
            signal: ctx.signal,
            checkpoint: ctx.checkpoint,
            onProgress: (cur, copiedBytes) => ctx.progress(cur, undefined, copiedBytes),
          });
          await io.flush({ signal: ctx.signal });
          await ctx.checkpoint();
          await loop.finish?.(ctx.signal);
          await io.flush({ signal: ctx.signal });
        } finally {
          await io.close();
        }
      },
    });
  });
}

