/**
 * A volume range as a byte `ReadableStream`: the source side of the copy loop, of downloads and of
 * anything that wants a volume's bytes as a web stream.
 *
 * @module
 */
import type { VolumeIO } from "../volume_io.ts";
import type { Extent } from "../volume.ts";
import type { RateLimiter } from "./rate_limiter.ts";
import { VirtError } from "../errors.ts";
import { assertBytes, MiB } from "../units.ts";

/** Options of {@linkcode createRangeByteStream}. */
export interface RangeByteStreamOptions {
  /** Start of the range in the volume (default 0). */
  offset?: number;
  /** Length of the range in bytes. */
  length: number;
  /** Tokens are taken from it before each read of data: the cap is backpressure. */
  limiter?: RateLimiter;
  /** Aborting errors the stream with the signal's reason. */
  signal?: AbortSignal;
  /** Chunk size served to default (non-BYOB) readers (default 1 MiB). */
  chunkBytes?: number;
}

/**
 * Streams a range of a volume as a byte stream (`type: "bytes"`, high-water mark 0: nothing is read
 * before a reader asks). Each pull fills the reader's own buffer (BYOB) or an auto-allocated chunk.
 * The allocation map is walked lazily: holes and zero clusters are served as zeros without a read and
 * without tokens; data is paid for with the limiter before it is read.
 *
 * @param io The volume (only `read` and `extents` are used).
 * @param options The range, limiter, signal and chunk size.
 * @returns A byte stream of exactly `length` bytes.
 * @throws {RangeError} When the range or chunk size is not a byte count.
 * @example Read 8 bytes of a fake volume with a BYOB reader
 * ```ts
 * import { createRangeByteStream } from "./range_stream.ts";
 * const io = {
 *   async read(offset: number, target: Uint8Array) { target.fill(offset + 1); return target.byteLength; },
 *   async *extents(offset: number, length: number) { yield { offset, length, data: true, zero: false, depth: 0 }; },
 * };
 * const reader = createRangeByteStream(io, { offset: 4, length: 8 }).getReader({ mode: "byob" });
 * const { value } = await reader.read(new Uint8Array(16));
 * if (value?.byteLength !== 8 || value[0] !== 5) throw new Error("unexpected");
 * if (!(await reader.read(new Uint8Array(16))).done) throw new Error("not done");
 * ```
 */
export function createRangeByteStream(
  io: Pick<VolumeIO, "read" | "extents">,
  options: RangeByteStreamOptions,
): ReadableStream<Uint8Array> {
  if (io === null || typeof io !== "object" || typeof io.read !== "function" || typeof io.extents !== "function") {
    throw new TypeError("Cannot stream a volume range: io must have read() and extents()");
  }
  if (options === null || typeof options !== "object") throw new TypeError("Cannot stream a volume range: expected options");
  const offset = assertBytes(options.offset ?? 0, "offset");
  const end = offset + assertBytes(options.length, "length");
  const chunkBytes = assertBytes(options.chunkBytes ?? MiB(1), "chunkBytes");
  if (chunkBytes === 0) throw new RangeError("Invalid chunkBytes: 0 is not a positive number of bytes");
  let extents: AsyncIterator<Extent> | undefined;
  let pos = offset;
  // The allocation map, walked lazily, as contiguous segments: every byte of the range is served.
  const segments: SegmentSource = {
    async next(signal) {
      if (pos >= end) return undefined;
      extents ??= io.extents(offset, end - offset, { signal })[Symbol.asyncIterator]();
      for (;;) {
        const { value, done } = await extents.next();
        if (done || value.offset > pos) {
          throw new VirtError("internal", `Volume extents do not cover the range at byte ${pos} (asked ${offset}+${end - offset})`);
        }
        if (value.offset + value.length <= pos) continue;
        const stop = Math.min(value.offset + value.length, end);
        const segment = { offset: pos, length: stop - pos, data: value.data };
        pos = stop;
        return segment;
      }
    },
    async return() {
      const iterator = extents;
      extents = undefined;
      await iterator?.return?.().catch(() => {});
    },
  };
  return createSegmentByteStream(io, segments, { limiter: options.limiter, signal: options.signal, chunkBytes });
}

/** A part of a volume a segment stream serves: `data` is read (and paid for), anything else is zeros. */
export interface StreamSegment {
  /** Where the segment starts in the volume. */
  offset: number;
  /** Its length in bytes (0 is allowed and skipped). */
  length: number;
  /** Whether its bytes are read; `false` serves zeros without a read and without tokens. */
  data: boolean;
}

/** Where a segment stream takes its segments from, in the order their bytes are served. */
export interface SegmentSource {
  /**
   * The next segment, asked for only once the previous one is served.
   *
   * @param signal Aborted when the stream is cancelled or errors.
   * @returns The segment, or `undefined` at the end of the stream.
   */
  next(signal: AbortSignal): Promise<StreamSegment | undefined>;
  /** Called once when the stream ends, errors or is cancelled: stop whatever produces segments. */
  return?(): Promise<void>;
}

