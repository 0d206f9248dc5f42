/**
 * The optional `lseek` addon (`native/lseek`, built by `npm install` when a compiler is there): Node
 * has no `lseek` of its own, and without it holes can only be found by reading.
 *
 * @module
 */
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

/** The addon's functions. */
export interface LseekAddon {
  /**
   * `lseek(2)`.
   *
   * @param fd An OS file descriptor.
   * @param offset The offset (a safe integer).
   * @param whence `SEEK_SET`..`SEEK_HOLE` (Linux values: `SEEK_END` 2, `SEEK_DATA` 3, `SEEK_HOLE` 4).
   * @returns The new offset, or -1 for `ENXIO` (no data at or after `offset`, or `offset` past the end).
   * @throws {Error} With `code` (`"EBADF"`, `"EINVAL"`...) for any other failure.
   */
  lseek(fd: number, offset: number, whence: number): number;
  /**
   * `posix_fadvise(2)` (absent from an addon built before it was added).
   *
   * @param fd An OS file descriptor.
   * @param offset Start of the range.
   * @param length Its length.
   * @param advice `POSIX_FADV_*` (Linux: `WILLNEED` 3).
   * @throws {Error} With `code` for a failure.
   */
  fadvise?(fd: number, offset: number, length: number, advice: number): void;
  /**
   * `sync_file_range(2)` on a worker thread (absent from an addon built before it was added).
   *
   * @param fd An OS file descriptor.
   * @param offset Start of the range.
   * @param length Its length (`0`: to the end of the file).
   * @param flags `SYNC_FILE_RANGE_*` (Linux: `WRITE` 2).
   * @returns Once the call has returned.
   * @throws {Error} With `code`, as a rejection, for a failure.
   */
  syncFileRange?(fd: number, offset: number, length: number, flags: number): Promise<void>;
  /**
   * `copy_file_range(2)` on a worker thread (absent from an addon built before it was added).
   *
   * @param fdIn The source's OS descriptor.
   * @param offsetIn Where to read in it.
   * @param fdOut The target's OS descriptor.
   * @param offsetOut Where to write in it.
   * @param length At most this many bytes.
   * @returns The bytes copied (0 at the end of the source).
   * @throws {Error} With `code` (`"EXDEV"`, `"EINVAL"`, `"ENOSYS"`...), as a rejection, for a failure.
   */
  copyFileRange?(fdIn: number, offsetIn: number, fdOut: number, offsetOut: number, length: number): Promise<number>;
}

/** Where the built addon lies, relative to this module in the sources (`drivers/dir/`) and in `dist/drivers/dir/`. */
const CANDIDATES = ["../../native/lseek/build/Release/lseek.node", "../../../native/lseek/build/Release/lseek.node"];

/**
 * Loads the addon on Node. Never throws: a missing or broken build just means holes are found by reading.
 *
 * @param base The URL the candidate paths are relative to (this module's; tests pass another).
 * @returns The addon, or `undefined` when it is not built, cannot load, or this is not Node.
 * @example
 * ```ts
 * import { loadLseekAddon } from "./node_lseek.ts";
 * const addon = loadLseekAddon();
 * if (addon !== undefined && typeof addon.lseek !== "function") throw new Error("unexpected");
 * ```
 */
export function loadLseekAddon(base: string | URL = import.meta.url): LseekAddon | undefined {
  // Deno can load Node-API addons too, but it has its FFI path (and would need --allow-ffi for either).
  if (typeof (globalThis as { Deno?: unknown }).Deno !== "undefined") return undefined;
  let load: ReturnType<typeof createRequire>;
  try {
    load = createRequire(base);
  } catch {
    return undefined;
  }
  for (const candidate of CANDIDATES) {
    try {
      const addon = load(fileURLToPath(new URL(candidate, base))) as Partial<LseekAddon>;
      if (typeof addon.lseek === "function") return addon as LseekAddon;
    } catch {
      // Not built at this layout (or built for another Node ABI): try the next, then fall back to reading.
    }
  }
  return undefined;
}
