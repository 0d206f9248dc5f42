/**
 * The one copy loop behind block pull, clone, allocate, wipe, upload and download.
 *
 * @module
 */
import type { VolumeIO } from "../volume_io.ts";
import type { Extent } from "../volume.ts";
import type { RateLimiter } from "./rate_limiter.ts";
import { CopyReader } from "./copy_reader.ts";
import { type CopyPlan, PlanWalk } from "./plan_walk.ts";
import { VirtError } from "../errors.ts";
import { YieldPacer } from "../event_loop.ts";
import { assertBytes, MiB } from "../units.ts";
import { isAllZero } from "./zero_bytes.ts";

/**
 * The loop gives the event loop a turn after this much work or this much real time since the last
 * turn: between in-memory volumes every await resolves at once, and a long copy would otherwise hold
 * the process (a daemon's other clients, every timer) until it ends. One `setImmediate` per 32 MiB
 * costs nothing measurable (bench/copy_loop.bench.ts); 10 ms bounds the wait behind many small extents.
 */
const YIELD_BYTES = MiB(32);
const YIELD_MS = 10;

export type { CopyPlan } from "./plan_walk.ts";

/** Options of {@linkcode copyExtents}. */
export interface CopyOptions {
  /** Where bytes come from (only `read` and `extents` are used). */
  source: Pick<VolumeIO, "read" | "extents">;
  /** Where bytes go (only `write`, `writeZeroes` and, with `offload`, `copyFrom` are used). */
  target: Pick<VolumeIO, "write" | "writeZeroes" | "copyFrom">;
  /** Start of the range in the source (default 0). */
  offset?: number;
  /** Length of the range. */
  length: number;
  /** Where the range lands in the target (default: `offset`). */
  targetOffset?: number;
  /**
   * Decides per source extent: `"copy"` reads and writes it, `"skip"` leaves the target alone, `"zero"`
   * makes the target read zeros there (no allocation), `"allocate-zero"` writes real zeros. Skip and
   * zero cost nothing against the cap; copy and allocate-zero take tokens.
   *
   * @param extent The source extent (not clipped to the range).
   * @returns The plan for it.
   */
  plan(extent: Extent): CopyPlan;
  /**
   * An all-zero chunk read in a `"copy"` extent: `"skip"` it (a fresh sparse target), `"zero"` it with
   * `writeZeroes` (no allocation; the default, right for any target), or `"write"` it as data.
   */
  zeroChunks?: "skip" | "zero" | "write";
  /** The bandwidth cap; tokens are taken before each chunk is read. */
  limiter?: RateLimiter;
  /** Aborting rejects with the signal's reason, between whole chunks. */
  signal?: AbortSignal;
  /** Awaited between chunks (where a job pauses). */
  checkpoint?: () => Promise<void>;
  /**
   * Called with the bytes of the range covered so far; monotonic, ends at `length`.
   *
   * @param cur Bytes covered.
   * @param copiedBytes Bytes of `cur` that took tokens: read from the source, or zeros really written.
   */
  onProgress?(cur: number, copiedBytes: number): void;
  /** Chunk size (default 1 MiB). */
  chunkBytes?: number;
  /**
   * Reads the next chunk while the previous one is being written (two buffers instead of one): the
   * disk reads while the target is written, which made a clone from a cold source about 20 % faster
   * here (512 MiB: 821 -> 634 ms); from the page cache it changes little. Only for a source and a target
   * that are different volumes, because a read then runs alongside a write (default `false`).
   */
  readAhead?: boolean;
  /**
   * Lets the target copy the `"copy"` extents itself (`target.copyFrom`, e.g. `copy_file_range` between
   * two raw files), chunk by chunk, each chunk paid against the cap first, with progress, checkpoints
   * and abort between chunks as for a read and a write. The first chunk it declines, and every chunk
   * after it, is read and written instead. Offloaded bytes are copied as they are, so `zeroChunks` does
   * not apply to them: the target is allocated where the source is (default `false`).
   */
  offload?: boolean;
}

