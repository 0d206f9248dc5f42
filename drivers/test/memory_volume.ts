/**
 * The sparse in-memory volume behind the `test` driver, the core tests and the benches: clusters in a
 * map, zero-cluster marks, an optional backing store (a chain, as qcow2 overlays have) and synthetic
 * content patterns, so a 1 GiB all-data template costs no memory.
 *
 * @module
 */
import type { BackingRef, Extent } from "../../core/volume.ts";
import type { VolumeIO } from "../../core/volume_io.ts";
import type { SignalOptions } from "../../core/options.ts";
import { StateError } from "../../core/errors.ts";
import { assertBytes, KiB } from "../../core/units.ts";

/** Synthetic content of a volume where it has no cluster of its own: seeded random bytes or one fill byte. */
export type MemoryPattern = { kind: "random"; seed: number } | { kind: "fill"; byte: number };

/** Options of {@linkcode MemoryVolumeStore}. */
export interface MemoryVolumeStoreOptions {
  /** Name used in error messages (default `"memory"`). */
  name?: string;
  /** Virtual size in bytes. */
  capacityBytes: number;
  /** Allocation unit, a power of two from 512 B to 16 MiB (default 64 KiB, as qcow2). */
  clusterBytes?: number;
  /** Synthetic content: the volume reads as all data, without memory. Excludes `backing`. */
  pattern?: MemoryPattern;
  /** The backing image recorded in the volume; resolved through `backingStore` or `resolveBacking`. */
  backing?: BackingRef;
  /** The store that serves `backing` (else `resolveBacking(backing)` is asked). */
  backingStore?: MemoryVolumeStore;
  /** Finds the store of a backing reference, for `backing` and for `setBacking()` on a handle. */
  resolveBacking?: (ref: BackingRef) => MemoryVolumeStore;
}

/** Visits cluster `c` from byte `inner`, for `n` bytes at `at` in the caller's range. */
type ClusterVisit = (c: number, inner: number, at: number, n: number, whole: boolean) => void;

const DATA = 1;
const ZERO = 2;
const PATTERN_BLOCK = KiB(64);

/**
 * A sparse volume held in memory. Reads follow `qemu` semantics: own clusters first, zero clusters read
 * as zeros without falling through, unallocated ranges fall through to the pattern or the backing
 * store (zeros past its end), and the bottom of the chain reads as zeros. Bad arguments and I/O out of
 * range throw `TypeError` / `RangeError`; a closed or read-only handle refuses with `StateError`.
 *
 * @example An overlay over a patterned base
 * ```ts
 * import { MemoryVolumeStore } from "./memory_volume.ts";
 * const base = new MemoryVolumeStore({ capacityBytes: 1 << 20, pattern: { kind: "fill", byte: 7 } });
 * const top = new MemoryVolumeStore({ capacityBytes: 1 << 20, backing: { path: "base", format: "raw" }, backingStore: base });
 * const io = top.open({ write: true });
 * await io.write(0, new Uint8Array(4).fill(9));
 * const bytes = new Uint8Array(8);
 * await io.read(0, bytes);
 * if (bytes.join() !== "9,9,9,9,7,7,7,7") throw new Error(bytes.join());
 * if (top.allocationBytes !== 65536) throw new Error("one cluster expected");
 * await io.close();
 * ```
 */
export class MemoryVolumeStore {
  /** Name used in error messages. */
  readonly name: string;
  /** Allocation unit in bytes. */
  readonly clusterBytes: number;
  #capacity: number;
  readonly #clusters = new Map<number, Uint8Array>();
  readonly #zeros = new Set<number>();
  /** Unallocated bytes at or past this offset read as zeros (what was past a shrink, or a grow). */
  #fallthroughEnd: number;
  readonly #pattern: ((pos: number, view: Uint8Array) => void) | undefined;
  #backing: BackingRef | undefined;
  #backingStore: MemoryVolumeStore | undefined;
  readonly #resolve: ((ref: BackingRef) => MemoryVolumeStore) | undefined;

