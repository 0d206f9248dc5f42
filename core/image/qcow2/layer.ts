/**
 * A qcow2 image as a chain layer: the read side of {@linkcode Qcow2Image} and the write side of
 * {@linkcode Qcow2Writer} behind the {@linkcode WritableLayer} interface.
 *
 * @module
 */
import { StateError } from "../../errors.ts";
import type { LayerBackingRef, WritableLayer } from "../layer.ts";
import type { PositionalFile } from "../positional_file.ts";
import { Qcow2Image } from "./image.ts";
import { Qcow2Writer } from "./writer.ts";

/** A qcow2 layer with its resize operation. */
export interface Qcow2Layer extends WritableLayer {
  /**
   * Grows the virtual size.
   *
   * @param capacityBytes The new size.
   */
  resize(capacityBytes: number): Promise<void>;
}

/**
 * Opens a qcow2 file as a layer.
 *
 * @param file The file; the layer owns it.
 * @param name Its name for messages.
 * @param writable Whether writes are allowed.
 * @returns The layer.
 * @throws {CorruptImageError} For a damaged image.
 * @throws {UnsupportedError} For features the engine cannot read.
 * @example
 * ```ts
 * import { createMemoryFile } from "virtkit";
 * import { createQcow2 } from "virtkit";
 * import { openQcow2Layer } from "./layer.ts";
 * const file = createMemoryFile();
 * await createQcow2(file, { capacityBytes: 1 << 20 });
 * const layer = await openQcow2Layer(file, "disk.qcow2", false);
 * if ((await layer.runs(0, 1 << 20))[0]!.kind !== "unallocated") throw new Error("unexpected");
 * ```
 */
export async function openQcow2Layer(file: PositionalFile, name: string, writable: boolean): Promise<Qcow2Layer> {
  const image = await Qcow2Image.open(file, name);
  const writer = new Qcow2Writer(image);
  const mustWrite = () => {
    if (!writable) throw new StateError(`Cannot write image "${name}": it is open read-only`, { state: "read-only" });
  };
  return {
    format: "qcow2",
    get capacityBytes() {
      return image.capacityBytes;
    },
    get backing(): LayerBackingRef | undefined {
      const h = image.header;
      if (h.backingFile === undefined) return undefined;
      return h.backingFormat !== undefined ? { path: h.backingFile, format: h.backingFormat } : { path: h.backingFile };
    },
    async runs(offset, length) {
      await writer.idle();
      return image.runs(offset, length);
    },
    async readData(offset, target) {
      await writer.idle();
      return image.readData(offset, target);
    },
    write(offset, data, below) {
      mustWrite();
      return writer.write(offset, data, below);
    },
    writeZeroes(offset, length, allocate, below) {
      mustWrite();
      return writer.writeZeroes(offset, length, allocate, below, image.header.backingFile !== undefined);
    },
    setBacking(backing) {
      mustWrite();
      return writer.setBacking(backing);
    },
    resize(capacityBytes) {
      mustWrite();
      return writer.resize(capacityBytes);
    },
    async flush() {
      if (writable) await writer.flush();
    },
    async close() {
      try {
        if (writable) await writer.close();
        else await writer.idle();
      } finally {
        await file.close();
      }
    },
  };
}
