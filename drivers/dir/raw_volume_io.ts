/**
 * {@linkcode VolumeIO} over one raw image file: positional reads and writes on an open descriptor,
 * holes from the filesystem (see {@linkcode rawExtents}).
 *
 * @module
 */
import { StateError } from "../../core/errors.ts";
import type { SignalOptions } from "../../core/options.ts";
import type { Extent } from "../../core/volume.ts";
import type { VolumeIO } from "../../core/volume_io.ts";
import type { DirFile, DirFs } from "./dir_fs.ts";
import type { HoleFinder } from "./hole_finder.ts";
import { rawExtents } from "./raw_extents.ts";
import { ReadAhead, type ReadAdvisor } from "./read_advisor.ts";
import type { WritebackStarter } from "./writeback_starter.ts";
import { BackgroundWriteback, WRITEBACK_BYTES } from "./background_writeback.ts";

const DRIVER = "dir";
/** Largest zero-filled write `writeZeroes` issues at once. */
const ZERO_CHUNK_BYTES = 1 << 20;

/** Options of {@linkcode openRawVolumeIO}. */
export interface RawVolumeOptions {
  /** The open file (the IO owns it from now on and closes it). */
  file: DirFile;
  /** Whether writes are allowed. */
  write: boolean;
  /** Asks the filesystem for holes; `undefined` to find them by reading. */
  holeFinder: HoleFinder | undefined;
  /** How messages name the volume (`volume "a" in pool "p"`). */
  label: string;
  /**
   * Bytes written between two background writebacks (default 16 MiB); `0` never starts one, leaving
   * everything to {@linkcode VolumeIO.flush} (the benchmark's copy-loop-only figure uses that).
   */
  writebackBytes?: number;
  /**
   * Starts a background writeback without a journal commit or a cache flush (`sync_file_range`); used
   * only when the hole finder trusts the descriptor (it is the OS one). Absent, or once it fails: a
   * background `fdatasync`.
   */
  writebackStarter?: WritebackStarter;
  /**
   * Asks the kernel to read ahead of a read-only volume's reads ({@linkcode ReadAhead}); used only when
   * the hole finder trusts the descriptor (it is the OS one). Absent: no advice.
   */
  readAdvisor?: ReadAdvisor;
  /**
   * Copies between two files inside the kernel (`DirFs.copyFileRange`): {@linkcode VolumeIO.copyFrom}
   * uses it from another raw volume opened with a trusted hole finder. Absent: no `copyFrom`.
   */
  copyFileRange?: DirFs["copyFileRange"];
}

/**
 * Opens a raw file as a volume. Its capacity is the file size at open time (a resize happens through
 * the pool, with no IO open).
 *
 * The hole finder is trusted only after it agrees with `fstat` about the descriptor's size: a runtime
 * whose `fd` is not the OS descriptor would otherwise report another file's holes.
 *
 * `writeZeroes` without `allocate` makes a hole only where it can without `fallocate` (which neither
 * Node nor Deno exposes): a range reaching the end of the file is cut off and the size restored, a
 * range that is already a hole is left alone; any other range gets written zeros (correct, but
 * allocated).
 *
 * @param options The file, the mode, the hole finder and the label.
 * @returns The volume IO.
 * @example
 * ```ts
 * import fsp from "node:fs/promises";
 * import os from "node:os";
 * import path from "node:path";
 * import { openRawVolumeIO } from "./raw_volume_io.ts";
 * const dir = await fsp.mkdtemp(path.join(os.tmpdir(), "raw-io-"));
 * try {
 *   const file = await fsp.open(path.join(dir, "a.img"), "w+");
 *   await file.truncate(4096);
 *   const io = await openRawVolumeIO({ file, write: true, holeFinder: undefined, label: 'volume "a.img"' });
 *   await io.write(100, new Uint8Array([1, 2, 3]));
 *   const back = new Uint8Array(3);
 *   await io.read(100, back);
 *   await io.close();
 *   if (back.join() !== "1,2,3") throw new Error("unexpected");
 * } finally {
 *   await fsp.rm(dir, { recursive: true, force: true });
 * }
 * ```
 */
