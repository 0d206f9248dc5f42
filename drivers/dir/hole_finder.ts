/**
 * Finding the holes of a file without reading them: `lseek(SEEK_DATA / SEEK_HOLE)` where the runtime
 * lets us call it, nothing otherwise (the caller then scans). Deno calls libc's `lseek` through its FFI
 * (`Deno.dlopen`, which needs `--allow-ffi` or `--allow-all`); Node 20 exposes no `lseek`, so on Node it
 * comes from the optional addon in `native/lseek` (built by `npm install`; see {@linkcode loadLseekAddon}).
 *
 * @module
 */

/** Asks the filesystem where data and holes are in an open file. */
export interface HoleFinder {
  /** Which mechanism it uses (`"lseek"`), for reports and benchmarks. */
  readonly name: string;
  /**
   * The first data byte at or after `offset`.
   *
   * @param fd An OS file descriptor open for reading.
   * @param offset Where to start looking.
   * @returns That offset, or `undefined` when only holes follow (up to the end of the file).
   * @throws {Error} When the filesystem cannot answer; the caller falls back to reading.
   */
  nextData(fd: number, offset: number): number | undefined;
  /**
   * The first hole byte at or after `offset` (the end of the file counts as a hole).
   *
   * @param fd An OS file descriptor open for reading.
   * @param offset Where to start looking; must be inside the file.
   * @returns That offset.
   * @throws {Error} When the filesystem cannot answer.
   */
  nextHole(fd: number, offset: number): number;
  /**
   * The file's size as `lseek(fd, 0, SEEK_END)` sees it: lets a caller check that `fd` is the OS
   * descriptor it thinks it is before trusting the answers.
   *
   * @param fd An OS file descriptor.
   * @returns The size, or -1 when the descriptor is not valid.
   */
  endOffset(fd: number): number;
}

const SEEK_END = 2;
const SEEK_DATA = 3;
const SEEK_HOLE = 4;
const ENXIO_RESULT = -1n;

import { bindNative } from "./native_binding.ts";
import type { LseekAddon } from "./node_lseek.ts";

let cached: HoleFinder | null | undefined;

/**
 * The best {@linkcode HoleFinder} this runtime offers: libc's `lseek` through Deno's FFI when present
 * and permitted; on Node, the `native/lseek` addon when it was built; `undefined` otherwise (no FFI
 * permission, no addon, not Linux).
 *
 * @returns The finder, or `undefined` when holes can only be found by reading.
 * @example
 * ```ts
 * import { runtimeHoleFinder } from "./hole_finder.ts";
 * const finder = runtimeHoleFinder();
 * if (finder !== undefined && finder.name !== "lseek") throw new Error("unexpected");
 * ```
 */
export function runtimeHoleFinder(): HoleFinder | undefined {
  if (cached === undefined) {
    cached = bindNative<HoleFinder>({
      node: nodeAddonFinder,
      deno(libc) {
        const { lseek } = libc({ lseek: { parameters: ["i32", "i64", "i32"], result: "i64" } }) as {
          lseek(fd: number, offset: bigint, whence: number): bigint;
        };
        return lseekHoleFinder(lseek);
      },
    }) ?? null;
  }
  return cached ?? undefined;
}

/** On Node: the addon's `lseek` (Linux only: the whence values are Linux's). */
function nodeAddonFinder(addon: LseekAddon): HoleFinder {
  return lseekHoleFinder((fd, offset, whence) => {
    try {
      return BigInt(addon.lseek(fd, Number(offset), whence));
    } catch (error) {
      // endOffset's contract: -1 for a descriptor that is not valid. Other calls report the errno.
      if (whence === SEEK_END) return -1n;
      throw error;
    }
  });
}

/**
 * A {@linkcode HoleFinder} over an `lseek(fd, offset, whence)` function with Linux whence values.
 *
 * @param lseek The system call, returning the new offset or -1.
 * @returns The finder.
 * @example
 * ```ts
 * import { lseekHoleFinder } from "./hole_finder.ts";
 * // A fake file of 100 bytes with data in [10, 20).
 * const finder = lseekHoleFinder((_fd, offset, whence) => {
 *   const at = Number(offset);
 *   if (whence === 2) return 100n;
 *   if (whence === 3) return at < 20 ? BigInt(Math.max(at, 10)) : -1n;
 *   return BigInt(at >= 10 && at < 20 ? 20 : at);
 * });
 * if (finder.nextData(3, 0) !== 10 || finder.nextHole(3, 10) !== 20 || finder.nextData(3, 20) !== undefined) {
 *   throw new Error("unexpected");
 * }
 * ```
 */
export function lseekHoleFinder(lseek: (fd: number, offset: bigint, whence: number) => bigint): HoleFinder {
  return {
    name: "lseek",
    nextData(fd, offset) {
      const at = lseek(fd, BigInt(offset), SEEK_DATA);
      // -1 here is ENXIO: no data at or after the offset. Other errors (EBADF) fail nextHole or endOffset too.
      return at === ENXIO_RESULT ? undefined : Number(at);
    },
    nextHole(fd, offset) {
      const at = lseek(fd, BigInt(offset), SEEK_HOLE);
      if (at < 0n) throw new Error(`lseek(SEEK_HOLE) failed on descriptor ${fd} at ${offset}`);
      return Number(at);
    },
    endOffset(fd) {
      return Number(lseek(fd, 0n, SEEK_END));
    },
  };
}