  /** @param options Size, cluster size, content and backing. */
  constructor(options: MemoryVolumeStoreOptions) {
    if (options === null || typeof options !== "object") throw new TypeError("Cannot create memory volume: expected options");
    const { name = "memory", clusterBytes = KiB(64), pattern, backing, backingStore } = options;
    this.name = name;
    this.#fallthroughEnd = this.#capacity = assertBytes(options.capacityBytes, "capacityBytes");
    if (!Number.isInteger(clusterBytes) || clusterBytes < 512 || clusterBytes > 1 << 24 || (clusterBytes & (clusterBytes - 1)) !== 0) {
      throw new RangeError(`Invalid clusterBytes: ${clusterBytes} is not a power of two from 512 to 16777216`);
    }
    this.clusterBytes = clusterBytes;
    this.#resolve = options.resolveBacking;
    const why = pattern && (backing || backingStore) ? "a pattern excludes a backing" : backingStore && !backing ? "backingStore needs backing" : "";
    if (why) throw new TypeError(`Cannot create volume "${name}": ${why}`);
    this.#pattern = pattern === undefined ? undefined : patternReader(pattern);
    if (backing !== undefined) this.setBacking(backing, backingStore);
  }

  /** Virtual size in bytes. */
  get capacityBytes(): number {
    return this.#capacity;
  }

