/**
 * {@linkcode VolumeIO} over one LUN of an iSCSI session: reads and writes become READ(16) and
 * WRITE(16) commands, split into pieces that run at once (the session keeps them in flight), and
 * extents come from GET LBA STATUS when the target manages provisioning (LBPME), else the whole LUN is
 * data, as QEMU's iscsi driver reports it.
 *
 * @module
 */
import { StateError } from "../../core/errors.ts";
import type { SignalOptions } from "../../core/options.ts";
import type { Extent } from "../../core/volume.ts";
import type { VolumeIO } from "../../core/volume_io.ts";
import type { Capacity, ScsiLun } from "./initiator/scsi.ts";
import type { IscsiSession } from "./initiator/session.ts";
import { ReadAhead } from "./read_ahead.ts";

const DRIVER = "iscsi";
/** Bytes per command: a 1 MiB chunk of the copy loop becomes 4 commands in flight (tgtd serves them on parallel threads). */
export const DEFAULT_PIECE_BYTES = 512 * 1024;
/** How far ahead of in-order reads the IO reads (on top of what the caller has in flight). */
export const DEFAULT_READ_AHEAD_BYTES = 2 * 1024 * 1024;
/** Largest zero buffer `writeZeroes` writes from. */
const ZERO_BYTES = 1 << 20;

/** Options of {@linkcode LunVolumeIO}. */
export interface LunVolumeOptions {
  /** The session (the IO owns it and logs out on close). */
  readonly session: IscsiSession;
  /** The LUN's commands. */
  readonly lun: ScsiLun;
  /** What READ CAPACITY(16) said. */
  readonly capacity: Capacity;
  /** Whether writes are allowed. */
  readonly write: boolean;
  /** How messages name the volume. */
  readonly label: string;
  /** Bytes per command (default 512 KiB, rounded down to whole blocks). */
  readonly pieceBytes?: number;
  /** Read-ahead for in-order reads (default 2 MiB; 0 turns it off). */
  readonly readAheadBytes?: number;
}

/**
 * One open LUN. Offsets and lengths need not be block-aligned: partial blocks are read (and, for a
 * write, merged and written back) around the aligned middle.
 *
 * @example An unaligned read becomes READ(16) of the enclosing blocks (here over a stand-in LUN)
 * ```ts
 * import { LunVolumeIO } from "./lun_volume_io.ts";
 * const reads: string[] = [];
 * const lun = {
 *   read: async (lba: number, blocks: number, target: Uint8Array) => {
 *     reads.push(`${lba}+${blocks}`);
 *     for (let i = 0; i < target.length; i++) target[i] = (lba * 512 + i) & 0xff;
 *     return target.length;
 *   },
 * } as unknown as import("./initiator/scsi.ts").ScsiLun;
 * const session = { failure: undefined, params: { maxBurstBytes: 262144 }, logout: async () => {} } as unknown as import("./initiator/session.ts").IscsiSession;
 * const io = new LunVolumeIO({ session, lun, capacity: { blocks: 8, blockBytes: 512, lbpme: false, lbprz: false }, write: false, label: "LUN 1" });
 * const out = new Uint8Array(4);
 * await io.read(510, out);
 * await io.close();
 * if (reads.join() !== "0+2" || out.join() !== "254,255,0,1") throw new Error(`${reads} ${out}`);
 * ```
 */
export class LunVolumeIO implements VolumeIO {
  readonly capacityBytes: number;
  readonly #session: IscsiSession;
  readonly #lun: ScsiLun;
  readonly #blockBytes: number;
  readonly #write: boolean;
  readonly #label: string;
  readonly #pieceBytes: number;
  readonly #thin: boolean;
  readonly #zeroUnmapped: boolean;
  readonly #ahead: ReadAhead | undefined;
  #closed = false;
  #zeros: Uint8Array | undefined;

  /** @param options Session, LUN, capacity and mode. */
  constructor(options: LunVolumeOptions) {
    this.#session = options.session;
    this.#lun = options.lun;
    this.#blockBytes = options.capacity.blockBytes;
    this.capacityBytes = options.capacity.blocks * options.capacity.blockBytes;
    this.#write = options.write;
    this.#label = options.label;
    const piece = options.pieceBytes ?? DEFAULT_PIECE_BYTES;
    this.#pieceBytes = Math.max(this.#blockBytes, piece - (piece % this.#blockBytes));
    this.#thin = options.capacity.lbpme;
    this.#zeroUnmapped = options.capacity.lbprz;
    const aheadBytes = options.readAheadBytes ?? DEFAULT_READ_AHEAD_BYTES;
    this.#ahead = aheadBytes > 0 ? new ReadAhead((offset, target, signal) => this.#readAligned(offset, target, signal), this.capacityBytes, aheadBytes) : undefined;
  }

