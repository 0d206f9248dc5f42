/**
 * Positional block I/O on one open volume: the one interface the copy loop, the generic volume jobs
 * (clone, allocate, pull, wipe, upload, download) and the image engine need from a storage backend.
 *
 * @module
 */
import type { BackingRef, Extent } from "./volume.ts";
import type { SignalOptions } from "./options.ts";

/**
 * An open volume. Reads see guest-visible bytes (through the backing chain, if any). A storage backend
 * returns one from `openVolume`; the copy loop and every volume job run on it.
 *
 * @example A VolumeIO over bytes in memory, copied by the copy loop
 * ```ts
 * import type { VolumeIO } from "virtkit";
 * import { copyExtents } from "./copy/copy_loop.ts";
 * function memoryVolume(bytes: Uint8Array): VolumeIO {
 *   return {
 *     capacityBytes: bytes.length,
 *     async read(offset, target) { const n = Math.min(target.length, bytes.length - offset); target.set(bytes.subarray(offset, offset + n)); return n; },
 *     async write(offset, data) { bytes.set(data, offset); },
 *     async writeZeroes(offset, length) { bytes.fill(0, offset, offset + length); },
 *     async *extents(offset, length) { yield { offset, length, data: true, zero: false, depth: 0 }; },
 *     async flush() {},
 *     async close() {},
 *   };
 * }
 * const source = memoryVolume(new Uint8Array(4096).fill(7));
 * const target = memoryVolume(new Uint8Array(4096));
 * await copyExtents({ source, target, length: 4096, plan: () => "copy" });
 * if ((await target.read(4095, new Uint8Array(1))) !== 1) throw new Error("unexpected");
 * const last = new Uint8Array(1);
 * await target.read(4095, last);
 * if (last[0] !== 7) throw new Error("unexpected");
 * ```
 */
export interface VolumeIO {
  /** Virtual size in bytes. */
  readonly capacityBytes: number;
  /**
   * Reads guest-visible bytes at `offset` into `target`.
   *
   * @returns How many bytes were read: `target.byteLength`, fewer only at the end of the volume.
   */
  read(offset: number, target: Uint8Array, options?: SignalOptions): Promise<number>;
  /** Writes `data` at `offset` into this volume's own layer. The caller may reuse `data` once it resolves. */
  write(offset: number, data: Uint8Array, options?: SignalOptions): Promise<void>;
  /**
   * Makes a range read as zeros. With `allocate: true` the zeros are really allocated (as
   * `volume.allocate()` needs); otherwise the backend may punch a hole or mark zero clusters, and must
   * make sure the range no longer falls through to a backing image.
   */
  writeZeroes(offset: number, length: number, options?: SignalOptions & { allocate?: boolean }): Promise<void>;
  /** The allocation map over a range, in order, covering it exactly. */
  extents(offset: number, length: number, options?: SignalOptions): AsyncIterable<Extent>;
  /**
   * Changes or drops (`undefined`) the backing image recorded in the volume: the last step of a pull.
   * Absent when the format has no backing files.
   */
  setBacking?(backing: BackingRef | undefined, options?: SignalOptions): Promise<void>;
  /**
   * Copies up to `length` bytes of `source` (at `sourceOffset`) into this volume's own layer at
   * `offset` without handing them to the caller, as `copy_file_range(2)` does between two raw files of
   * one filesystem. A copy loop asked to offload (a clone) calls it per chunk, after paying the chunk
   * against its cap, and reads and writes instead once it answers `undefined`. The bytes are copied as
   * they are: all-zero chunks are not looked for. Absent when the backend cannot copy this way.
   *
   * @param source The volume to copy from (a backend copies only from its own kind of volume).
   * @param sourceOffset Where to read in it.
   * @param offset Where to write in this volume.
   * @param length At most this many bytes.
   * @returns The bytes copied (at least 1), or `undefined` when it cannot copy from this source here.
   */
  copyFrom?(source: Pick<VolumeIO, "read">, sourceOffset: number, offset: number, length: number, options?: SignalOptions): Promise<number | undefined>;
  /** Makes written data durable. */
  flush(options?: SignalOptions): Promise<void>;
  /** Releases the volume; further calls fail. */
  close(): Promise<void>;
}
