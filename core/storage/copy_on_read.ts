/**
 * The target a pull writes through while a guest writes the same volume (the `test` driver's live pull):
 * each chunk is written, one step with no guest write in between, only where the volume still reads
 * through to its backing, as QEMU's stream job populates by copy-on-read and never overwrites what the
 * guest wrote since the chunk was read.
 *
 * @module
 */
import type { SignalOptions } from "../options.ts";
import type { VolumeIO } from "../volume_io.ts";

/** Serializes a job's writes with writes it does not make (a running guest's). */
export interface WriteGuard {
  /**
   * Runs `work` while no guest write to the disk is in flight; guest writes wait until it settles.
   *
   * @param work The job's step.
   * @returns What `work` returns.
   */
  exclusive<T>(work: () => Promise<T>): Promise<T>;
}

/**
 * Wraps a volume so writes and zeroes land only where it still reads from its backing chain (depth > 0).
 *
 * @param io The volume, with its chain.
 * @param guard The guest's writes.
 * @returns The target for the copy loop.
 * @example A chunk the guest wrote meanwhile is kept: only the part still below is written
 * ```ts
 * import { copyOnReadTarget } from "./copy_on_read.ts";
 * const written: string[] = [];
 * const io = {
 *   async *extents() {
 *     yield { offset: 0, length: 4, data: true, zero: false, depth: 0 };
 *     yield { offset: 4, length: 4, data: true, zero: false, depth: 1 };
 *   },
 *   async write(offset: number, data: Uint8Array) { written.push(`${offset}:${data.join("")}`); },
 *   async writeZeroes() {},
 * };
 * const target = copyOnReadTarget(io as never, { exclusive: (work) => work() });
 * await target.write(0, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]));
 * if (written.join() !== "4:5678") throw new Error("unexpected");
 * ```
 */
export function copyOnReadTarget(io: Pick<VolumeIO, "extents" | "write" | "writeZeroes">, guard: WriteGuard): Pick<VolumeIO, "write" | "writeZeroes"> {
  const below = async (offset: number, length: number, options?: SignalOptions) => {
    const runs: Array<{ offset: number; length: number }> = [];
    for await (const e of io.extents(offset, length, options)) {
      const from = Math.max(offset, e.offset);
      const to = Math.min(offset + length, e.offset + e.length);
      if (e.depth === 0 || to <= from) continue;
      const last = runs[runs.length - 1];
      if (last && last.offset + last.length === from) last.length += to - from;
      else runs.push({ offset: from, length: to - from });
    }
    return runs;
  };
  return {
    write: (offset, data, options) =>
      guard.exclusive(async () => {
        for (const run of await below(offset, data.byteLength, options)) {
          await io.write(run.offset, data.subarray(run.offset - offset, run.offset - offset + run.length), options);
        }
      }),
    writeZeroes: (offset, length, options) =>
      guard.exclusive(async () => {
        for (const run of await below(offset, length, options)) await io.writeZeroes(run.offset, run.length, options);
      }),
  };
}