  /** Bytes allocated in this layer: its data clusters (a patterned volume counts as fully allocated). */
  get allocationBytes(): number {
    let count = this.#clusters.size;
    if (this.#pattern) {
      const patterned = Math.ceil(Math.min(this.#capacity, this.#fallthroughEnd) / this.clusterBytes);
      count += patterned;
      for (const c of this.#clusters.keys()) if (c < patterned) count--;
      for (const c of this.#zeros) if (c < patterned) count--;
    }
    return count * this.clusterBytes;
  }

  /** Bytes of memory the clusters really take. */
  get memoryBytes(): number {
    return this.#clusters.size * this.clusterBytes;
  }

  /** The backing image recorded in the volume. Setting `undefined` drops it; setting a ref resolves it. */
  get backing(): BackingRef | undefined {
    return this.#backing;
  }
  set backing(ref: BackingRef | undefined) {
    this.setBacking(ref);
  }

  /** The store serving the backing image, if any. */
  get backingStore(): MemoryVolumeStore | undefined {
    return this.#backingStore;
  }

  /**
   * Changes or drops the backing image; unallocated ranges fall through to the new one.
   * @param ref The new backing, or `undefined` to drop it.
   * @param store Its store (default: what `resolveBacking` finds).
   */
  setBacking(ref: BackingRef | undefined, store?: MemoryVolumeStore): void {
    if (ref === undefined) {
      this.#backing = this.#backingStore = undefined;
      return;
    }
    const message = `Cannot set the backing of volume "${this.name}"`;
    if (typeof ref !== "object" || ref === null || typeof ref.path !== "string") throw new TypeError(`${message}: expected { path, format }`);
    if (this.#pattern) throw new TypeError(`${message}: it has a pattern`);
    const target = store ?? this.#resolve?.(ref);
    if (!(target instanceof MemoryVolumeStore)) throw new TypeError(`${message}: no store for "${ref.path}"`);
    for (let s: MemoryVolumeStore | undefined = target; s; s = s.#backingStore) {
      if (s === this) throw new TypeError(`${message} to "${ref.path}": it would form a cycle`);
    }
    this.#backing = { path: ref.path, format: ref.format };
    this.#backingStore = target;
    this.#fallthroughEnd = this.#capacity;
  }

  /** Changes the size: shrinking drops what lies past the end, growing adds zeros. @param capacityBytes The new size. */
  resize(capacityBytes: number): void {
    const capacity = assertBytes(capacityBytes, "capacityBytes");
    if (capacity < this.#capacity) {
      const keep = Math.ceil(capacity / this.clusterBytes);
      for (const c of this.#clusters.keys()) if (c >= keep) this.#clusters.delete(c);
      for (const c of this.#zeros) if (c >= keep) this.#zeros.delete(c);
      const tail = capacity % this.clusterBytes;
      if (tail !== 0) this.#clusters.get(keep - 1)?.fill(0, tail);
      this.#fallthroughEnd = Math.min(this.#fallthroughEnd, capacity);
    }
    this.#capacity = capacity;
  }

  /** Opens a handle. @param mode `write: false` gives a read-only handle. @returns Positional I/O on this store. */
  open(mode: { write: boolean }): VolumeIO {
    const writable = mode?.write === true;
    let closed = false;
    const check = (verb: string, writes: boolean, options: SignalOptions | undefined): this => {
      options?.signal?.throwIfAborted();
      const message = `Cannot ${verb} volume "${this.name}"`;
      if (closed) throw new StateError(`${message}: its handle is closed`, { state: "closed", driver: "test" });
      if (writes && !writable) throw new StateError(`${message}: it is open read-only`, { state: "read-only", driver: "test" });
      return this;
    };
    const store = this;
    return {
      get capacityBytes() {
        return store.#capacity;
      },
      read: async (offset, target, options) => check("read", false, options).readAt(offset, target),
      write: async (offset, data, options) => check("write", true, options).writeAt(offset, data),
      writeZeroes: async (offset, length, options) => check("write", true, options).writeZeroesAt(offset, length, options?.allocate),
      async *extents(offset, length, options) {
        for (const extent of check("map", false, options).mapExtents(offset, length)) {
          options?.signal?.throwIfAborted();
          yield extent;
        }
      },
      setBacking: async (backing, options) => check("change the backing of", true, options).setBacking(backing),
      flush: async (options) => void check("flush", false, options),
      close: async () => void (closed = true),
    };
  }

  /**
   * Reads guest-visible bytes synchronously.
   * @param offset Where to start; at most the capacity.
   * @param target Filled from `offset`.
   * @returns Bytes read (fewer than asked only at the end of the volume).
   */
  readAt(offset: number, target: Uint8Array): number {
    this.#checkRange("read", offset, 0);
    if (!(target instanceof Uint8Array)) throw new TypeError(`Cannot read volume "${this.name}": target is not a Uint8Array`);
    const end = Math.min(offset + target.byteLength, this.#capacity);
    this.#read(offset, target.subarray(0, end - offset));
    return end - offset;
  }

  /**
   * Writes bytes into this layer synchronously (whole clusters are taken, partial ones are copied up first).
   * @param offset Where to write.
   * @param data The bytes.
   */
  writeAt(offset: number, data: Uint8Array): void {
    if (!(data instanceof Uint8Array)) throw new TypeError(`Cannot write volume "${this.name}": data is not a Uint8Array`);
    this.#eachCluster("write", offset, data.byteLength, (c, inner, at, n, whole) => {
      const part = data.subarray(at, at + n);
      if (whole) this.#own(c).set(part);
      else this.#copyUp(c).set(part, inner);
    });
  }

  /**
   * Makes a range read as zeros: zero clusters (no memory), or real zero clusters with `allocate`.
   * @param offset Start of the range.
   * @param length Its length.
   * @param allocate Store real zero clusters instead of zero marks.
   */
  writeZeroesAt(offset: number, length: number, allocate?: boolean): void {
    this.#eachCluster("write", offset, length, (c, inner, _at, n, whole) => {
      if (!whole) this.#copyUp(c).fill(0, inner, inner + n);
      else if (allocate) this.#own(c).fill(0);
      else {
        this.#clusters.delete(c);
        this.#zeros.add(c);
      }
    });
  }

  /**
   * The allocation map over a range, like `qemu-img map`: runs with equal `data`, `zero` and `depth` merged.
   * @param offset Start of the range.
   * @param length Its length (the range must lie within the volume).
   * @returns The extents, in order, covering the range exactly.
   */
  mapExtents(offset = 0, length = this.#capacity - offset): Extent[] {
    this.#checkRange("map", offset, length);
    const out: Extent[] = [];
    for (const e of this.#runs(offset, offset + length, 0)) {
      const last = out[out.length - 1];
      if (last?.data !== e.data || last.zero !== e.zero || last.depth !== e.depth) out.push(e);
      else out[out.length - 1] = { ...last, length: last.length + e.length };
    }
    return out;
  }

  #checkRange(verb: string, offset: number, length: number): void {
    assertBytes(offset, "offset");
    assertBytes(length, "length");
    if (offset + length <= this.#capacity) return;
    throw new RangeError(`Cannot ${verb} volume "${this.name}": range ${offset}+${length} passes its end (${this.#capacity} bytes)`);
  }

  /** Visits each cluster the range touches; `whole` when the range covers all of it that lies in the volume. */
  #eachCluster(verb: string, offset: number, length: number, each: ClusterVisit): void {
    this.#checkRange(verb, offset, length);
    const cb = this.clusterBytes;
    for (let pos = offset, end = offset + length; pos < end; ) {
      const c = Math.floor(pos / cb);
      const inner = pos - c * cb;
      const n = Math.min(cb - inner, end - pos);
      each(c, inner, pos - offset, n, inner === 0 && n === Math.min(cb, this.#capacity - c * cb));
      pos += n;
    }
  }

  /** Cluster `c` as data of this layer, with unspecified content (the caller overwrites all of it). */
  #own(c: number): Uint8Array {
    this.#zeros.delete(c);
    return this.#clusters.get(c) ?? this.#clusters.set(c, new Uint8Array(this.clusterBytes)).get(c)!;
  }

  /** The cluster as data of this layer, filled with what it showed before. */
  #copyUp(c: number): Uint8Array {
    let cluster = this.#clusters.get(c);
    if (cluster) return cluster;
    const cb = this.clusterBytes;
    cluster = new Uint8Array(cb);
    const start = c * cb;
    if (!this.#zeros.delete(c)) this.#readBelow(start, cluster.subarray(0, Math.min(cb, this.#capacity - start)));
    this.#clusters.set(c, cluster);
    return cluster;
  }

  /** Fills `view` (within the volume) with guest-visible bytes from `pos`. */
  #read(pos: number, view: Uint8Array): void {
    const cb = this.clusterBytes;
    for (const [start, end, kind] of this.#ownRuns(pos, pos + view.byteLength)) {
      if (kind === ZERO) view.fill(0, start - pos, end - pos);
      else if (kind === 0) this.#readBelow(start, view.subarray(start - pos, end - pos));
      else {
        for (let at = start, c = Math.floor(at / cb); at < end; at = ++c * cb) {
          view.set(this.#clusters.get(c)!.subarray(at - c * cb, Math.min(cb, end - c * cb)), at - pos);
        }
      }
    }
  }

  /** What an unallocated range shows: pattern, backing (zeros past its end) or zeros. */
  #readBelow(pos: number, view: Uint8Array): void {
    const through = Math.max(0, Math.min(view.byteLength, this.#fallthroughEnd - pos));
    if (through > 0 && this.#pattern) this.#pattern(pos, view.subarray(0, through));
    else if (through > 0 && this.#backingStore) {
      const backing = this.#backingStore;
      const got = Math.max(0, Math.min(through, backing.#capacity - pos));
      if (got > 0) backing.#read(pos, view.subarray(0, got));
      view.fill(0, got, through);
    } else view.fill(0, 0, through);
    view.fill(0, through);
  }

  *#runs(start: number, end: number, depth: number): Generator<Extent> {
    for (const [s, e, kind] of this.#ownRuns(start, end)) {
      if (kind === DATA) yield { offset: s, length: e - s, data: true, zero: false, depth };
      else if (kind === ZERO) yield { offset: s, length: e - s, data: false, zero: true, depth };
      else {
        const through = Math.max(s, Math.min(e, this.#fallthroughEnd));
        const backing = this.#backingStore;
        if (through > s && this.#pattern) yield { offset: s, length: through - s, data: true, zero: false, depth };
        let from = s;
        if (through > s && backing) {
          from = Math.max(s, Math.min(through, backing.#capacity));
          if (from > s) yield* backing.#runs(s, from, depth + 1);
        } else if (this.#pattern) from = through;
        if (e > from) yield { offset: from, length: e - from, data: false, zero: true, depth };
      }
    }
  }

  /** Runs of this layer alone as [start, end, kind]; kind 0 = unallocated. */
  #ownRuns(start: number, end: number): Array<[number, number, number]> {
    const cb = this.clusterBytes;
    const first = Math.floor(start / cb);
    const last = Math.ceil(end / cb) - 1;
    const kindOf = (c: number): number => (this.#clusters.has(c) ? DATA : this.#zeros.has(c) ? ZERO : 0);
    let marked: number[] = [];
    if ((this.#clusters.size + this.#zeros.size) * 4 < last - first) {
      // A large sparse range: visit only the marked clusters, not every cluster.
      marked = [...this.#clusters.keys(), ...this.#zeros].filter((c) => c > first && c <= last).sort((a, b) => a - b);
    } else for (let c = first + 1; c <= last; c++) if (kindOf(c) !== 0) marked.push(c);
    const runs: Array<[number, number, number]> = [[start, end, kindOf(first)]];
    const change = (c: number, kind: number): void => {
      const run = runs[runs.length - 1]!;
      if (run[2] === kind) return;
      run[1] = c * cb;
      runs.push([c * cb, end, kind]);
    };
    let prev = first;
    for (const c of marked) {
      if (c > prev + 1) change(prev + 1, 0);
      change(c, kindOf(c));
      prev = c;
    }
    if (last > prev) change(prev + 1, 0);
    return runs;
  }
}

/** A reader of synthetic content: each 64 KiB block is a window, chosen by a hash of its index, of one random table. */
function patternReader(pattern: MemoryPattern): (pos: number, view: Uint8Array) => void {
  if (pattern.kind === "fill") {
    const byte = pattern.byte;
    if (!Number.isInteger(byte) || byte < 0 || byte > 255) throw new RangeError(`Invalid pattern byte: ${byte}`);
    return (_pos, view) => view.fill(byte);
  }
  if (pattern.kind !== "random" || !Number.isInteger(pattern.seed)) {
    throw new TypeError(`Invalid pattern: expected { kind: "random", seed } or { kind: "fill", byte }`);
  }
  const table = new Uint8Array(2 * PATTERN_BLOCK);
  for (let i = 0, x = (pattern.seed ^ 0x9e3779b9) >>> 0 || 1; i < table.length; i++) {
    x ^= x << 13, x ^= x >>> 17, x ^= x << 5;
    table[i] = x & 0xff;
  }
  const seed = pattern.seed >>> 0;
  return (pos, view) => {
    for (let at = 0; at < view.byteLength; ) {
      const block = Math.floor((pos + at) / PATTERN_BLOCK);
      const inner = pos + at - block * PATTERN_BLOCK;
      const n = Math.min(PATTERN_BLOCK - inner, view.byteLength - at);
      let h = Math.imul((block ^ Math.floor(block / 2 ** 32) ^ seed) >>> 0, 0x45d9f3b);
      h = Math.imul(h ^ (h >>> 16), 0x45d9f3b);
      const shift = (h ^ (h >>> 16)) & (PATTERN_BLOCK - 1);
      view.set(table.subarray(shift + inner, shift + inner + n), at);
      at += n;
    }
  };
}