/** Options of {@linkcode createSegmentByteStream}. */
export interface SegmentByteStreamOptions {
  /** Tokens are taken from it before each read of data. */
  limiter?: RateLimiter;
  /** Aborting errors the stream with the signal's reason. */
  signal?: AbortSignal;
  /** Chunk size served to default (non-BYOB) readers. */
  chunkBytes: number;
}

/**
 * Serves the bytes of a sequence of volume segments, one after another, as a byte stream (`type:
 * "bytes"`, high-water mark 0: nothing is read before a reader asks, and a segment is asked for only
 * when its bytes are wanted). A read never spans two segments, so a reader that knows the segments
 * knows where each chunk belongs. This is the one place where the copy loop's bytes are read and the
 * cap is paid: {@linkcode createRangeByteStream} serves a whole range through it, and the copy loop
 * serves only the segments it copies, so it keeps one stream for a whole copy.
 *
 * @param io The volume (only `read` is used).
 * @param segments Where the segments come from.
 * @param options Limiter, signal and chunk size.
 * @returns The byte stream.
 * @example Two data segments with a gap, read with a BYOB reader
 * ```ts
 * import { createSegmentByteStream } from "./range_stream.ts";
 * const io = { async read(offset: number, target: Uint8Array) { target.fill(offset); return target.byteLength; } };
 * const queue = [{ offset: 2, length: 2, data: true }, { offset: 9, length: 1, data: true }];
 * const reader = createSegmentByteStream(io, { next: async () => queue.shift() }, { chunkBytes: 8 }).getReader({ mode: "byob" });
 * const first = await reader.read(new Uint8Array(8));
 * const second = await reader.read(new Uint8Array(8));
 * if (first.value?.join() !== "2,2" || second.value?.join() !== "9") throw new Error("unexpected");
 * if (!(await reader.read(new Uint8Array(8))).done) throw new Error("not done");
 * ```
 */
export function createSegmentByteStream(
  io: Pick<VolumeIO, "read">,
  segments: SegmentSource,
  options: SegmentByteStreamOptions,
): ReadableStream<Uint8Array> {
  const { limiter, signal, chunkBytes } = options;
  // Our own controller, so cancel() can stop a waiting take (giving its reservation back) and a read.
  const local = new AbortController();
  const localOptions = { signal: local.signal };
  let pos = 0;
  let segmentEnd = 0;
  let segmentData = false;
  let ended = false;
  let onAbort: (() => void) | undefined;

  /** Stops listening and ends the segment source; resolves once it has really finished. */
  const cleanup = async (): Promise<void> => {
    if (onAbort) signal!.removeEventListener("abort", onAbort);
    onAbort = undefined;
    if (ended) return;
    ended = true;
    await segments.return?.().catch(() => {});
  };

  /** Moves to the next non-empty segment; false at the end. */
  const nextSegment = async (): Promise<boolean> => {
    for (;;) {
      const segment = await segments.next(local.signal);
      if (segment === undefined) return false;
      if (!(segment.length > 0)) continue;
      pos = segment.offset;
      segmentEnd = segment.offset + segment.length;
      segmentData = segment.data;
      return true;
    }
  };

  const fill = async (controller: ReadableByteStreamController, request: ReadableStreamBYOBRequest): Promise<void> => {
    if (pos >= segmentEnd && !(await nextSegment())) {
      await cleanup();
      // Spec order: close first, then answer the pending request with 0 bytes.
      controller.close();
      request.respond(0);
      return;
    }
    const view = request.view!;
    const n = Math.min(view.byteLength, segmentEnd - pos);
    const target = new Uint8Array(view.buffer, view.byteOffset, n);
    if (segmentData) {
      if (limiter) await limiter.take(n, local.signal);
      const got = await io.read(pos, target, localOptions);
      if (!(got > 0)) throw new VirtError("internal", `Volume read returned ${got} bytes at ${pos} within its range`);
      pos += got;
      request.respond(got);
    } else {
      target.fill(0);
      pos += n;
      request.respond(n);
    }
  };

  /** A failed pull stops everything it started before the stream errors. */
  const fail = async (error: unknown): Promise<never> => {
    local.abort(error);
    await cleanup();
    throw error;
  };

  const source: UnderlyingByteSource = {
    type: "bytes",
    autoAllocateChunkSize: chunkBytes,
    start(controller) {
      if (!signal) return;
      if (signal.aborted) {
        local.abort(signal.reason);
        controller.error(signal.reason);
        void cleanup();
        return;
      }
      onAbort = () => {
        local.abort(signal.reason);
        controller.error(signal.reason);
        void cleanup();
      };
      signal.addEventListener("abort", onAbort, { once: true });
    },
    pull(controller) {
      // autoAllocateChunkSize guarantees a request for default readers too.
      return fill(controller, controller.byobRequest!).then(undefined, fail);
    },
    cancel(reason) {
      local.abort(reason);
      return cleanup();
    },
  };
  return new ReadableStream(source, { highWaterMark: 0 });
}
