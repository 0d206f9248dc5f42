/**
 * `sync_file_range(SYNC_FILE_RANGE_WRITE)`: starts the disk write of what a copy has written so far,
 * without waiting for it, without committing the journal and without flushing the disk's cache. A
 * durable clone keeps the disk busy this way while it copies, and its final `fdatasync` (the one that
 * makes it durable) has only the tail left.
 *
 * A background `fdatasync` every 16 MiB did the same job before, but each one commits the ext4 journal
 * and flushes the virtual disk's cache: a 1 GiB / 512 MiB-data clone on Node ran 27 of them, and its
 * `pwrite`s took 0.55 ms each instead of 0.29 ms while they ran (strace -f -T, same machine, same
 * minute). Node has no binding for the call (the `native/lseek` addon brings one, on a worker thread);
 * Deno calls libc through FFI (a nonblocking symbol, so it runs off the main thread too). Where neither
 * is there, the raw volume IO keeps the background `fdatasync`.
 *
 * @module
 */
import { bindNative } from "./native_binding.ts";

/** Linux's `SYNC_FILE_RANGE_WRITE`. */
const SYNC_FILE_RANGE_WRITE = 2;

/** Starts writeback of a written range. */
export interface WritebackStarter {
  /** Which mechanism it uses, for reports. */
  readonly name: string;
  /**
   * Starts the write to disk of the dirty pages of a range (not waiting for them).
   *
   * @param fd An OS file descriptor open for writing.
   * @param offset Start of the range.
   * @param length Its length (`0`: to the end of the file).
   * @returns Once the write is submitted.
   * @throws {Error} When the call fails (the caller goes back to `fdatasync`).
   */
  start(fd: number, offset: number, length: number): Promise<void>;
}

let cached: WritebackStarter | null | undefined;

/**
 * The writeback starter of this runtime: the addon's `syncFileRange` on Node (Linux), libc's
 * `sync_file_range` through FFI on Deno (Linux, with FFI allowed), else none.
 *
 * @returns The starter, or `undefined` when this runtime has no way to start writeback.
 * @example
 * ```ts
 * import { runtimeWritebackStarter } from "./writeback_starter.ts";
 * const starter = runtimeWritebackStarter();
 * if (starter !== undefined && typeof starter.start !== "function") throw new Error("unexpected");
 * ```
 */
export function runtimeWritebackStarter(): WritebackStarter | undefined {
  if (cached === undefined) {
    cached = bindNative<WritebackStarter>({
      node: ({ syncFileRange }) =>
        typeof syncFileRange === "function"
          ? { name: "sync_file_range (addon)", start: (fd, offset, length) => syncFileRange(fd, offset, length, SYNC_FILE_RANGE_WRITE) }
          : undefined,
      deno(libc) {
        const { sync_file_range } = libc({
          sync_file_range: { parameters: ["i32", "i64", "i64", "u32"], result: "i32", nonblocking: true },
        }) as { sync_file_range(fd: number, offset: bigint, length: bigint, flags: number): Promise<number> };
        return {
          name: "sync_file_range (ffi)",
          async start(fd, offset, length) {
            // FFI cannot read errno (the call ran on another thread): -1 is just "failed".
            if ((await sync_file_range(fd, BigInt(offset), BigInt(length), SYNC_FILE_RANGE_WRITE)) !== 0) {
              throw new Error(`sync_file_range failed on descriptor ${fd}`);
            }
          },
        };
      },
    }) ?? null;
  }
  return cached ?? undefined;
}
