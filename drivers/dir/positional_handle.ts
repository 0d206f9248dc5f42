/**
 * The image engine's {@linkcode PositionalFile} over an open {@linkcode DirFile}.
 *
 * @module
 */
import type { PositionalFile } from "../../core/image/positional_file.ts";
import type { DirFile } from "./dir_fs.ts";

/**
 * Wraps an open file for the image engine (probe, qcow2 create and I/O). Closing the wrapper closes the file.
 *
 * @param file The open file.
 * @returns The positional file.
 * @example
 * ```ts
 * import fsp from "node:fs/promises";
 * import os from "node:os";
 * import path from "node:path";
 * import { positionalFileOf } from "./positional_handle.ts";
 * const dir = await fsp.mkdtemp(path.join(os.tmpdir(), "pos-"));
 * try {
 *   const file = positionalFileOf(await fsp.open(path.join(dir, "f"), "w+"));
 *   await file.write(10, new Uint8Array([7]));
 *   const size = await file.size();
 *   await file.close();
 *   if (size !== 11) throw new Error("unexpected");
 * } finally {
 *   await fsp.rm(dir, { recursive: true, force: true });
 * }
 * ```
 */
export function positionalFileOf(file: DirFile): PositionalFile {
  return {
    async read(offset, target) {
      let done = 0;
      while (done < target.byteLength) {
        const { bytesRead } = await file.read(target, done, target.byteLength - done, offset + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      return done;
    },
    async write(offset, data) {
      let done = 0;
      while (done < data.byteLength) {
        const { bytesWritten } = await file.write(data, done, data.byteLength - done, offset + done);
        done += bytesWritten;
      }
    },
    size: async () => (await file.stat()).size,
    truncate: (sizeBytes) => file.truncate(sizeBytes),
    // fdatasync, as QEMU flushes: the size and allocation are included, the timestamps are not needed.
    flush: () => file.datasync(),
    close: () => file.close(),
  };
}
