/**
 * One layer of an image chain: what it holds itself over a range, and its own bytes. The chain
 * ({@linkcode openImageChain}) resolves reads and extents through the layers; a layer never reads
 * through to its backing itself.
 *
 * @module
 */
import type { PositionalFile } from "./positional_file.ts";

/** How a layer holds one run of guest addresses. */
export type LayerRunKind = "data" | "zero" | "unallocated";

/** A run of guest addresses in one layer. */
export interface LayerRun {
  /** Start, in bytes. */
  offset: number;
  /** Length, in bytes. */
  length: number;
  /** `data`: the layer holds bytes; `zero`: reads as zeros without falling through; `unallocated`: falls through to the backing. */
  kind: LayerRunKind;
}

/** A backing reference as an image header records it. */
export interface LayerBackingRef {
  /** The name recorded (often relative to the image's directory). */
  path: string;
  /** Its format, when recorded. */
  format?: string;
}

/** Finds the data and holes of a raw file (the `dir` backend plugs `SEEK_DATA`/`SEEK_HOLE` in here). */
export type RawExtentsHook = (offset: number, length: number) => Promise<Array<{
  /** Start of the run, in bytes. */
  offset: number;
  /** Its length, in bytes. */
  length: number;
  /** Data (true) or a hole (false). */
  data: boolean;
}>>;

/** A read-only view of one layer. */
export interface ImageLayer {
  /** `"raw"` or `"qcow2"`. */
  readonly format: string;
  /** Guest-visible size of this layer. */
  readonly capacityBytes: number;
  /** The backing recorded in this layer, if any. */
  readonly backing?: LayerBackingRef;
  /**
   * The runs of a range, in order, covering `[offset, offset + length)` exactly (the range lies within capacity).
   *
   * @param offset Start.
   * @param length Length.
   */
  runs(offset: number, length: number): Promise<LayerRun[]>;
  /**
   * Reads this layer's own bytes over a range that lies within its `data` runs.
   *
   * @param offset Start.
   * @param target Where the bytes go (its whole length is filled).
   */
  readData(offset: number, target: Uint8Array): Promise<void>;
  /** Closes the layer's file. */
  close(): Promise<void>;
}

/** Reads guest-visible bytes from below a layer (its backing chain), for copy-on-write of partial clusters. */
export type ReadBelow = (offset: number, target: Uint8Array) => Promise<void>;

/** A layer that can be written: the top of a chain. */
export interface WritableLayer extends ImageLayer {
  /**
   * Writes guest bytes into this layer.
   *
   * @param offset Start.
   * @param data Bytes.
   * @param below Reads what lies below, to fill the rest of partially written clusters.
   */
  write(offset: number, data: Uint8Array, below: ReadBelow): Promise<void>;
  /**
   * Makes a range read as zeros without falling through; with `allocate` the zeros are really allocated.
   *
   * @param offset Start.
   * @param length Length.
   * @param allocate Whether the zeros must take real space.
   * @param below Reads what lies below (for partial clusters).
   */
  writeZeroes(offset: number, length: number, allocate: boolean, below: ReadBelow): Promise<void>;
  /**
   * Records a new backing (or none).
   *
   * @param backing The new backing reference.
   */
  setBacking?(backing: LayerBackingRef | undefined): Promise<void>;
  /** Makes written data durable. */
  flush(): Promise<void>;
}

/**
 * Opens a raw file as a layer: all of it is data (at depth 0) unless `rawExtents` says where its holes are.
 *
 * @param file The raw file; the layer owns it from now on.
 * @param options Optional hole finder and a capacity (default: the file's size).
 * @returns The writable layer.
 * @example
 * ```ts
 * import { createMemoryFile } from "virtkit";
 * import { openRawLayer } from "./layer.ts";
 * const layer = await openRawLayer(createMemoryFile(new Uint8Array(4096)));
 * const runs = await layer.runs(0, 4096);
 * if (runs.length !== 1 || runs[0]!.kind !== "data") throw new Error("unexpected");
 * ```
 */
export async function openRawLayer(
  file: PositionalFile,
  options: { rawExtents?: RawExtentsHook; capacityBytes?: number } = {},
): Promise<WritableLayer> {
  const capacityBytes = options.capacityBytes ?? (await file.size());
  const hook = options.rawExtents;
  return {
    format: "raw",
    capacityBytes,
    async runs(offset, length) {
      if (!hook) return [{ offset, length, kind: "data" }];
      const found = await hook(offset, length);
      const runs: LayerRun[] = [];
      let at = offset;
      for (const extent of found) {
        const start = Math.max(at, extent.offset);
        const end = Math.min(offset + length, extent.offset + extent.length);
        if (start !== at || end <= start) continue;
        runs.push({ offset: start, length: end - start, kind: extent.data ? "data" : "zero" });
        at = end;
      }
      // A hook that stops short leaves the rest as data: reading it is always correct.
      if (at < offset + length) runs.push({ offset: at, length: offset + length - at, kind: "data" });
      return runs;
    },
    async readData(offset, target) {
      const got = await file.read(offset, target);
      if (got < target.byteLength) target.fill(0, got);
    },
    write: (offset, data) => file.write(offset, data),
    async writeZeroes(offset, length) {
      const chunk = new Uint8Array(Math.min(length, 1 << 20));
      for (let at = offset; at < offset + length; at += chunk.byteLength) {
        await file.write(at, chunk.subarray(0, Math.min(chunk.byteLength, offset + length - at)));
      }
    },
    flush: () => file.flush(),
    close: () => file.close(),
  };
}
