/**
 * The mirror phase that block copy and active block commit share when core runs them: a bulk copy through
 * the copy loop while guest writes mark granules dirty, passes over the dirty granules until none is
 * left, then `ready`, where every guest write lands in the target too (write-blocking, as QEMU's
 * `copy-mode: "write-blocking"`), until `finalize()` or `abort()`. Progress counts re-copied bytes and
 * mirrored writes on both `cur` and `end`, as QEMU's mirror job does.
 *
 * @module
 */
import { copyExtents, type CopyPlan } from "../copy/copy_loop.ts";
import type { LocalJobContext } from "../jobs/types.ts";
import type { WriteGuard } from "../storage/copy_on_read.ts";
import { pausable } from "../storage/job_support.ts";
import type { Extent } from "../volume.ts";
import type { VolumeIO } from "../volume_io.ts";

/**
 * Guest writes to one disk, as a driver that runs the guest reports them. `exclusive()` (from
 * {@linkcode WriteGuard}) holds them back while a job's step runs: the pivot, so no write lands in
 * the source after the mirror stopped copying it.
 */
export interface GuestWriteSource extends WriteGuard {
  /**
   * Subscribes to writes that have landed in the disk's active image; a write completes for the guest
   * only once every listener's promise has settled.
   *
   * @param listener Called with the offset and the bytes written.
   * @returns Unsubscribes.
   */
  onWrite(listener: (offset: number, data: Uint8Array) => Promise<void>): () => void;
}

/** Default dirty-tracking unit: QEMU's mirror default for images with 64 KiB clusters. */
export const DEFAULT_GRANULARITY_BYTES = 65536;

/** What {@linkcode runMirror} copies and how. */
export interface MirrorOptions {
  /** The job's context. */
  readonly ctx: LocalJobContext;
  /** Where the bytes come from (the disk as the guest sees it). */
  readonly source: Pick<VolumeIO, "read" | "extents" | "capacityBytes">;
  /** Where they go. */
  readonly target: Pick<VolumeIO, "write" | "writeZeroes" | "flush">;
  /** Plan of the bulk copy. */
  readonly plan: (extent: Extent) => CopyPlan;
  /** All-zero chunks of the bulk copy. */
  readonly zeroChunks: "skip" | "zero" | "write";
  /** Plan of a dirty granule's extents (they may hold older bytes in the target). */
  readonly dirtyPlan: (extent: Extent) => CopyPlan;
  /** Dirty-tracking unit in bytes. */
  readonly granularityBytes: number;
  /** The guest's writes; absent for a shut-off domain. */
  readonly writes?: GuestWriteSource;
  /** Read the next chunk while one is written (source and target are different images). */
  readonly readAhead?: boolean;
  /** Chunk size of the bulk copy (default: the copy loop's); the dirty passes copy granules. */
  readonly chunkBytes?: number;
  /** Runs after `finalize()`, while writes are still mirrored: the pivot. */
  readonly onFinalize: () => Promise<void>;
}

/**
 * Dirty granules of a disk.
 *
 * @example
 * ```ts
 * import { DirtyGranules } from "./mirror.ts";
 * const dirty = new DirtyGranules(4096, 65536);
 * dirty.add(100, 10);
 * dirty.add(4095, 2);
 * dirty.add(20000, 1);
 * const ranges = dirty.take();
 * if (JSON.stringify(ranges) !== '[{"offset":0,"length":8192},{"offset":16384,"length":4096}]' || dirty.size !== 0) {
 *   throw new Error("unexpected");
 * }
 * ```
 */
export class DirtyGranules {
  readonly #granularity: number;
  readonly #capacity: number;
  #granules = new Set<number>();

  /**
   * @param granularityBytes The unit.
   * @param capacityBytes The disk's size (ranges are clipped to it).
   */
  constructor(granularityBytes: number, capacityBytes: number) {
    this.#granularity = granularityBytes;
    this.#capacity = capacityBytes;
  }

  /** Dirty granules now. */
  get size(): number {
    return this.#granules.size;
  }

