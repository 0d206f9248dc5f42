/**
 * Growing a qcow2 image in place (`qemu-img resize` without `--shrink`).
 *
 * @module
 */
import type { PositionalFile } from "../positional_file.ts";
import { openQcow2Layer } from "./layer.ts";

/**
 * Grows a qcow2 image's virtual size, moving its L1 table to a bigger one when the new size needs it
 * (in crash-safe order: new table, refcounts, then the header switches to it). The file stays open.
 *
 * @param file The image file, open for writing; it is flushed, not closed.
 * @param capacityBytes The new size, rounded up to a multiple of 512.
 * @param name The image's name for messages.
 * @throws {RangeError} For a bad size, or one whose L1 table would exceed 32 MiB.
 * @throws {UnsupportedError} When the new size is smaller (shrinking is not supported).
 * @throws {CorruptImageError} For a damaged image.
 * @example
 * ```ts
 * import { createMemoryFile } from "virtkit";
 * import { createQcow2 } from "virtkit";
 * import { resizeQcow2 } from "./resize.ts";
 * import { probeImage } from "virtkit";
 * const file = createMemoryFile();
 * await createQcow2(file, { capacityBytes: 1 << 20 });
 * await resizeQcow2(file, 64 * 2 ** 30);
 * if ((await probeImage(file)).virtualSizeBytes !== 64 * 2 ** 30) throw new Error("unexpected");
 * ```
 */
export async function resizeQcow2(file: PositionalFile, capacityBytes: number, name = "image"): Promise<void> {
  if (!Number.isSafeInteger(capacityBytes) || capacityBytes < 0) throw new RangeError(`Invalid capacity ${capacityBytes} for image "${name}"`);
  // The layer would close the file; the caller keeps it, so hand the layer a view that does not.
  const view: PositionalFile = { ...file, read: file.read.bind(file), write: file.write.bind(file), size: file.size.bind(file),
    truncate: file.truncate.bind(file), flush: file.flush.bind(file), close: () => Promise.resolve() };
  const layer = await openQcow2Layer(view, name, true);
  await layer.resize(capacityBytes);
  await layer.flush();
  await layer.close();
}