export async function openRawVolumeIO(options: RawVolumeOptions): Promise<VolumeIO> {
  const { file, label } = options;
  const { size } = await file.stat();
  const finder = await trustedFinder(file, options.holeFinder);
  const writebackBytes = options.writebackBytes ?? WRITEBACK_BYTES;
  if (!Number.isSafeInteger(writebackBytes) || writebackBytes < 0) {
    throw new RangeError(`Invalid writebackBytes ${writebackBytes} for ${label}: expected a byte count`);
  }
  // The starter only with a trusted descriptor (the OS one); else background fdatasyncs.
  const writeback = new BackgroundWriteback({
    fd: file.fd,
    datasync: () => file.datasync(),
    starter: options.write && finder ? options.writebackStarter : undefined,
    thresholdBytes: writebackBytes,
  });
  const ahead = !options.write && finder && options.readAdvisor ? new ReadAhead(options.readAdvisor, file.fd, size, undefined, finder) : undefined;
  const copyFileRange = options.write && finder ? options.copyFileRange : undefined;
  return new RawVolumeIO(file, size, options.write, finder, label, { writeback, copyFileRange }, ahead);
}

/**
 * The hole finder, if it can be trusted with this open file: it must see the descriptor's size as
 * `fstat` does, and answer `SEEK_HOLE` (a filesystem without it makes the finder throw).
 *
 * @param file The open file.
 * @param finder The candidate.
 * @returns The finder, or `undefined` to find holes by reading.
 * @example
 * ```ts
 * import { trustedFinder } from "./raw_volume_io.ts";
 * const file = { fd: 3, stat: async () => ({ size: 10 }) };
 * const liar = { name: "liar", nextData: () => undefined, nextHole: () => 0, endOffset: () => 99 };
 * if ((await trustedFinder(file, liar)) !== undefined) throw new Error("unexpected");
 * ```
 */
export async function trustedFinder(
  file: Pick<DirFile, "fd"> & { stat(): Promise<{ size: number }> },
  finder: HoleFinder | undefined,
): Promise<HoleFinder | undefined> {
  if (!finder) return undefined;
  const { size } = await file.stat();
  try {
    if (finder.endOffset(file.fd) !== size) return undefined;
    if (size > 0) finder.nextHole(file.fd, 0);
    return finder;
  } catch {
    return undefined;
  }
}

class RawVolumeIO implements VolumeIO {
  readonly capacityBytes: number;
  readonly #file: DirFile;
  readonly #write: boolean;
  readonly #finder: HoleFinder | undefined;
  readonly #label: string;
  readonly #writeback: BackgroundWriteback;
  /** Dropped at the first "cannot" from the kernel: the other copies of this IO read and write. */
  #copyFileRange: DirFs["copyFileRange"];
  #zeros: Uint8Array | undefined;
  #closed = false;
  readonly #ahead: ReadAhead | undefined;

  constructor(
    file: DirFile,
    capacityBytes: number,
    write: boolean,
    finder: HoleFinder | undefined,
    label: string,
    writeback: { writeback: BackgroundWriteback; copyFileRange: DirFs["copyFileRange"] },
    ahead: ReadAhead | undefined,
  ) {
    this.#ahead = ahead;
    this.#file = file;
    this.#writeback = writeback.writeback;
    this.#copyFileRange = writeback.copyFileRange;
    this.capacityBytes = capacityBytes;
    this.#write = write;
    this.#finder = finder;
    this.#label = label;
  }

