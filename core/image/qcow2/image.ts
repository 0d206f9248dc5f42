/**
 * An open qcow2 image, read side: header, L1 table, a bounded L2 table cache, cluster lookups, the
 * layer's runs and its own bytes (plain and compressed clusters). The write side lives in `writer.ts`.
 *
 * @module
 */
import { UnsupportedError } from "../../errors.ts";
import { CorruptImageError } from "../errors.ts";
import type { LayerRun } from "../layer.ts";
import type { PositionalFile } from "../positional_file.ts";
import {
  INCOMPAT_COMPRESSION,
  INCOMPAT_CORRUPT,
  INCOMPAT_DATA_FILE,
  INCOMPAT_DIRTY,
  INCOMPAT_EXTL2,
  parseQcow2Header,
  type Qcow2Header,
} from "./header.ts";
import { inflateCluster } from "./inflate.ts";

/** Cluster states an L2 entry can describe. */
export const UNALLOCATED = 0;
/** Reads as zeros (v3 zero flag), with or without a preallocated host cluster. */
export const ZERO = 1;
/** A plain data cluster. */
export const DATA = 2;
/** A compressed cluster. */
export const COMPRESSED = 3;

/** A decoded L2 entry. */
export interface ClusterEntry {
  /** One of {@linkcode UNALLOCATED}, {@linkcode ZERO}, {@linkcode DATA}, {@linkcode COMPRESSED}. */
  kind: number;
  /** Host offset (of the cluster, or of the compressed bytes); 0 when none. */
  host: number;
  /** Bytes of compressed data stored (compressed only). */
  compressedBytes: number;
}

/** A cached L2 table. */
export interface L2Table {
  /** Host offset of the table. */
  offset: number;
  /** Its bytes. */
  bytes: Uint8Array;
  /** A view over them. */
  view: DataView;
}

const U32 = 4294967296;
const NO_ENTRY: ClusterEntry = Object.freeze({ kind: UNALLOCATED, host: 0, compressedBytes: 0 });
const KNOWN_INCOMPAT = INCOMPAT_DIRTY | INCOMPAT_CORRUPT | INCOMPAT_DATA_FILE | INCOMPAT_COMPRESSION | INCOMPAT_EXTL2;
const L2_CACHE_BYTES = 32 * 1024 * 1024;
const HEADER_READ_BYTES = 65536;

/** The read side of an open qcow2 image. */
export class Qcow2Image {
  /** The image's name, for messages. */
  readonly name: string;
  /** The file. */
  readonly file: PositionalFile;
  /** The parsed header (kept current by writes). */
  header: Qcow2Header;
  /** The file's size as far as the engine knows (grows with its appends). */
  fileBytes: number;
  /** Host offsets of the L2 tables (0: none). */
  l1: Float64Array;
  /** Cluster size. */
  readonly clusterBytes: number;
  /** Entries per L2 table. */
  readonly l2Entries: number;
  /** Tables the writer is changing: never evicted while it works. */
  readonly pinned = new Set<number>();
  readonly #cache = new Map<number, L2Table>();
  readonly #loading = new Map<number, Promise<L2Table>>();
  readonly #cacheLimit: number;
  #lastInflated: { host: number; bytes: Uint8Array } | undefined;

  private constructor(file: PositionalFile, name: string, header: Qcow2Header, fileBytes: number, l1: Float64Array) {
    this.file = file;
    this.name = name;
    this.header = header;
    this.fileBytes = fileBytes;
    this.l1 = l1;
    this.clusterBytes = header.clusterBytes;
    this.l2Entries = header.clusterBytes / 8;
    this.#cacheLimit = Math.max(16, Math.floor(L2_CACHE_BYTES / header.clusterBytes));
  }

