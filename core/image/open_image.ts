/**
 * Opens an image file and its backing chain as one {@linkcode VolumeIO}: reads and extents resolve
 * through the layers as QEMU does (`qemu-img convert` bytes, `qemu-img map` depths); writes, zeroes and
 * backing changes go to the top layer.
 *
 * @module
 */
import { StateError, UnsupportedError } from "../errors.ts";
import type { SignalOptions } from "../options.ts";
import { type BackingRef, type Extent, MAX_BACKING_CHAIN_DEPTH } from "../volume.ts";
import type { VolumeIO } from "../volume_io.ts";
import { CorruptImageError } from "./errors.ts";
import type { ImageLayer, LayerBackingRef, RawExtentsHook, WritableLayer } from "./layer.ts";
import { openRawLayer } from "./layer.ts";
import type { PositionalFile } from "./positional_file.ts";
import { probeImage } from "./probe.ts";
import { openQcow2Layer } from "./qcow2/layer.ts";

/** A backing file the caller opened for the engine. */
export interface OpenedBacking {
  /** The file, open read-only; the chain owns it from now on. */
  file: PositionalFile;
  /** Its name for messages (default: the recorded path). */
  name?: string;
  /** Its format when the caller knows it better than the header (otherwise the header's, else probed). */
  format?: string;
  /** A stable identity (canonical path): a chain that meets the same key twice loops. */
  key?: string;
  /** Hole finder for a raw backing file. */
  rawExtents?: RawExtentsHook;
}

/** Options of {@linkcode openImage}. */
export interface OpenImageOptions {
  /** The image's name for messages (default `"image"`). */
  name?: string;
  /** Its identity for loop detection (a canonical path). */
  key?: string;
  /** `"raw"` or `"qcow2"`; probed from content when absent. */
  format?: string;
  /** Open for writing (default false). */
  writable?: boolean;
  /** Hole finder when the image is raw. */
  rawExtents?: RawExtentsHook;
  /**
   * Opens a backing file named by a header. Reject here what the caller forbids (a path that leaves the pool).
   *
   * @param ref The recorded name and format.
   * @param from The image that records it and its depth (0 = top).
   * @returns The opened file.
   */
  openBacking?(ref: LayerBackingRef, from: { name: string; depth: number }): Promise<OpenedBacking>;
  /** Most layers below the top (default {@linkcode MAX_BACKING_CHAIN_DEPTH}); a deeper chain is a {@linkcode CorruptImageError}. */
  maxChainDepth?: number;
}

/** An open image chain: a {@linkcode VolumeIO} that also tells its layers' formats. */
export interface ImageIO extends VolumeIO {
  /** Formats from the top down (`["qcow2", "raw"]`). */
  readonly formats: readonly string[];
}

/**
 * Opens an image (raw or qcow2) with its backing chain.
 *
 * @param file The top image file; the returned volume owns it (and every backing file) and closes them.
 * @param options Format, writability, backing opener and limits.
 * @returns The volume.
 * @throws {CorruptImageError} For a damaged image, a backing loop or a chain deeper than `maxChainDepth`.
 * @throws {UnsupportedError} For an image format or feature the engine cannot read.
 * @throws {TypeError} When the image has a backing but no `openBacking` was given.
 * @example
 * ```ts
 * import { createMemoryFile } from "virtkit";
 * import { createQcow2 } from "virtkit";
 * import { openImage } from "virtkit";
 * const file = createMemoryFile();
 * await createQcow2(file, { capacityBytes: 1 << 20 });
 * const io = await openImage(file, { writable: true });
 * await io.write(4096, new Uint8Array([1, 2, 3]));
 * const back = new Uint8Array(3);
 * await io.read(4096, back);
 * await io.close();
 * if (back[2] !== 3) throw new Error("unexpected");
 * ```
 */
