/**
 * Sequential read-ahead for a LUN: once reads come in order, the next ones are already asked for, so
 * more commands are in flight than the caller keeps (the copy loop keeps two 1 MiB reads; the target
 * serves several at once on its I/O threads). Buffers are reused; a read that does not continue the
 * sequence, and any write, drops what was read ahead.
 *
 * @module
 */

/** Reads whole, aligned ranges into a buffer (the LUN's READ(16) in pieces). */
export type RangeReader = (offset: number, target: Uint8Array, signal?: AbortSignal) => Promise<void>;

interface Pending {
  readonly offset: number;
  readonly buffer: Uint8Array;
  readonly done: Promise<boolean>;
}

/**
 * Read-ahead over a {@linkcode RangeReader}.
 *
 * @example The second read in order asks for the next two ahead; the third is served from them
 * ```ts
 * import { ReadAhead } from "./read_ahead.ts";
 * const asked: number[] = [];
 * const ahead = new ReadAhead(async (offset, target) => { asked.push(offset); target.fill(offset / 4); }, 16, 8);
 * const [a, b, c] = [new Uint8Array(4), new Uint8Array(4), new Uint8Array(4)];
 * await ahead.read(0, a);
 * await ahead.read(4, b);
 * await ahead.read(8, c);
 * await ahead.drain();
 * if (c.join() !== "2,2,2,2" || asked.join() !== "0,8,12,4") throw new Error(asked.join());
 * ```
 */
export class ReadAhead {
  readonly #read: RangeReader;
  readonly #aheadBytes: number;
  readonly #endBytes: number;
  readonly #pending: Pending[] = [];
  readonly #free: Uint8Array[] = [];
  #nextOffset = -1;

  /**
   * @param read Reads an aligned range.
   * @param endBytes The LUN's size: nothing past it is asked for.
   * @param aheadBytes How far ahead of the caller to read.
   */
  constructor(read: RangeReader, endBytes: number, aheadBytes: number) {
    this.#read = read;
    this.#endBytes = endBytes;
    this.#aheadBytes = aheadBytes;
  }

  /**
   * Reads `target.byteLength` bytes at `offset` (aligned), from the read-ahead when it has them.
   *
   * @param offset Where.
   * @param target Into what.
   * @param signal Aborts the caller's own read (a read ahead is the IO's, and runs to its end).
   */
  async read(offset: number, target: Uint8Array, signal?: AbortSignal): Promise<void> {
    const sequential = offset === this.#nextOffset;
    const head = this.#pending[0];
    let served = false;
    if (sequential && head && head.offset === offset && head.buffer.byteLength === target.byteLength) {
      this.#pending.shift();
      // A failed read ahead is repeated below by the caller's own read, which reports its own error.
      if (await head.done) {
        target.set(head.buffer);
        served = true;
      }
      this.#free.push(head.buffer);
    } else if (!sequential || head) {
      this.drop();
    }
    this.#nextOffset = offset + target.byteLength;
    if (sequential) this.#fill(target.byteLength);
    if (!served) await this.#read(offset, target, signal);
  }

  /** Forgets what was read ahead (a write may have changed it); reads still in flight finish unused. */
  drop(): void {
    this.#pending.length = 0;
    this.#nextOffset = -1;
  }

  /** Waits for every read ahead still in flight (before the session goes away). */
  async drain(): Promise<void> {
    const all = this.#pending.splice(0);
    await Promise.all(all.map((p) => p.done));
  }

  #fill(stepBytes: number): void {
    let at = this.#pending.length > 0 ? this.#pending.at(-1)!.offset + stepBytes : this.#nextOffset;
    while (this.#pending.length * stepBytes < this.#aheadBytes && at + stepBytes <= this.#endBytes) {
      const buffer = this.#takeBuffer(stepBytes);
      const done = this.#read(at, buffer).then(() => true, () => false);
      this.#pending.push({ offset: at, buffer, done });
      at += stepBytes;
    }
  }

  #takeBuffer(bytes: number): Uint8Array {
    while (this.#free.length > 0) {
      const buffer = this.#free.pop()!;
      if (buffer.byteLength === bytes) return buffer;
    }
    return new Uint8Array(bytes);
  }
}
