/**
 * Refcounts and cluster allocation for the qcow2 writer. Clusters are only ever appended at the end of
 * the file (freed clusters are not reused), and every change is recorded in a {@linkcode Batch} that the
 * writer commits in crash-safe order: new clusters first, then refcounts, then the tables that point at them.
 *
 * @module
 */
import { CorruptImageError } from "../errors.ts";
import { readU64 } from "./header.ts";
import type { Qcow2Image } from "./image.ts";

/** A cached refcount block. */
interface Block {
  offset: number;
  bytes: Uint8Array;
  view: DataView;
}

/** What one write changes, waiting to be committed in order. */
export interface Batch {
  /** Refcount blocks created in this batch (written whole with `fresh`). */
  newBlocks: Set<number>;
  /** Entry ranges changed in existing refcount blocks. */
  blockRanges: Map<number, { from: number; to: number }>;
  /** Refcount table entries changed (when the table did not move). */
  tableEntries: Set<number>;
  /** The refcount table moved: the header must switch to it, then the old one is freed. */
  movedTable?: { oldOffset: number; oldClusters: number };
  /** Host ranges to release once nothing points at them any more. */
  release: Array<{ offset: number; length: number }>;
}

/**
 * A new, empty batch.
 *
 * @returns The batch.
 */
export function newBatch(): Batch {
  return { newBlocks: new Set(), blockRanges: new Map(), tableEntries: new Set(), release: [] };
}

/** The refcount structures of an image open for writing. */
export class Refcounts {
  readonly #image: Qcow2Image;
  /** Host offsets of the refcount blocks (0: none). */
  table: Float64Array;
  /** Where the refcount table is. */
  tableOffset: number;
  /** Clusters it occupies. */
  tableClusters: number;
  /** The next free host offset: everything before it is (or was) in use. */
  end: number;
  readonly #blocks = new Map<number, Block>();
  readonly #order: number;
  readonly #entries: number;

  private constructor(image: Qcow2Image, table: Float64Array, end: number) {
    this.#image = image;
    this.table = table;
    this.tableOffset = image.header.refcountTableOffset;
    this.tableClusters = image.header.refcountTableClusters;
    this.end = end;
    this.#order = image.header.refcountOrder;
    this.#entries = (image.clusterBytes * 8) / 2 ** this.#order;
  }