export async function openImage(file: PositionalFile, options: OpenImageOptions = {}): Promise<ImageIO> {
  const name = options.name ?? "image";
  const maxDepth = options.maxChainDepth ?? MAX_BACKING_CHAIN_DEPTH;
  if (!Number.isInteger(maxDepth) || maxDepth < 0) throw new RangeError(`Invalid maxChainDepth ${maxDepth}`);
  const layers: ImageLayer[] = [];
  try {
    const top = await openLayer(file, name, options.format, options.writable ?? false, options.rawExtents);
    layers.push(top);
    const seen = new Set<string>(options.key !== undefined ? [options.key] : []);
    for (let layer: ImageLayer = top; layer.backing; ) {
      const depth = layers.length;
      const from = { name: depth === 1 ? name : `${layer.backing.path}`, depth: depth - 1 };
      if (depth > maxDepth) throw new CorruptImageError(name, `its backing chain is deeper than ${maxDepth} layers`);
      if (!options.openBacking) throw new TypeError(`Image "${name}" has a backing file ("${layer.backing.path}") but no openBacking was given`);
      const opened = await options.openBacking(layer.backing, from);
      const label = opened.name ?? layer.backing.path;
      if (opened.key !== undefined) {
        if (seen.has(opened.key)) {
          await opened.file.close();
          throw new CorruptImageError(name, `its backing chain loops (it meets "${opened.key}" twice)`);
        }
        seen.add(opened.key);
      }
      layer = await openLayer(opened.file, label, opened.format ?? layer.backing.format, false, opened.rawExtents);
      layers.push(layer);
    }
  } catch (error) {
    await Promise.allSettled(layers.map((layer) => layer.close()));
    throw error;
  }
  return createChainIO(layers, options, name);
}

async function openLayer(file: PositionalFile, name: string, format: string | undefined, writable: boolean, rawExtents?: RawExtentsHook): Promise<WritableLayer> {
  let chosen = format;
  try {
    if (chosen === undefined) chosen = (await probeImage(file, name)).format;
    if (chosen === "raw") return await openRawLayer(file, rawExtents ? { rawExtents } : {});
    if (chosen === "qcow2") return await openQcow2Layer(file, name, writable);
  } catch (error) {
    await file.close().catch(() => undefined);
    throw error;
  }
  await file.close().catch(() => undefined);
  throw new UnsupportedError("openImage", { detail: `image "${name}" has format "${chosen}"` });
}

