/**
 * `copy_file_range(2)`: the kernel copies a range from one open file to another, without the bytes
 * passing through this process (one copy in the page cache instead of a read into a buffer and a
 * write out of it, and no JavaScript per chunk). A clone between two raw files of one filesystem
 * copies its data extents this way; holes stay holes because only data extents are asked for.
 *
 * Node has no binding for it (the `native/lseek` addon brings one, on a worker thread); Deno calls libc
 * through FFI (a nonblocking symbol, on another thread too). Where neither is there, or the kernel
 * refuses the pair (`EXDEV` across filesystems on older kernels, `EINVAL`, `ENOSYS`, `EOPNOTSUPP`...),
 * a copy reads and writes instead.
 *
 * @module
 */
import { bindNative } from "./native_binding.ts";

/** Copies ranges between open files inside the kernel. */
export interface FileCopier {
  /** Which mechanism it uses, for reports. */
  readonly name: string;
  /**
   * Copies up to `length` bytes from `fdIn` at `offsetIn` to `fdOut` at `offsetOut`.
   *
   * @param fdIn The source's OS descriptor (open for reading).
   * @param offsetIn Where to read.
   * @param fdOut The target's OS descriptor (open for writing).
   * @param offsetOut Where to write.
   * @param length At most this many bytes.
   * @returns The bytes copied (0 at the end of the source), or `undefined` when the kernel cannot copy
   *   between these two files (the caller reads and writes instead).
   * @throws {Error} With `code` for a real failure (`EIO`, `ENOSPC`...).
   */
  copy(fdIn: number, offsetIn: number, fdOut: number, offsetOut: number, length: number): Promise<number | undefined>;
}

/** The errors that mean "not between these files" rather than "the copy failed". */
const CANNOT = new Set(["EXDEV", "EINVAL", "ENOSYS", "EOPNOTSUPP", "ENOTSUP", "EPERM", "ETXTBSY", "EBADF", "EISDIR", "EOVERFLOW"]);

let cached: FileCopier | null | undefined;

/**
 * The copier of this runtime: the addon's `copyFileRange` on Node (Linux), libc's `copy_file_range`
 * through FFI on Deno (Linux, with FFI allowed), else none.
 *
 * @returns The copier, or `undefined` when this runtime has no way to copy inside the kernel.
 * @example
 * ```ts
 * import { runtimeFileCopier } from "./file_copier.ts";
 * const copier = runtimeFileCopier();
 * if (copier !== undefined && typeof copier.copy !== "function") throw new Error("unexpected");
 * ```
 */
export function runtimeFileCopier(): FileCopier | undefined {
  if (cached === undefined) {
    cached = bindNative<FileCopier>({
      node: ({ copyFileRange }) =>
        typeof copyFileRange === "function"
          ? {
            name: "copy_file_range (addon)",
            copy: (fdIn, offsetIn, fdOut, offsetOut, length) =>
              copyFileRange(fdIn, offsetIn, fdOut, offsetOut, length).catch((error: unknown) => {
                if (CANNOT.has(String((error as { code?: unknown } | null)?.code))) return undefined;
                throw error;
              }),
          }
          : undefined,
      deno(libc) {
        const { copy_file_range } = libc({
          copy_file_range: { parameters: ["i32", "buffer", "i32", "buffer", "usize", "u32"], result: "isize", nonblocking: true },
        }) as {
          copy_file_range(fdIn: number, offIn: BigInt64Array, fdOut: number, offOut: BigInt64Array, length: bigint, flags: number): Promise<bigint | number>;
        };
        return {
          name: "copy_file_range (ffi)",
          async copy(fdIn, offsetIn, fdOut, offsetOut, length) {
            // Fresh offsets per call: the kernel writes them back, and calls may overlap.
            const offIn = new BigInt64Array([BigInt(offsetIn)]);
            const offOut = new BigInt64Array([BigInt(offsetOut)]);
            const result = Number(await copy_file_range(fdIn, offIn, fdOut, offOut, BigInt(length), 0));
            // FFI cannot read errno (the call ran on another thread): a failure is "not here", and the
            // read-and-write path that follows meets a real error again, with its code.
            return result < 0 ? undefined : result;
          },
        };
      },
    }) ?? null;
  }
  return cached ?? undefined;
}