  /**
   * Marks a written range.
   *
   * @returns Bytes newly marked.
   */
  add(offset: number, length: number): number {
    if (length <= 0) return 0;
    let added = 0;
    for (let g = Math.floor(offset / this.#granularity); g * this.#granularity < offset + length; g++) {
      if (this.#granules.has(g)) continue;
      this.#granules.add(g);
      added += Math.min(this.#granularity, this.#capacity - g * this.#granularity);
    }
    return added;
  }

  /** Takes every dirty granule, merged into ranges in offset order. */
  take(): Array<{ offset: number; length: number }> {
    const granules = [...this.#granules].sort((a, b) => a - b);
    this.#granules = new Set();
    const ranges: Array<{ offset: number; length: number }> = [];
    for (const g of granules) {
      const offset = g * this.#granularity;
      const length = Math.min(this.#granularity, this.#capacity - offset);
      const last = ranges[ranges.length - 1];
      if (last && last.offset + last.length === offset) last.length += length;
      else ranges.push({ offset, length });
    }
    return ranges;
  }
}

/**
 * Runs the mirror: bulk copy, dirty passes, `ready`, and on `finalize()` the pivot. Rejects with the
 * abort reason when the job is aborted (the target is flushed first, so after an abort in `ready` it is
 * a consistent copy as of that moment).
 *
 * @param options What to copy, the job's context, the guest's writes and the pivot.
 * @returns Whether the job reached `ready` is told through `onReady`; resolves after the pivot.
 * @example Reached through `dom.blockCopy()` on the `test` driver
 * ```ts
 * import { connect, createVirtualClock } from "virtkit";
 * const clock = createVirtualClock();
 * await using conn = await connect("test:///default", { clock });
 * const dom = await conn.domains.get("test");
 * const job = await dom.blockCopy("vda", { destination: { pool: "default-pool", name: "copy.qcow2" } });
 * while ((await job.info()).state !== "ready") await clock.advance(100);
 * await conn.testing!.guestWrite("test", "vda", 0, new Uint8Array([1, 2, 3]));
 * await job.finalize();
 * await job.wait();
 * const [vda] = await dom.disks();
 * if (vda!.volume?.name !== "copy.qcow2") throw new Error("unexpected");
 * ```
 */
export async function runMirror(options: MirrorOptions, onReady: () => void = () => {}): Promise<void> {
  const { ctx, source, target } = options;
  const length = source.capacityBytes;
  const dirty = new DirtyGranules(options.granularityBytes, length);
  let end = length;
  let cur = 0;
  let synced = false;
  const report = () => ctx.progress(Math.min(cur, end), end);
  let unsubscribe = options.writes?.onWrite(async (offset, data) => {
    if (!synced) {
      end += dirty.add(offset, data.length);
      return;
    }
    await target.write(offset, data);
    cur += data.length;
    end += data.length;
    report();
  });
  try {
    await copyExtents({
      source,
      target: pausable(target, ctx.checkpoint),
      length,
      plan: options.plan,
      zeroChunks: options.zeroChunks,
      readAhead: options.readAhead ?? false,
      ...(options.chunkBytes !== undefined ? { chunkBytes: options.chunkBytes } : {}),
      limiter: ctx.limiter,
      signal: ctx.signal,
      checkpoint: ctx.checkpoint,
      onProgress: (covered) => {
        cur = covered;
        report();
      },
    });
    cur = length;
    // Passes over what the guest wrote meanwhile, until a pass finds nothing new.
    while (dirty.size > 0) {
      for (const range of dirty.take()) {
        const before = cur;
        await copyExtents({
          source,
          target: pausable(target, ctx.checkpoint),
          offset: range.offset,
          length: range.length,
          plan: options.dirtyPlan,
          zeroChunks: "zero",
          limiter: ctx.limiter,
          signal: ctx.signal,
          checkpoint: ctx.checkpoint,
          onProgress: (covered) => {
            cur = before + covered;
            report();
          },
        });
        cur = before + range.length;
      }
    }
    // No await between the last empty check and this: from here on every write is mirrored at once.
    synced = true;
    report();
    await target.flush({ signal: ctx.signal });
    onReady();
    try {
      await ctx.ready();
    } catch (error) {
      await target.flush().catch(() => {});
      throw error;
    }
    // The pivot holds guest writes back: each lands wholly before it (in the source and, mirrored, the
    // target) or after it, in the new image; none lands in the source once nothing mirrors it.
    const pivot = async () => {
      await target.flush();
      await options.onFinalize();
      unsubscribe?.();
      unsubscribe = undefined;
    };
    await (options.writes ? options.writes.exclusive(pivot) : pivot());
  } finally {
    unsubscribe?.();
  }
}