  /**
   * Opens a qcow2 image and checks what reading needs.
   *
   * @param file The file.
   * @param name Its name for messages.
   * @returns The image.
   * @throws {CorruptImageError} For a damaged header or L1 table.
   * @throws {UnsupportedError} For encryption, extended L2 entries, external data files or unknown features.
   */
  static async open(file: PositionalFile, name: string): Promise<Qcow2Image> {
    const fileBytes = await file.size();
    // The header and its extensions fill at most the first cluster: read 64 KiB (the usual cluster),
    // and the rest of a bigger first cluster only when the header says so, not 2 MiB on every open.
    let first = new Uint8Array(Math.min(fileBytes, HEADER_READ_BYTES));
    let got = await file.read(0, first);
    const clusterBits = got >= 24 ? new DataView(first.buffer, 0, got).getUint32(20) : 0;
    if (got === first.byteLength && clusterBits > 16 && clusterBits <= 21) {
      const whole = new Uint8Array(Math.min(fileBytes, 2 ** clusterBits));
      whole.set(first);
      got += await file.read(got, whole.subarray(got));
      first = whole;
    }
    const header = parseQcow2Header(first.subarray(0, got), fileBytes, name);
    const unsupported = (detail: string) => new UnsupportedError("openImage", { detail: `image "${name}" ${detail}` });
    if (header.cryptMethod !== 0) throw unsupported(`is encrypted (${header.cryptMethod === 1 ? "AES" : "LUKS"})`);
    if (header.incompatibleFeatures & INCOMPAT_EXTL2) throw unsupported("uses extended L2 entries (subclusters)");
    if (header.incompatibleFeatures & INCOMPAT_DATA_FILE) throw unsupported("keeps its data in an external data file");
    const unknown = header.incompatibleFeatures & ~KNOWN_INCOMPAT;
    if (unknown !== 0n) throw unsupported(`has unknown incompatible features 0x${unknown.toString(16)}`);
    const l1 = new Float64Array(header.l1Size);
    if (header.l1Size > 0) {
      const bytes = new Uint8Array(header.l1Size * 8);
      if ((await file.read(header.l1TableOffset, bytes)) !== bytes.byteLength) {
        throw new CorruptImageError(name, "the L1 table is truncated");
      }
      const view = new DataView(bytes.buffer);
      for (let i = 0; i < header.l1Size; i++) {
        const host = (view.getUint32(i * 8) & 0x00ffffff) * U32 + ((view.getUint32(i * 8 + 4) & 0xfffffe00) >>> 0);
        if (host % header.clusterBytes !== 0) throw new CorruptImageError(name, `L1 entry ${i} points at unaligned offset ${host}`);
        if (host !== 0 && host + header.clusterBytes > fileBytes) {
          throw new CorruptImageError(name, `L1 entry ${i} points past the end of the file (${host})`);
        }
        l1[i] = host;
      }
    }
    return new Qcow2Image(file, name, header, fileBytes, l1);
  }

  /** Guest-visible size. */
  get capacityBytes(): number {
    return this.header.sizeBytes;
  }

  /**
   * The L2 table of one L1 entry, from the cache or the file.
   *
   * @param l1Index Index into the L1 table.
   * @returns The table, or `undefined` when the entry is empty.
   */
  async l2Table(l1Index: number): Promise<L2Table | undefined> {
    const offset = this.l1[l1Index] ?? 0;
    if (offset === 0) return undefined;
    const cached = this.#cache.get(offset);
    if (cached) {
      // Refresh its place in the insertion order: a cheap LRU.
      this.#cache.delete(offset);
      this.#cache.set(offset, cached);
      return cached;
    }
    let loading = this.#loading.get(offset);
    if (!loading) {
      loading = this.#load(offset).finally(() => this.#loading.delete(offset));
      this.#loading.set(offset, loading);
    }
    return await loading;
  }

  /**
   * Puts a table the writer made into the cache.
   *
   * @param table The new table.
   */
  adopt(table: L2Table): void {
    this.#cache.set(table.offset, table);
    this.#evict();
  }