/** What {@linkcode copyExtents} did, in bytes. */
export interface CopyResult {
  /** Bytes of the range covered: `length` on success. */
  bytesCovered: number;
  /** Bytes read from the source. */
  bytesRead: number;
  /** Bytes written to the target as data. */
  bytesWritten: number;
  /** Bytes made zero in the target (`writeZeroes`, with or without allocation). */
  bytesZeroed: number;
  /** Bytes left alone in the target. */
  bytesSkipped: number;
}

/**
 * Copies a range extent by extent. The bytes of the extents planned `"copy"` come through one byte
 * stream for the whole copy, read with a BYOB reader into reusable buffers, and each write is awaited
 * before the next read is asked for (or, with `readAhead`, before the one after it), so both the cap and
 * a slow target hold the source back. Chunks are written whole; an abort leaves the target consistent.
 *
 * @param options Source, target, range, plan, cap, signal and callbacks.
 * @returns Byte counts of what was done.
 * @throws {RangeError} When the range or chunk size is not a byte count.
 * @example Copy a 3-byte data extent and skip a hole
 * ```ts
 * import { copyExtents } from "./copy_loop.ts";
 * const written: number[] = [];
 * const source = {
 *   async read(_offset: number, target: Uint8Array) { target.fill(1); return target.byteLength; },
 *   async *extents() {
 *     yield { offset: 0, length: 3, data: true, zero: false, depth: 0 };
 *     yield { offset: 3, length: 5, data: false, zero: true, depth: 0 };
 *   },
 * };
 * const target = {
 *   async write(offset: number, data: Uint8Array) { written.push(offset, data.byteLength); },
 *   async writeZeroes() {},
 * };
 * const result = await copyExtents({ source, target, length: 8, plan: (e) => (e.data ? "copy" : "skip") });
 * if (written.join() !== "0,3" || result.bytesSkipped !== 5) throw new Error("unexpected");
 * ```
 */
