/**
 * Background writeback of a file being written by a copy, shared by the raw volume IO and the qcow2
 * image file of the `dir` backend: after every `thresholdBytes` written, the disk write of them starts
 * in the background (one at a time), so the disk writes while the copy goes on and the final flush has
 * only the tail left. A 1 GiB clone with 512 MiB of data spent ~300 ms in its final `fdatasync`
 * otherwise, about as long as the copy itself (4, 8 and 16 MiB measured alike, 64 MiB gained little:
 * the kernel's own writeback starts only at 10 % of RAM). With a {@linkcode WritebackStarter} that is
 * `sync_file_range(SYNC_FILE_RANGE_WRITE)` of the range written since the last one, else an `fdatasync`.
 *
 * @module
 */
import type { WritebackStarter } from "./writeback_starter.ts";

/** Default bytes written between two background writebacks. */
export const WRITEBACK_BYTES = 16 << 20;

/** Options of {@linkcode BackgroundWriteback}. */
export interface BackgroundWritebackOptions {
  /** The OS file descriptor (for the starter). */
  readonly fd: number;
  /** The file's `fdatasync`. */
  readonly datasync: () => Promise<void>;
  /** Starts writeback without a journal commit or a cache flush; absent: background `fdatasync`s. */
  readonly starter: WritebackStarter | undefined;
  /** Bytes written between two background writebacks; `0` never starts one. */
  readonly thresholdBytes: number;
}

/**
 * The background writeback of one open file. The owner reports every write ({@linkcode written}), calls
 * {@linkcode settle} before its own `fdatasync` (so an error of a background sync is reported by that
 * flush) and {@linkcode idle} before closing the descriptor.
 *
 * @example A background fdatasync starts once 8 bytes are written
 * ```ts
 * import { BackgroundWriteback } from "./background_writeback.ts";
 * let syncs = 0;
 * const writeback = new BackgroundWriteback({ fd: -1, datasync: async () => void syncs++, starter: undefined, thresholdBytes: 8 });
 * writeback.written(0, 4);
 * const before = syncs;
 * writeback.written(4, 4);
 * await writeback.settle();
 * if (before !== 0 || syncs !== 1) throw new Error("unexpected");
 * ```
 */
export class BackgroundWriteback {
  readonly #fd: number;
  readonly #datasync: () => Promise<void>;
  readonly #threshold: number;
  #starter: WritebackStarter | undefined;
  #unsynced = 0;
  /** The range written since the last background writeback started (empty when `from >= to`). */
  #dirtyFrom = Number.POSITIVE_INFINITY;
  #dirtyTo = 0;
  #running: Promise<void> | undefined;
  #error: { error: unknown } | undefined;

  /** @param options The descriptor, its `fdatasync`, the starter and the threshold. */
  constructor(options: BackgroundWritebackOptions) {
    if (!Number.isSafeInteger(options.thresholdBytes) || options.thresholdBytes < 0) {
      throw new RangeError(`Invalid writeback threshold ${options.thresholdBytes}: expected a byte count`);
    }
    this.#fd = options.fd;
    this.#datasync = options.datasync;
    this.#starter = options.starter;
    this.#threshold = options.thresholdBytes;
  }

  /**
   * Accounts written bytes toward the next background writeback, and starts it when due.
   *
   * @param offset Where the write landed.
   * @param length How many bytes.
   */
  written(offset: number, length: number): void {
    this.#unsynced += length;
    if (offset < this.#dirtyFrom) this.#dirtyFrom = offset;
    if (offset + length > this.#dirtyTo) this.#dirtyTo = offset + length;
    if (this.#threshold > 0 && this.#unsynced >= this.#threshold && this.#running === undefined) this.#start();
  }

  /**
   * Before the owner's `fdatasync`: waits for a running writeback and forgets what was written (the
   * `fdatasync` covers it).
   *
   * @throws The error of a background `fdatasync` (an EIO there belongs to this flush: the data it
   *   covered may not be on disk).
   */
  async settle(): Promise<void> {
    await this.#running;
    const failed = this.#error;
    this.#error = undefined;
    if (failed) throw failed.error;
    this.#unsynced = 0;
    this.#dirtyFrom = Number.POSITIVE_INFINITY;
    this.#dirtyTo = 0;
  }

  /** Resolves once no writeback runs: never close the descriptor under one (its number could be reused meanwhile). */
  async idle(): Promise<void> {
    await this.#running;
  }

  /**
   * One background writeback: `sync_file_range` of the range written since the last one when there is
   * a starter, else an `fdatasync`. The failure of an `fdatasync` is kept for the next {@linkcode settle};
   * a starter that fails is dropped (the flush's `fdatasync` reports what the disk did, errors included)
   * and the next writeback is an `fdatasync`.
   */
  #start(): void {
    this.#unsynced = 0;
    const starter = this.#starter;
    if (starter) {
      const from = this.#dirtyFrom;
      const length = this.#dirtyTo - from;
      this.#dirtyFrom = Number.POSITIVE_INFINITY;
      this.#dirtyTo = 0;
      if (length > 0) {
        this.#running = starter.start(this.#fd, from, length).then(
          () => {
            this.#running = undefined;
          },
          () => {
            this.#running = undefined;
            this.#starter = undefined;
          },
        );
        return;
      }
    }
    this.#running = this.#datasync().then(
      () => {
        this.#running = undefined;
      },
      (error: unknown) => {
        this.#running = undefined;
        this.#error ??= { error };
      },
    );
  }
}