  async #load(offset: number): Promise<L2Table> {
    if (offset + this.clusterBytes > this.fileBytes) throw new CorruptImageError(this.name, `an L2 table at ${offset} lies past the end of the file`);
    const bytes = new Uint8Array(this.clusterBytes);
    if ((await this.file.read(offset, bytes)) !== bytes.byteLength) {
      throw new CorruptImageError(this.name, `the L2 table at ${offset} is truncated`);
    }
    const table = { offset, bytes, view: new DataView(bytes.buffer) };
    const raced = this.#cache.get(offset);
    if (raced) return raced;
    this.#cache.set(offset, table);
    this.#evict();
    return table;
  }

  #evict(): void {
    if (this.#cache.size <= this.#cacheLimit) return;
    for (const key of this.#cache.keys()) {
      if (this.#cache.size <= this.#cacheLimit) break;
      if (!this.pinned.has(key)) this.#cache.delete(key);
    }
  }

  /**
   * Decodes entry `index` of an L2 table.
   *
   * @param table The table.
   * @param index Entry index.
   * @returns The cluster's state.
   */
  decode(table: L2Table, index: number): ClusterEntry {
    const hi = table.view.getUint32(index * 8);
    const lo = table.view.getUint32(index * 8 + 4);
    if (hi & 0x40000000) {
      const bits = 62 - (this.header.clusterBits - 8);
      const descriptor = (BigInt(hi & 0x3fffffff) << 32n) | BigInt(lo);
      const host = Number(descriptor & ((1n << BigInt(bits)) - 1n));
      const sectors = Number(descriptor >> BigInt(bits)) + 1;
      return { kind: COMPRESSED, host, compressedBytes: sectors * 512 - (host % 512) };
    }
    const host = (hi & 0x00ffffff) * U32 + ((lo & 0xfffffe00) >>> 0);
    if (this.header.version === 3 && lo & 1) return { kind: ZERO, host, compressedBytes: 0 };
    if (host === 0) return { kind: UNALLOCATED, host: 0, compressedBytes: 0 };
    if (host % this.clusterBytes !== 0) {
      throw new CorruptImageError(this.name, `an L2 entry of table ${table.offset} points at unaligned offset ${host}`);
    }
    return { kind: DATA, host, compressedBytes: 0 };
  }

  /**
   * The state of the cluster holding a guest offset.
   *
   * @param guest Guest offset.
   * @returns Its entry.
   */
  async lookup(guest: number): Promise<ClusterEntry> {
    const cluster = Math.floor(guest / this.clusterBytes);
    const table = await this.l2Table(Math.floor(cluster / this.l2Entries));
    return table ? this.decode(table, cluster % this.l2Entries) : { kind: UNALLOCATED, host: 0, compressedBytes: 0 };
  }

  /**
   * This layer's runs over a range within its capacity.
   *
   * @param offset Start.
   * @param length Length.
   * @returns Covering runs, adjacent equal kinds merged.
   */
  async runs(offset: number, length: number): Promise<LayerRun[]> {
    const runs: LayerRun[] = [];
    const end = offset + length;
    const push = (start: number, stop: number, kind: LayerRun["kind"]) => {
      const s = Math.max(start, offset);
      const e = Math.min(stop, end);
      if (e <= s) return;
      const last = runs[runs.length - 1];
      if (last && last.kind === kind && last.offset + last.length === s) last.length += e - s;
      else runs.push({ offset: s, length: e - s, kind });
    };
    const cs = this.clusterBytes;
    for (let cluster = Math.floor(offset / cs); cluster * cs < end; ) {
      const l1Index = Math.floor(cluster / this.l2Entries);
      const table = await this.l2Table(l1Index);
      const tableEnd = (l1Index + 1) * this.l2Entries;
      if (!table) {
        push(cluster * cs, tableEnd * cs, "unallocated");
        cluster = tableEnd;
        continue;
      }
      for (; cluster < tableEnd && cluster * cs < end; cluster++) {
        const kind = this.decode(table, cluster % this.l2Entries).kind;
        push(cluster * cs, (cluster + 1) * cs, kind === UNALLOCATED ? "unallocated" : kind === ZERO ? "zero" : "data");
      }
    }
    return runs;
  }

  /**
   * Reads this layer's own bytes; clusters without data read as zeros.
   *
   * @param offset Guest offset.
   * @param target Where the bytes go.
   */
  async readData(offset: number, target: Uint8Array): Promise<void> {
    const cs = this.clusterBytes;
    // Coalesce clusters that sit next to each other in the file into one read.
    let pending: { guest: number; host: number; length: number } | undefined;
    const flush = async () => {
      if (!pending) return;
      const slice = target.subarray(pending.guest - offset, pending.guest - offset + pending.length);
      const got = await this.file.read(pending.host, slice);
      if (got < slice.byteLength) slice.fill(0, got);
      pending = undefined;
    };
    const end = offset + target.byteLength;
    let table: L2Table | undefined;
    let tableIndex = -1;
    for (let at = offset; at < end; ) {
      const within = at % cs;
      const n = Math.min(cs - within, end - at);
      // One table lookup per L2 table the range touches, not one per cluster.
      const cluster = Math.floor(at / cs);
      const l1Index = Math.floor(cluster / this.l2Entries);
      if (l1Index !== tableIndex) {
        table = await this.l2Table(l1Index);
        tableIndex = l1Index;
      }
      const entry = table ? this.decode(table, cluster % this.l2Entries) : NO_ENTRY;
      if (entry.kind === DATA) {
        if (pending && pending.host + pending.length === entry.host + within && pending.guest + pending.length === at) pending.length += n;
        else {
          await flush();
          pending = { guest: at, host: entry.host + within, length: n };
        }
      } else {
        await flush();
        const slice = target.subarray(at - offset, at - offset + n);
        if (entry.kind === COMPRESSED) slice.set((await this.inflate(entry)).subarray(within, within + n));
        else slice.fill(0);
      }
      at += n;
    }
    await flush();
  }

  /**
   * The bytes of a compressed cluster.
   *
   * @param entry Its entry.
   * @returns The whole cluster (do not modify).
   */
  async inflate(entry: ClusterEntry): Promise<Uint8Array> {
    if (this.#lastInflated?.host === entry.host) return this.#lastInflated.bytes;
    if (this.header.compressionType !== 0) {
      throw new UnsupportedError("readImage", { detail: `image "${this.name}" uses zstd compression` });
    }
    if (entry.compressedBytes > 2 * this.clusterBytes + 512 || entry.host + entry.compressedBytes > this.fileBytes + 512) {
      throw new CorruptImageError(this.name, `a compressed cluster at ${entry.host} runs past the end of the file`);
    }
    const input = new Uint8Array(entry.compressedBytes);
    const got = await this.file.read(entry.host, input);
    const bytes = await inflateCluster(input.subarray(0, got), this.clusterBytes);
    if (!bytes) throw new CorruptImageError(this.name, `the compressed cluster at ${entry.host} does not inflate to a whole cluster`);
    this.#lastInflated = { host: entry.host, bytes };
    return bytes;
  }
}
