/**
 * `posix_fadvise(POSIX_FADV_WILLNEED)` just ahead of sequential reads, so the kernel reads a cold source
 * in the background while the copy loop writes what it read: several reads in flight, as qemu-img
 * keeps with its parallel requests, without a second read path. Node has no binding for it (the
 * `native/lseek` addon brings one); Deno calls libc through FFI. Where neither is there, reads are
 * simply not advised.
 *
 * @module
 */
import type { HoleFinder } from "./hole_finder.ts";
import { bindNative } from "./native_binding.ts";

/** Linux's `POSIX_FADV_WILLNEED`. */
const POSIX_FADV_WILLNEED = 3;
/**
 * How far ahead of the last read the kernel is asked to read: 8 MiB, eight of the copy loop's chunks.
 * A cold 1 GiB clone with 512 MiB of data (python, pread + pwrite + fdatasync, page cache dropped):
 * 1.6-2.9 s plain, 0.9-2.3 s with this window, on this busy machine.
 */
export const READ_AHEAD_WINDOW_BYTES = 32 << 20;

/** Hints the kernel about reads to come. */
export interface ReadAdvisor {
  /** Which mechanism it uses, for reports. */
  readonly name: string;
  /**
   * Asks the kernel to start reading a range into the page cache.
   *
   * @param fd An OS file descriptor.
   * @param offset Start of the range.
   * @param length Its length.
   * @throws {Error} When the call fails (the caller stops advising that file).
   */
  willNeed(fd: number, offset: number, length: number): void;
}

let cached: ReadAdvisor | null | undefined;

/**
 * The advisor of this runtime: the addon's `fadvise` on Node (Linux), libc's `posix_fadvise` through FFI
 * on Deno (Linux, with FFI allowed), else none.
 *
 * @returns The advisor, or `undefined` when this runtime has no way to advise.
 * @example
 * ```ts
 * import { runtimeReadAdvisor } from "./read_advisor.ts";
 * const advisor = runtimeReadAdvisor();
 * if (advisor !== undefined && typeof advisor.willNeed !== "function") throw new Error("unexpected");
 * ```
 */
export function runtimeReadAdvisor(): ReadAdvisor | undefined {
  if (cached === undefined) {
    cached = bindNative<ReadAdvisor>({
      node: ({ fadvise }) =>
        typeof fadvise === "function"
          ? { name: "fadvise (addon)", willNeed: (fd, offset, length) => fadvise(fd, offset, length, POSIX_FADV_WILLNEED) }
          : undefined,
      deno(libc) {
        const { posix_fadvise } = libc({ posix_fadvise: { parameters: ["i32", "i64", "i64", "i32"], result: "i32" } }) as {
          posix_fadvise(fd: number, offset: bigint, length: bigint, advice: number): number;
        };
        return {
          name: "fadvise (ffi)",
          willNeed(fd, offset, length) {
            const err = posix_fadvise(fd, BigInt(offset), BigInt(length), POSIX_FADV_WILLNEED);
            if (err !== 0) throw new Error(`posix_fadvise failed with errno ${err}`);
          },
        };
      },
    }) ?? null;
  }
  return cached ?? undefined;
}

/**
 * Keeps the kernel's read-ahead a window in front of one file's reads: each read that moves forward
 * (also over a hole the copy skips, as long as it lands inside what was advised) advises only the part
 * of the window not advised yet, in steps of at least half a window; a read behind the last one or past
 * the advice starts a new window. The first failing call stops the advice for that file (a hint is
 * never worth an error). With a hole finder only the data in the window is advised: read-ahead of a
 * hole reads nothing from the disk but fills page cache with zeros the copy never asks for.
 *
 * @example
 * ```ts
 * import { ReadAhead } from "./read_advisor.ts";
 * const calls: number[][] = [];
 * const ahead = new ReadAhead({ name: "log", willNeed: (fd, o, n) => void calls.push([fd, o, n]) }, 7, 100, 30);
 * ahead.after(0, 10);
 * ahead.after(10, 10);
 * ahead.after(20, 10);
 * ahead.after(90, 10);
 * if (calls.join(";") !== "7,10,30;7,40,20") throw new Error(calls.join(";"));
 * ```
 */
export class ReadAhead {
  #advisor: ReadAdvisor | undefined;
  readonly #fd: number;
  readonly #end: number;
  readonly #window: number;
  readonly #finder: Pick<HoleFinder, "nextData" | "nextHole"> | undefined;
  /** Where the last read ended, and how far advice already reaches. */
  #lastEnd = -1;
  #advisedTo = 0;

  /**
   * @param advisor Makes the calls.
   * @param fd The file's OS descriptor.
   * @param sizeBytes The file's size: advice stops there.
   * @param windowBytes How far ahead to advise (default {@linkcode READ_AHEAD_WINDOW_BYTES}).
   * @param finder Where the data is in the file: only data is advised (absent: the whole window).
   */
  constructor(
    advisor: ReadAdvisor,
    fd: number,
    sizeBytes: number,
    windowBytes = READ_AHEAD_WINDOW_BYTES,
    finder?: Pick<HoleFinder, "nextData" | "nextHole">,
  ) {
    this.#advisor = advisor;
    this.#fd = fd;
    this.#end = sizeBytes;
    this.#window = windowBytes;
    this.#finder = finder;
  }

  /** Called after a read of `length` bytes at `offset`. */
  after(offset: number, length: number): void {
    if (!this.#advisor) return;
    const readEnd = offset + length;
    // Backwards, or past what was advised: a new run starts here.
    if (offset < this.#lastEnd || offset > this.#advisedTo) this.#advisedTo = readEnd;
    this.#lastEnd = readEnd;
    const from = Math.max(this.#advisedTo, readEnd);
    const to = Math.min(readEnd + this.#window, this.#end);
    if (to <= from) return;
    // Advice in window-sized steps: one call per window's worth of reads, not one per read.
    if (from > readEnd && to - from < this.#window / 2) return;
    try {
      this.#advise(from, to);
      this.#advisedTo = to;
    } catch {
      this.#advisor = undefined;
    }
  }

  /** Advises `[from, to)`, or only its data runs when the finder says where they are. */
  #advise(from: number, to: number): void {
    const finder = this.#finder;
    if (!finder) return this.#advisor!.willNeed(this.#fd, from, to - from);
    for (let at = from; at < to;) {
      const data = finder.nextData(this.#fd, at);
      if (data === undefined || data >= to) return;
      const hole = Math.min(finder.nextHole(this.#fd, data), to);
      this.#advisor!.willNeed(this.#fd, data, hole - data);
      at = hole;
    }
  }
}
