/**
 * Reusable buffers for incoming frames. A volume download brings 2,048 frames of 256 KiB per 512 MiB;
 * a fresh buffer for each made the garbage collector the largest cost of the transfer (profiled: more
 * than the copies themselves). Frames up to {@linkcode BufferPool.bufferBytes} come from a free list and
 * go back to it once their reader is done with them; larger ones (rare: big XML documents) are plain
 * allocations that `release()` ignores.
 *
 * @module
 */

/**
 * A free list of equal-sized buffers.
 *
 * @example
 * ```ts
 * import { BufferPool } from "./buffer_pool.ts";
 * const pool = new BufferPool(1024, 2);
 * const a = pool.acquire(100);
 * pool.release(a);
 * const b = pool.acquire(200);
 * if (a.buffer !== b.buffer || b.length !== 200 || pool.acquire(5000).length !== 5000) throw new Error("unexpected");
 * ```
 */
export class BufferPool {
  /** Capacity of each pooled buffer; larger requests are not pooled. */
  readonly bufferBytes: number;
  readonly #maxFree: number;
  readonly #free: ArrayBuffer[] = [];
  /**
   * Pooled buffers handed out and not yet released: a second release of one is ignored rather than
   * handing it out twice. Weak, so a buffer its holder never gives back is simply collected.
   */
  readonly #lent = new WeakSet<ArrayBuffer>();

  /**
   * @param bufferBytes Capacity of each pooled buffer.
   * @param maxFree Released buffers kept for reuse (beyond that they are left to the collector).
   */
  constructor(bufferBytes: number, maxFree: number) {
    if (!Number.isSafeInteger(bufferBytes) || bufferBytes < 1) throw new RangeError(`Invalid pool buffer size ${bufferBytes}`);
    if (!Number.isSafeInteger(maxFree) || maxFree < 0) throw new RangeError(`Invalid pool size ${maxFree}`);
    this.bufferBytes = bufferBytes;
    this.#maxFree = maxFree;
  }

  /** Buffers waiting for reuse. */
  get freeBuffers(): number {
    return this.#free.length;
  }

  /**
   * A buffer of exactly `bytes` bytes (its contents are whatever the last user left: overwrite them).
   *
   * @param bytes Its length.
   * @returns A view from the start of a pooled buffer, or a fresh one when `bytes` is over the capacity.
   */
  acquire(bytes: number): Uint8Array<ArrayBuffer> {
    if (bytes > this.bufferBytes) return new Uint8Array(bytes);
    const buffer = this.#free.pop() ?? new ArrayBuffer(this.bufferBytes);
    this.#lent.add(buffer);
    return new Uint8Array(buffer, 0, bytes);
  }

  /**
   * Gives a buffer back. Only call it once nothing reads the bytes any more: the next `acquire()` may
   * overwrite them.
   *
   * @param view A view returned by `acquire()` (or any view into it).
   */
  release(view: Uint8Array): void {
    const buffer = view.buffer as ArrayBuffer;
    if (!this.#lent.delete(buffer)) return;
    if (this.#free.length < this.#maxFree) this.#free.push(buffer);
  }
}
