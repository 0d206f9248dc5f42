/**
 * The one copy loop behind block pull, clone, allocate, wipe, upload and download.
 *
 * @module
 */
import type { VolumeIO } from "../volume_io.ts";
import type { Extent } from "../volume.ts";
import type { RateLimiter } from "./rate_limiter.ts";
import { createRangeByteStream } from "./range_stream.ts";
import { VirtError } from "../errors.ts";
import { assertBytes, MiB } from "../units.ts";

/** What to do with one source extent. */
export type CopyPlan = "copy" | "skip" | "zero" | "allocate-zero";

/** Options of {@linkcode copyExtents}. */
export interface CopyOptions {
  /** Where bytes come from (only `read` and `extents` are used). */
  source: Pick<VolumeIO, "read" | "extents">;
  /** Where bytes go (only `write` and `writeZeroes` are used). */
  target: Pick<VolumeIO, "write" | "writeZeroes">;
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
   */
  onProgress?(cur: number): void;
  /** Chunk size (default 1 MiB). */
  chunkBytes?: number;
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
 * Copies a range extent by extent. Copied extents are read through a byte stream with a BYOB reader
 * into one reusable buffer, and each write is awaited before the next read, so both the cap and a slow
 * target hold the source back. Chunks are written whole; an abort leaves the target consistent.
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
  const io = { signal };
  const allocateIo = { signal, allocate: true };
  const state = { buffer: new ArrayBuffer(chunkBytes) };
  const extents = source.extents(offset, length, io)[Symbol.asyncIterator]();
  let pos = offset;
  try {
    while (pos < end) {
      if (checkpoint) await checkpoint();
      signal?.throwIfAborted();
      const { value: extent, done } = await extents.next();
      if (done || extent.offset > pos) {
        throw new VirtError("internal", `Source extents do not cover the range at byte ${pos} (asked ${offset}+${length})`);
      }
      const stop = Math.min(extent.offset + extent.length, end);
      if (stop <= pos) continue;
      const action = plan(extent);
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
          at += n;
          result.bytesCovered = at - offset;
          if (onProgress) onProgress(result.bytesCovered);
          if (checkpoint && at < stop) await checkpoint();
          signal?.throwIfAborted();
        }
      } else if (action === "copy") {
        await copyRange(source, target, extent, pos, stop, options, result, state, shift, zeroChunks);
      } else {
        throw new TypeError(`Cannot copy: plan() returned ${String(action)}, not "copy", "skip", "zero" or "allocate-zero"`);
      }
      pos = stop;
      if (result.bytesCovered !== pos - offset) {
        result.bytesCovered = pos - offset;
        if (onProgress) onProgress(result.bytesCovered);
      }
    }
  } finally {
    if (extents.return) await extents.return().catch(() => {});
  }
  return result;
}

/** Reads [pos, stop) of one extent through a byte stream into the shared buffer and writes it out. */
async function copyRange(
  source: Pick<VolumeIO, "read" | "extents">,
  target: Pick<VolumeIO, "write" | "writeZeroes">,
  extent: Extent,
  pos: number,
  stop: number,
  options: CopyOptions,
  result: CopyResult,
  state: { buffer: ArrayBuffer },
  shift: number,
  zeroChunks: "skip" | "zero" | "write",
): Promise<void> {
  const { limiter, signal, checkpoint, onProgress } = options;
  const one = { async *extents() { yield extent; }, read: source.read.bind(source) };
  const stream = createRangeByteStream(one, { offset: pos, length: stop - pos, limiter, signal, chunkBytes: state.buffer.byteLength });
  const reader = stream.getReader({ mode: "byob" });
  const io = { signal };
  let at = pos;
  try {
    while (at < stop) {
      const { value, done } = await reader.read(new Uint8Array(state.buffer, 0, Math.min(state.buffer.byteLength, stop - at)));
      if (done || !value) throw new VirtError("internal", `Source stream ended at byte ${at} before ${stop}`);
      state.buffer = value.buffer as ArrayBuffer;
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
      at += n;
      result.bytesCovered += n;
      if (onProgress) onProgress(result.bytesCovered);
      if (checkpoint && at < stop) await checkpoint();
    }
  } finally {
    // Cancel on success too: the loop stops at `stop` without reading the stream's end, and only
    // cancel() (or that end) lets the stream drop its listener on the job's signal.
    // A reason of our own: cancel() without one makes the stream abort its signal with a new DOMException,
    // whose stack capture cost more than the rest of the per-extent overhead on Node.
    await reader.cancel(EXTENT_DONE).catch(() => {});
  }
}

/** The reason each extent's stream is cancelled with once its range is copied (or the copy failed). */
const EXTENT_DONE = Object.freeze({ reason: "extent copied" });

/**
 * True when every byte of the chunk is 0: 16 words OR-ed per step while aligned (about twice the speed
 * of a word-by-word loop on Node 20, which checks 1 MiB chunks of zeros at ~5 GiB/s otherwise).
 */
function isAllZero(bytes: Uint8Array): boolean {
  const aligned = bytes.byteOffset % 4 === 0 ? bytes.byteLength >>> 2 : 0;
  if (aligned > 0) {
    const w = new Uint32Array(bytes.buffer, bytes.byteOffset, aligned);
    const blocks = aligned & ~15;
    for (let i = 0; i < blocks; i += 16) {
      if ((w[i]! | w[i + 1]! | w[i + 2]! | w[i + 3]! | w[i + 4]! | w[i + 5]! | w[i + 6]! | w[i + 7]! |
          w[i + 8]! | w[i + 9]! | w[i + 10]! | w[i + 11]! | w[i + 12]! | w[i + 13]! | w[i + 14]! | w[i + 15]!) !== 0) return false;
    }
    for (let i = blocks; i < aligned; i++) if (w[i] !== 0) return false;
  }
  for (let i = aligned << 2; i < bytes.byteLength; i++) if (bytes[i] !== 0) return false;
  return true;
}
