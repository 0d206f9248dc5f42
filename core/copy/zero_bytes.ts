/**
 * The all-zero check of the copy paths: a chunk of zeros is a hole that need not be written (copy loop,
 * `virtkit vol-download`) or sent (virtkitd's sparse downloads).
 *
 * @module
 */

/**
 * True when every byte of `bytes` is 0. Reads 16 words OR-ed per step while aligned (about twice the
 * speed of a word-by-word loop on Node 20, which checks 1 MiB chunks of zeros at ~5 GiB/s otherwise).
 *
 * @param bytes The chunk.
 * @returns Whether it is all zeros (true for an empty chunk).
 * @example
 * ```ts
 * import { isAllZero } from "./zero_bytes.ts";
 * const chunk = new Uint8Array(65_537);
 * if (!isAllZero(chunk) || !isAllZero(chunk.subarray(3))) throw new Error("unexpected");
 * chunk[65_536] = 1;
 * if (isAllZero(chunk) || !isAllZero(chunk.subarray(0, 65_536))) throw new Error("unexpected");
 * ```
 */
export function isAllZero(bytes: Uint8Array): boolean {
  const aligned = bytes.byteOffset % 4 === 0 ? bytes.byteLength >>> 2 : 0;
  if (aligned > 0) {
    const w = new Uint32Array(bytes.buffer, bytes.byteOffset, aligned);
    const blocks = aligned & ~15;
    for (let i = 0; i < blocks; i += 16) {
      if ((w[i]! | w[i + 1]! | w[i + 2]! | w[i + 3]! | w[i + 4]! | w[i + 5]! | w[i + 6]! | w[i + 7]! |
          w[i + 8]! | w[i + 9]! | w[i + 10]! | w[i + 11]! | w[i + 12]! | w[i + 13]! | w[i + 14]! | w[i + 15]!) !== 0) return false;
    }
    for (let i = blocks; i < aligned; i++) if (w[i] !== 0) return false;
  }
  for (let i = aligned << 2; i < bytes.byteLength; i++) if (bytes[i] !== 0) return false;
  return true;
}