  async read(offset: number, target: Uint8Array, options?: SignalOptions): Promise<number> {
    this.#check(options, false);
    const want = Math.max(0, Math.min(target.byteLength, this.capacityBytes - offset));
    // Before this read waits: the kernel starts on the next ones meanwhile.
    this.#ahead?.after(offset, want);
    let done = 0;
    while (done < want) {
      const { bytesRead } = await this.#file.read(target, done, want - done, offset + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    // The file shrank under us (or was never as large): guest-visible bytes past its end are zeros.
    if (done < want) target.fill(0, done, want);
    return want;
  }

  async write(offset: number, data: Uint8Array, options?: SignalOptions): Promise<void> {
    this.#check(options, true);
    this.#inside(offset, data.byteLength);
    await this.#writeAll(offset, data);
  }

  /**
   * Copies from another raw volume of the dir backend inside the kernel (`copy_file_range`), when both
   * descriptors are trusted OS ones; the source's read-ahead is advised as for a read. Writes count
   * toward the background writeback like any other.
   */
  async copyFrom(source: Pick<VolumeIO, "read">, sourceOffset: number, offset: number, length: number, options?: SignalOptions): Promise<number | undefined> {
    this.#check(options, true);
    this.#inside(offset, length);
    const copy = this.#copyFileRange;
    if (!copy || !(source instanceof RawVolumeIO) || !source.#finder || length === 0) return undefined;
    source.#check(options, false);
    const want = Math.min(length, source.capacityBytes - sourceOffset);
    if (!(want > 0)) return undefined;
    source.#ahead?.after(sourceOffset, want);
    const done = await copy(source.#file, sourceOffset, this.#file, offset, want);
    if (done === undefined) this.#copyFileRange = undefined;
    // 0: the source file shrank under us; the caller's read fills zeros past its end.
    if (done === undefined || done === 0) return undefined;
    this.#writeback.written(offset, done);
    return done;
  }

  async writeZeroes(offset: number, length: number, options?: SignalOptions & { allocate?: boolean }): Promise<void> {
    this.#check(options, true);
    this.#inside(offset, length);
    if (length === 0) return;
    if (options?.allocate !== true) {
      const { size } = await this.#file.stat();
      if (offset + length >= size) {
        // Cutting the file and growing it back leaves a hole: the one hole punch Node can do.
        await this.#file.truncate(offset);
        await this.#file.truncate(Math.max(size, this.capacityBytes));
        return;
      }
      if (this.#finder && this.#isHole(offset, length)) return;
    }
    const zeros = (this.#zeros ??= new Uint8Array(new ArrayBuffer(Math.min(ZERO_CHUNK_BYTES, Math.max(length, 4096)))));
    for (let at = offset; at < offset + length; ) {
      options?.signal?.throwIfAborted();
      const n = Math.min(zeros.byteLength, offset + length - at);
      await this.#writeAll(at, zeros.subarray(0, n));
      at += n;
    }
  }

  /** Errors (a closed IO, a bad range, an aborted signal) surface on the first `next()`, as for any async iterable. */
  async *extents(offset: number, length: number, options?: SignalOptions): AsyncGenerator<Extent> {
    this.#check(options, false);
    this.#inside(offset, length);
    const file = this.#file;
    const source = {
      fd: file.fd,
      stat: () => file.stat(),
      read: async (at: number, target: Uint8Array) => (await file.read(target, 0, target.byteLength, at)).bytesRead,
    };
    yield* rawExtents(source, offset, length, this.#finder, options?.signal);
  }

  async flush(options?: SignalOptions): Promise<void> {
    this.#check(options, false);
    if (!this.#write) return;
    await this.#writeback.settle();
    await this.#file.datasync();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#writeback.idle();
    await this.#file.close();
  }

  #isHole(offset: number, length: number): boolean {
    const finder = this.#finder!;
    const data = finder.nextData(this.#file.fd, offset);
    return data === undefined || data >= offset + length;
  }

  async #writeAll(offset: number, data: Uint8Array): Promise<void> {
    let done = 0;
    while (done < data.byteLength) {
      const { bytesWritten } = await this.#file.write(data, done, data.byteLength - done, offset + done);
      done += bytesWritten;
    }
    this.#writeback.written(offset, done);
  }

  #check(options: SignalOptions | undefined, writing: boolean): void {
    options?.signal?.throwIfAborted();
    if (this.#closed) throw new StateError(`Cannot use ${this.#label}: it is closed`, { state: "closed", driver: DRIVER });
    if (writing && !this.#write) {
      throw new StateError(`Cannot write ${this.#label}: it is open read-only`, { state: "read-only", driver: DRIVER });
    }
  }

  #inside(offset: number, length: number): void {
    if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
      throw new RangeError(`Invalid range ${offset}+${length} for ${this.#label}: expected byte counts`);
    }
    if (offset + length > this.capacityBytes) {
      throw new RangeError(`Invalid range ${offset}+${length}: it passes the end of ${this.#label} (${this.capacityBytes} bytes)`);
    }
  }
}