  async read(offset: number, target: Uint8Array, options?: SignalOptions): Promise<number> {
    this.#check(options, false);
    if (!Number.isSafeInteger(offset) || offset < 0) throw new RangeError(`Invalid offset ${offset} for ${this.#label}: expected a byte count`);
    const want = Math.max(0, Math.min(target.byteLength, this.capacityBytes - offset));
    if (want === 0) return 0;
    const bs = this.#blockBytes;
    const head = offset % bs;
    const tail = (offset + want) % bs;
    if (head === 0 && tail === 0) {
      if (this.#ahead) await this.#ahead.read(offset, target.subarray(0, want), options?.signal);
      else await this.#readAligned(offset, target.subarray(0, want), options?.signal);
      return want;
    }
    // Unaligned: read the enclosing blocks, then copy the asked part out.
    const start = offset - head;
    const end = offset + want + (tail === 0 ? 0 : bs - tail);
    const scratch = new Uint8Array(end - start);
    await this.#readAligned(start, scratch, options?.signal);
    target.set(scratch.subarray(head, head + want));
    return want;
  }

  async write(offset: number, data: Uint8Array, options?: SignalOptions): Promise<void> {
    this.#check(options, true);
    this.#inside(offset, data.byteLength);
    if (data.byteLength === 0) return;
    this.#ahead?.drop();
    const bs = this.#blockBytes;
    const head = offset % bs;
    const tail = (offset + data.byteLength) % bs;
    if (head === 0 && tail === 0) return await this.#writeAligned(offset, data, options?.signal);
    const start = offset - head;
    const end = offset + data.byteLength + (tail === 0 ? 0 : bs - tail);
    const merged = new Uint8Array(end - start);
    // Only the partial edge blocks need their old bytes.
    await this.#readAligned(start, merged.subarray(0, bs), options?.signal);
    if (end - start > bs) await this.#readAligned(end - bs, merged.subarray(merged.byteLength - bs), options?.signal);
    merged.set(data, head);
    await this.#writeAligned(start, merged, options?.signal);
  }

  /** Writes zeros (a LUN has no cheaper way to make a range read zeros that every target honours). */
  async writeZeroes(offset: number, length: number, options?: SignalOptions & { allocate?: boolean }): Promise<void> {
    this.#check(options, true);
    this.#inside(offset, length);
    const zeros = (this.#zeros ??= new Uint8Array(Math.min(ZERO_BYTES, Math.max(this.#blockBytes, length))));
    for (let at = offset; at < offset + length; ) {
      const n = Math.min(zeros.byteLength, offset + length - at);
      await this.write(at, zeros.subarray(0, n), options);
      at += n;
    }
  }

  async *extents(offset: number, length: number, options?: SignalOptions): AsyncGenerator<Extent> {
    this.#check(options, false);
    this.#inside(offset, length);
    const end = offset + length;
    if (!this.#thin) {
      if (length > 0) yield { offset, length, data: true, zero: false, depth: 0 };
      return;
    }
    let at = offset;
    while (at < end) {
      const lba = Math.floor(at / this.#blockBytes);
      const runs = (await this.#lun.lbaStatus(lba, options?.signal)).filter((r) => r.blocks > 0 && r.lba + r.blocks > lba);
      // A target that answers nothing useful: the rest is data (never claim zeros we were not told of).
      if (runs.length === 0 || runs[0]!.lba > lba) {
        yield { offset: at, length: end - at, data: true, zero: false, depth: 0 };
        return;
      }
      for (const run of runs) {
        const runStart = run.lba * this.#blockBytes;
        if (runStart > at) {
          // A gap the target did not describe: data, to be safe.
          yield { offset: at, length: Math.min(end, runStart) - at, data: true, zero: false, depth: 0 };
          at = Math.min(end, runStart);
          if (at >= end) return;
        }
        const runEnd = Math.min(end, (run.lba + run.blocks) * this.#blockBytes);
        if (runEnd <= at) continue;
        // Deallocated or anchored blocks read as zeros only when the target says so (LBPRZ).
        const unmapped = run.provisioning !== 0 && this.#zeroUnmapped;
        yield { offset: at, length: runEnd - at, data: !unmapped, zero: unmapped, depth: 0 };
        at = runEnd;
        if (at >= end) return;
      }
    }
  }

  async flush(options?: SignalOptions): Promise<void> {
    this.#check(options, false);
    if (this.#write) await this.#lun.synchronizeCache(options?.signal);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#ahead?.drain();
    await this.#session.logout();
  }

  /** Reads whole blocks, in pieces that are all in flight at once. */
  async #readAligned(offset: number, target: Uint8Array, signal?: AbortSignal): Promise<void> {
    const pieces: Promise<number>[] = [];
    for (let at = 0; at < target.byteLength; at += this.#pieceBytes) {
      const n = Math.min(this.#pieceBytes, target.byteLength - at);
      pieces.push(this.#lun.read((offset + at) / this.#blockBytes, n / this.#blockBytes, target.subarray(at, at + n), signal));
    }
    await settleAll(pieces);
  }

  async #writeAligned(offset: number, data: Uint8Array, signal?: AbortSignal): Promise<void> {
    const piece = Math.min(this.#pieceBytes, Math.max(this.#blockBytes, this.#session.params.maxBurstBytes - (this.#session.params.maxBurstBytes % this.#blockBytes)));
    const pieces: Promise<void>[] = [];
    for (let at = 0; at < data.byteLength; at += piece) {
      const n = Math.min(piece, data.byteLength - at);
      pieces.push(this.#lun.write((offset + at) / this.#blockBytes, n / this.#blockBytes, data.subarray(at, at + n), signal));
    }
    await settleAll(pieces);
  }

  #check(options: SignalOptions | undefined, writing: boolean): void {
    options?.signal?.throwIfAborted();
    if (this.#closed) throw new StateError(`Cannot use ${this.#label}: it is closed`, { state: "closed", driver: DRIVER });
    // The session's own ConnectError says why it ended (closed, timed out, refused).
    const ended = this.#session.failure;
    if (ended) throw ended;
    if (writing && !this.#write) throw new StateError(`Cannot write ${this.#label}: it is open read-only`, { state: "read-only", driver: DRIVER });
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

/** Waits for every piece (none is left running when one fails), then throws the first failure. */
async function settleAll<T>(pieces: Promise<T>[]): Promise<void> {
  const results = await Promise.allSettled(pieces);
  const failed = results.find((r) => r.status === "rejected");
  if (failed) throw (failed as PromiseRejectedResult).reason;
}