function createChainIO(initial: ImageLayer[], options: OpenImageOptions, name: string): ImageIO {
  let layers = initial;
  let closed = false;
  const top = initial[0] as WritableLayer;
  const writable = options.writable ?? false;
  const live = (signal?: AbortSignal) => {
    if (closed) throw new StateError(`Cannot use image "${name}": it is closed`, { state: "closed" });
    signal?.throwIfAborted();
  };
  const mustWrite = () => {
    if (!writable) throw new StateError(`Cannot write image "${name}": it is open read-only`, { state: "read-only" });
  };
  const range = (offset: number, length: number) => {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > top.capacityBytes) {
      throw new RangeError(`Invalid range ${offset}+${length} for image "${name}" of ${top.capacityBytes} bytes`);
    }
  };
  const readFrom = async (index: number, offset: number, target: Uint8Array): Promise<void> => {
    const layer = layers[index];
    if (!layer) return void target.fill(0);
    const avail = Math.max(0, Math.min(target.byteLength, layer.capacityBytes - offset));
    if (avail < target.byteLength) target.fill(0, avail);
    if (avail === 0) return;
    for (const run of await layer.runs(offset, avail)) {
      const slice = target.subarray(run.offset - offset, run.offset - offset + run.length);
      if (run.kind === "data") await layer.readData(run.offset, slice);
      else if (run.kind === "zero") slice.fill(0);
      else await readFrom(index + 1, run.offset, slice);
    }
  };
  const below = (offset: number, target: Uint8Array) => readFrom(1, offset, target);
  const resolve = async (index: number, offset: number, length: number, out: Extent[]): Promise<void> => {
    const layer = layers[index]!;
    for (const run of await layer.runs(offset, length)) {
      if (run.kind !== "unallocated") {
        out.push({ offset: run.offset, length: run.length, data: run.kind === "data", zero: run.kind === "zero", depth: index });
        continue;
      }
      const next = layers[index + 1];
      const within = next ? Math.max(0, Math.min(run.length, next.capacityBytes - run.offset)) : 0;
      if (within > 0) await resolve(index + 1, run.offset, within, out);
      if (within < run.length) {
        out.push({ offset: run.offset + within, length: run.length - within, data: false, zero: true, depth: index });
      }
    }
  };
  const io: ImageIO = {
    get capacityBytes() {
      return top.capacityBytes;
    },
    get formats() {
      return layers.map((layer) => layer.format);
    },
    async read(offset, target, opts?: SignalOptions) {
      live(opts?.signal);
      if (!Number.isSafeInteger(offset) || offset < 0) throw new RangeError(`Invalid offset ${offset} for image "${name}"`);
      const n = Math.max(0, Math.min(target.byteLength, top.capacityBytes - offset));
      await readFrom(0, offset, target.subarray(0, n));
      return n;
    },
    async write(offset, data, opts?: SignalOptions) {
      live(opts?.signal);
      mustWrite();
      range(offset, data.byteLength);
      if (data.byteLength > 0) await top.write(offset, data, below);
    },
    async writeZeroes(offset, length, opts?: SignalOptions & { allocate?: boolean }) {
      live(opts?.signal);
      mustWrite();
      range(offset, length);
      if (length > 0) await top.writeZeroes(offset, length, opts?.allocate ?? false, below);
    },
    async *extents(offset, length, opts?: SignalOptions) {
      live(opts?.signal);
      range(offset, length);
      // Windows bound the runs held at once; a huge sparse image takes few windows, not millions.
      const window = Math.max(256 * 1024 * 1024, Math.ceil(length / 4096 / 65536) * 65536);
      let pending: Extent | undefined;
      for (let at = offset; at < offset + length; at += window) {
        live(opts?.signal);
        const out: Extent[] = [];
        await resolve(0, at, Math.min(window, offset + length - at), out);
        for (const extent of out) {
          if (pending && pending.depth === extent.depth && pending.data === extent.data && pending.zero === extent.zero) {
            pending = { ...pending, length: pending.length + extent.length };
          } else {
            if (pending) yield pending;
            pending = extent;
          }
        }
      }
      if (pending) yield pending;
    },
    async setBacking(backing: BackingRef | undefined, opts?: SignalOptions) {
      live(opts?.signal);
      mustWrite();
      if (!top.setBacking) throw new UnsupportedError("setBacking", { detail: `image "${name}" is ${top.format}, which has no backing file` });
      let keep = 0;
      if (backing !== undefined) {
        keep = layers.findIndex((_layer, i) => i > 0 && layers[i - 1]!.backing?.path === backing.path);
        if (keep < 0) throw new UnsupportedError("setBacking", { detail: `"${backing.path}" is not in the backing chain of image "${name}"` });
      }
      await top.setBacking(backing === undefined ? undefined : { path: backing.path, format: backing.format });
      const dropped = keep === 0 ? layers.slice(1) : layers.slice(1, keep);
      layers = keep === 0 ? [top] : [top, ...layers.slice(keep)];
      await Promise.allSettled(dropped.map((layer) => layer.close()));
    },
    async flush(opts?: SignalOptions) {
      live(opts?.signal);
      if (writable) await top.flush();
    },
    async close() {
      if (closed) return;
      closed = true;
      const results = await Promise.allSettled(layers.map((layer) => layer.close()));
      const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
      if (failed) throw failed.reason;
    },
  };
  return io;
}

/**
 * Opens a qcow2 image with its backing chain: {@linkcode openImage} with the format fixed.
 *
 * @param file The qcow2 file; the volume owns it.
 * @param options As for {@linkcode openImage} (its `format` is ignored).
 * @returns The volume.
 * @throws {CorruptImageError} When the file is not a valid qcow2 image.
 * @example
 * ```ts
 * import { createMemoryFile } from "virtkit";
 * import { createQcow2 } from "virtkit";
 * import { openQcow2 } from "./open_image.ts";
 * const file = createMemoryFile();
 * await createQcow2(file, { capacityBytes: 65536 });
 * const io = await openQcow2(file);
 * if (io.capacityBytes !== 65536) throw new Error("unexpected");
 * await io.close();
 * ```
 */
export function openQcow2(file: PositionalFile, options: OpenImageOptions = {}): Promise<ImageIO> {
  return openImage(file, { ...options, format: "qcow2" });
}
