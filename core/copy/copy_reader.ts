/**
 * Where the copy loop gets the bytes it copies: one byte stream for the whole copy, read with a BYOB
 * reader into reusable buffers.
 *
 * @module
 */
import type { SignalOptions } from "../options.ts";
import type { VolumeIO } from "../volume_io.ts";
import { VirtError } from "../errors.ts";
import type { PlanWalk } from "./plan_walk.ts";
import type { RateLimiter } from "./rate_limiter.ts";
import { createSegmentByteStream, type SegmentSource } from "./range_stream.ts";

/**
 * The bytes of the copy steps: one segment byte stream for the whole copy and a BYOB reader on it, with
 * one buffer, or two when reading ahead (the next read is asked for as soon as a chunk arrives, into the
 * buffer the previous write has finished with).
 *
 * @example Read the bytes of the one copy step
 * ```ts
 * import { CopyReader } from "./copy_reader.ts";
 * import { PlanWalk } from "./plan_walk.ts";
 * async function* extents() { yield { offset: 0, length: 3, data: true, zero: false, depth: 0 }; }
 * const walk = new PlanWalk(extents(), () => "copy", 0, 3);
 * const source = { async read(_offset: number, target: Uint8Array) { target.fill(7); return target.byteLength; } };
 * const reader = new CopyReader(source, walk, { chunkBytes: 16, readAhead: true });
 * const step = await walk.next();
 * const chunk = await reader.read();
 * const text = chunk?.join();
 * if (chunk) reader.release(chunk);
 * const end = await reader.read();
 * await reader.close();
 * await walk.close();
 * if (step?.action !== "copy" || text !== "7,7,7" || end !== undefined) throw new Error("unexpected");
 * ```
 */
export class CopyReader {
  readonly #reader: ReadableStreamBYOBReader;
  readonly #readAhead: boolean;
  /** Buffers no read holds. */
  readonly #free: ArrayBuffer[];
  #ahead: Promise<ReadableStreamReadResult<Uint8Array>> | undefined;
  #reading: Promise<void> = Promise.resolve();

  /**
   * @param source Where the bytes are read.
   * @param walk The walk whose copy steps are served.
   * @param options Cap, signal, chunk size and whether to read ahead.
   */
  constructor(
    source: Pick<VolumeIO, "read">,
    walk: PlanWalk,
    options: { limiter?: RateLimiter; signal?: AbortSignal; chunkBytes: number; readAhead: boolean },
  ) {
    const segments: SegmentSource = {
      async next() {
        const step = await walk.nextCopy();
        return step && { offset: step.pos, length: step.stop - step.pos, data: true };
      },
    };
    // Every source read is tracked, so close() can wait for one still running (an abort errors the
    // stream at once, but cannot stop a read the runtime has started): the caller may close the source next.
    const tracked = {
      read: (offset: number, target: Uint8Array, io?: SignalOptions) => {
        const reading = source.read(offset, target, io);
        this.#reading = reading.then(() => {}, () => {});
        return reading;
      },
    };
    const stream = createSegmentByteStream(tracked, segments, options);
    this.#reader = stream.getReader({ mode: "byob" });
    this.#readAhead = options.readAhead;
    this.#free = options.readAhead ? [new ArrayBuffer(options.chunkBytes), new ArrayBuffer(options.chunkBytes)] : [new ArrayBuffer(options.chunkBytes)];
  }

  /** The next chunk of copy bytes (within one copy step), or `undefined` when the stream has ended. */
  async read(): Promise<Uint8Array | undefined> {
    const pending = this.#ahead ?? this.#request();
    this.#ahead = undefined;
    const { value, done } = await pending;
    if (done || !value) return undefined;
    if (this.#readAhead && this.#free.length > 0) {
      this.#ahead = this.#request();
      // Held until the loop asks for it; an error it meets is seen then (or dropped when closing).
      this.#ahead.catch(() => {});
    }
    return value;
  }

  /** Gives a chunk's buffer back once its write is done. */
  release(chunk: Uint8Array): void {
    this.#free.push(chunk.buffer as ArrayBuffer);
  }

  /** Ends the stream and waits for a source read still running. */
  async close(): Promise<void> {
    // Cancel on success too: it is what lets the stream drop its listener on the job's signal.
    // A reason of our own: cancel() without one makes the stream abort its signal with a new DOMException,
    // whose stack capture is not free.
    await this.#reader.cancel(COPY_DONE).catch(() => {});
    await this.#reading;
  }

  #request(): Promise<ReadableStreamReadResult<Uint8Array>> {
    const buffer = this.#free.pop();
    if (buffer === undefined) throw new VirtError("internal", "Copy loop asked for a read with no free buffer");
    return this.#reader.read(new Uint8Array(buffer));
  }
}

/** The reason the copy stream is cancelled with once the copy is over (or failed). */
const COPY_DONE = Object.freeze({ reason: "copy over" });
