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
  const { limiter, signal } = options;
  // Our own controller, so cancel() can stop a waiting take (giving its reservation back) and a read.
  const local = new AbortController();
  const localOptions = { signal: local.signal };
  let extents: AsyncIterator<Extent> | undefined;
  let pos = offset;
  let extentEnd = offset;
  let extentData = false;
  let onAbort: (() => void) | undefined;

  /** Stops listening and ends the extents walk; resolves once the walk has really finished. */
  const cleanup = async (): Promise<void> => {
    if (onAbort) signal!.removeEventListener("abort", onAbort);
    onAbort = undefined;
    const iterator = extents;
    extents = undefined;
    await iterator?.return?.().catch(() => {});
  };

  const nextExtent = async (): Promise<void> => {
    extents ??= io.extents(offset, end - offset, localOptions)[Symbol.asyncIterator]();
    for (;;) {
      const { value, done } = await extents.next();
      if (done || value.offset > pos) {
        throw new VirtError("internal", `Volume extents do not cover the range at byte ${pos} (asked ${offset}+${end - offset})`);
      }
      if (value.offset + value.length <= pos) continue;
      extentEnd = Math.min(value.offset + value.length, end);
      extentData = value.data;
      return;
    }
  };

  const fill = async (request: ReadableStreamBYOBRequest): Promise<void> => {
    if (pos >= extentEnd) await nextExtent();
    const view = request.view!;
    const n = Math.min(view.byteLength, extentEnd - pos);
    const target = new Uint8Array(view.buffer, view.byteOffset, n);
    if (extentData) {
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
        return;
      }
      onAbort = () => {
        local.abort(signal.reason);
        controller.error(signal.reason);
        void cleanup();
      };
      signal.addEventListener("abort", onAbort, { once: true });
    },
    async pull(controller) {
      // autoAllocateChunkSize guarantees a request for default readers too.
      const request = controller.byobRequest!;
      if (pos >= end) {
        await cleanup();
        // Spec order: close first, then answer the pending request with 0 bytes.
        controller.close();
        request.respond(0);
        return;
      }
      return fill(request).then(undefined, fail);
    },
    cancel(reason) {
      local.abort(reason);
      return cleanup();
    },
  };
  return new ReadableStream(source, { highWaterMark: 0 });
}