  /**
   * Loads the refcount table and finds the end of the used space.
   *
   * @param image The image.
   * @returns The refcounts.
   */
  static async load(image: Qcow2Image): Promise<Refcounts> {
    const h = image.header;
    const bytes = new Uint8Array(h.refcountTableClusters * image.clusterBytes);
    if ((await image.file.read(h.refcountTableOffset, bytes)) !== bytes.byteLength) {
      throw new CorruptImageError(image.name, "the refcount table is truncated");
    }
    const view = new DataView(bytes.buffer);
    const table = new Float64Array(bytes.byteLength / 8);
    for (let i = 0; i < table.length; i++) {
      const offset = readU64(view, i * 8);
      if (Number.isNaN(offset) || offset % image.clusterBytes !== 0 || offset + image.clusterBytes > image.fileBytes) {
        throw new CorruptImageError(image.name, `refcount table entry ${i} is invalid (${offset})`);
      }
      table[i] = offset;
    }
    const cs = image.clusterBytes;
    const refcounts = new Refcounts(image, table, Math.ceil(image.fileBytes / cs) * cs);
    // A cluster may be counted past the end of the file (a crash after its refcount, before its data).
    for (let i = table.length - 1; i >= 0; i--) {
      if (table[i] === 0) continue;
      const block = await refcounts.#block(table[i]!);
      for (let e = refcounts.#entries - 1; e >= 0; e--) {
        if (refcounts.#get(block, e) !== 0) {
          refcounts.end = Math.max(refcounts.end, (i * refcounts.#entries + e + 1) * cs);
          break;
        }
      }
      break;
    }
    return refcounts;
  }

  async #block(offset: number): Promise<Block> {
    let block = this.#blocks.get(offset);
    if (!block) {
      const bytes = new Uint8Array(this.#image.clusterBytes);
      if ((await this.#image.file.read(offset, bytes)) !== bytes.byteLength) {
        throw new CorruptImageError(this.#image.name, `the refcount block at ${offset} is truncated`);
      }
      block = { offset, bytes, view: new DataView(bytes.buffer) };
      this.#blocks.set(offset, block);
    }
    return block;
  }

  #get(block: Block, index: number): number {
    const order = this.#order;
    if (order === 4) return block.view.getUint16(index * 2);
    if (order === 5) return block.view.getUint32(index * 4);
    if (order === 6) return block.view.getUint32(index * 8) * 4294967296 + block.view.getUint32(index * 8 + 4);
    if (order === 3) return block.bytes[index]!;
    const bits = 2 ** order;
    const byte = block.bytes[Math.floor((index * bits) / 8)]!;
    return (byte >> ((index * bits) % 8)) & ((1 << bits) - 1);
  }

  #set(block: Block, index: number, value: number): void {
    const order = this.#order;
    if (value < 0 || value >= 2 ** Math.min(2 ** order, 53)) throw new CorruptImageError(this.#image.name, `a refcount would become ${value}`);
    if (order === 4) block.view.setUint16(index * 2, value);
    else if (order === 5) block.view.setUint32(index * 4, value);
    else if (order === 6) {
      block.view.setUint32(index * 8, Math.floor(value / 4294967296));
      block.view.setUint32(index * 8 + 4, value % 4294967296);
    } else if (order === 3) block.bytes[index] = value;
    else {
      const bits = 2 ** order;
      const at = Math.floor((index * bits) / 8);
      const shift = (index * bits) % 8;
      const mask = ((1 << bits) - 1) << shift;
      block.bytes[at] = (block.bytes[at]! & ~mask) | (value << shift);
    }
  }

  /** Byte range of entries `from..to` in a block (for partial writes). */
  entryBytes(from: number, to: number): { start: number; end: number } {
    const bits = 2 ** this.#order;
    return { start: Math.floor((from * bits) / 8), end: Math.ceil(((to + 1) * bits) / 8) };
  }

  /**
   * Reserves `count` contiguous clusters at the end of the file and counts them.
   *
   * @param count Clusters.
   * @param batch The batch that records the refcount changes.
   * @returns The host offset of the first.
   */
  async allocate(count: number, batch: Batch): Promise<number> {
    const start = this.end;
    this.end += count * this.#image.clusterBytes;
    for (let i = 0; i < count; i++) await this.adjust(start + i * this.#image.clusterBytes, 1, batch);
    return start;
  }

  /**
   * Adds `delta` to the refcount of the cluster at a host offset, creating refcount blocks (and growing
   * the refcount table) as needed.
   *
   * @param host Host offset.
   * @param delta +1 or -1.
   * @param batch The batch.
   */
  async adjust(host: number, delta: number, batch: Batch): Promise<void> {
    const cs = this.#image.clusterBytes;
    const cluster = Math.floor(host / cs);
    const tableIndex = Math.floor(cluster / this.#entries);
    if (tableIndex >= this.table.length) await this.#growTable(tableIndex + 1, batch);
    let blockOffset = this.table[tableIndex]!;
    if (blockOffset === 0) {
      if (delta < 0) throw new CorruptImageError(this.#image.name, `cluster ${host} is freed but has no refcount block`);
      blockOffset = this.end;
      this.end += cs;
      const bytes = new Uint8Array(cs);
      this.#blocks.set(blockOffset, { offset: blockOffset, bytes, view: new DataView(bytes.buffer) });
      batch.newBlocks.add(blockOffset);
      this.table[tableIndex] = blockOffset;
      if (!batch.movedTable) batch.tableEntries.add(tableIndex);
      // The new block is itself a cluster in use: count it (maybe in itself).
      await this.adjust(blockOffset, 1, batch);
    }
    const block = await this.#block(blockOffset);
    const index = cluster % this.#entries;
    const value = this.#get(block, index) + delta;
    // Only appended clusters are counted up, and those must have been free.
    if (delta > 0 && value !== 1) throw new CorruptImageError(this.#image.name, `cluster ${host} past the used space is already in use`);
    this.#set(block, index, value);
    if (!batch.newBlocks.has(blockOffset)) {
      const range = batch.blockRanges.get(blockOffset);
      if (range) {
        range.from = Math.min(range.from, index);
        range.to = Math.max(range.to, index);
      } else batch.blockRanges.set(blockOffset, { from: index, to: index });
    }
  }

  async #growTable(minEntries: number, batch: Batch): Promise<void> {
    const cs = this.#image.clusterBytes;
    const entries = Math.max(minEntries, this.table.length * 2);
    const clusters = Math.ceil((entries * 8) / cs);
    if (clusters * cs > 8 * 1024 * 1024) throw new CorruptImageError(this.#image.name, "the refcount table would exceed 8 MiB");
    const table = new Float64Array((clusters * cs) / 8);
    table.set(this.table);
    const offset = this.end;
    this.end += clusters * cs;
    if (!batch.movedTable) batch.movedTable = { oldOffset: this.tableOffset, oldClusters: this.tableClusters };
    batch.tableEntries.clear();
    this.table = table;
    this.tableOffset = offset;
    this.tableClusters = clusters;
    for (let i = 0; i < clusters; i++) await this.adjust(offset + i * cs, 1, batch);
  }

  /** Drops cached blocks once a batch is committed (none are dirty then). */
  trimCache(): void {
    if (this.#blocks.size > 256) this.#blocks.clear();
  }

  /**
   * The bytes of a refcount block as cached (to write it).
   *
   * @param offset Its host offset.
   * @returns Its bytes.
   */
  async blockBytes(offset: number): Promise<Uint8Array> {
    return (await this.#block(offset)).bytes;
  }

  /** The refcount table encoded for writing. */
  encodeTable(): Uint8Array {
    const bytes = new Uint8Array(this.tableClusters * this.#image.clusterBytes);
    const view = new DataView(bytes.buffer);
    for (let i = 0; i < this.table.length; i++) {
      view.setUint32(i * 8, Math.floor(this.table[i]! / 4294967296));
      view.setUint32(i * 8 + 4, this.table[i]! % 4294967296);
    }
    return bytes;
  }
}