export async function copyExtents(options: CopyOptions): Promise<CopyResult> {
  if (options === null || typeof options !== "object") throw new TypeError("Cannot copy: expected options");
  const { source, target, plan, limiter, signal, checkpoint, onProgress } = options;
  if (typeof source?.read !== "function" || typeof source.extents !== "function") {
    throw new TypeError("Cannot copy: source must have read() and extents()");
  }
  if (typeof target?.write !== "function" || typeof target.writeZeroes !== "function") {
    throw new TypeError("Cannot copy: target must have write() and writeZeroes()");
  }
  if (typeof plan !== "function") throw new TypeError("Cannot copy: plan must be a function");
  const zeroChunks = options.zeroChunks ?? "zero";
  if (zeroChunks !== "skip" && zeroChunks !== "zero" && zeroChunks !== "write") {
    throw new TypeError(`Cannot copy: zeroChunks must be "skip", "zero" or "write", not ${String(zeroChunks)}`);
  }
  const offset = assertBytes(options.offset ?? 0, "offset");
  const length = assertBytes(options.length, "length");
  const shift = assertBytes(options.targetOffset ?? offset, "targetOffset") - offset;
  const chunkBytes = assertBytes(options.chunkBytes ?? MiB(1), "chunkBytes");
  if (chunkBytes === 0) throw new RangeError("Invalid chunkBytes: 0 is not a positive number of bytes");
  signal?.throwIfAborted();

  const end = offset + length;
  const result: CopyResult = { bytesCovered: 0, bytesRead: 0, bytesWritten: 0, bytesZeroed: 0, bytesSkipped: 0 };
  // Zeros really written count as transferred (they took tokens); zeroed holes do not.
  let allocatedZeroBytes = 0;
  const io = { signal };
  const allocateIo = { signal, allocate: true };
  const walk = new PlanWalk(source.extents(offset, length, io)[Symbol.asyncIterator](), plan, offset, end);
  // Made on the first chunk that is read: an offloaded copy never starts the byte stream.
  let data: CopyReader | undefined;
  const reader = () => (data ??= new CopyReader(source, walk, { limiter, signal, chunkBytes, readAhead: options.readAhead === true }));
  let offload = options.offload === true && typeof target.copyFrom === "function";
  const pacer = new YieldPacer(YIELD_BYTES, YIELD_MS);
  try {
    for (;;) {
      if (pacer.due(0)) await pacer.yield();
      if (checkpoint) await checkpoint();
      signal?.throwIfAborted();
      const step = await walk.next();
      if (step === undefined) break;
      const { action, pos, stop } = step;
      if (action === "skip") {
        result.bytesSkipped += stop - pos;
      } else if (action === "zero") {
        await target.writeZeroes(pos + shift, stop - pos, io);
        result.bytesZeroed += stop - pos;
      } else if (action === "allocate-zero") {
        for (let at = pos; at < stop; ) {
          const n = Math.min(chunkBytes, stop - at);
          if (limiter) await limiter.take(n, signal);
          await target.writeZeroes(at + shift, n, allocateIo);
          result.bytesZeroed += n;
          allocatedZeroBytes += n;
          at += n;
          result.bytesCovered = at - offset;
          if (onProgress) onProgress(result.bytesCovered, copiedBytes(result, allocatedZeroBytes));
          if (pacer.due(n) && at < stop) await pacer.yield();
          if (checkpoint && at < stop) await checkpoint();
          signal?.throwIfAborted();
        }
      } else {
        let at = pos;
        if (offload) {
          // The stream has not started, so this step waits in its queue: take it out.
          await walk.nextCopy();
          for (; at < stop; ) {
            const n = Math.min(chunkBytes, stop - at);
            if (limiter) await limiter.take(n, signal);
            signal?.throwIfAborted();
            const got = await target.copyFrom!(source, at, at + shift, n, io);
            if (got === undefined) break;
            if (!(got > 0 && got <= n)) throw new VirtError("internal", `Target copyFrom returned ${got} bytes at ${at} for ${n}`);
            // A short copy (the kernel may stop early) is simply followed by another chunk.
            result.bytesRead += got;
            result.bytesWritten += got;
            at += got;
            result.bytesCovered = at - offset;
            if (onProgress) onProgress(result.bytesCovered, copiedBytes(result, allocatedZeroBytes));
            if (pacer.due(got) && at < stop) await pacer.yield();
            if (checkpoint && at < stop) await checkpoint();
          }
          if (at < stop) {
            // Declined: the rest of this step, and every later one, is read and written.
            offload = false;
            walk.unshiftCopy({ action: "copy", pos: at, stop });
          }
        }
        for (; at < stop; ) {
          const value = await reader().read();
          if (value === undefined) throw new VirtError("internal", `Source stream ended at byte ${at} before ${stop}`);
          const n = value.byteLength;
          result.bytesRead += n;
          if (zeroChunks !== "write" && isAllZero(value)) {
            if (zeroChunks === "zero") {
              await target.writeZeroes(at + shift, n, io);
              result.bytesZeroed += n;
            } else result.bytesSkipped += n;
          } else {
            await target.write(at + shift, value, io);
            result.bytesWritten += n;
          }
          data!.release(value);
          at += n;
          result.bytesCovered += n;
          if (onProgress) onProgress(result.bytesCovered, copiedBytes(result, allocatedZeroBytes));
          if (pacer.due(n) && at < stop) await pacer.yield();
          if (checkpoint && at < stop) await checkpoint();
        }
      }
      if (result.bytesCovered !== stop - offset) {
        result.bytesCovered = stop - offset;
        if (onProgress) onProgress(result.bytesCovered, copiedBytes(result, allocatedZeroBytes));
      }
    }
  } finally {
    await data?.close();
    await walk.close();
  }
  return result;
}

/** The bytes that cost I/O against the cap so far (`JobInfo.copiedBytes`). */
function copiedBytes(result: CopyResult, allocatedZeroBytes: number): number {
  return result.bytesRead + allocatedZeroBytes;
}
