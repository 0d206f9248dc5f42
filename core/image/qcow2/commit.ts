/**
 * Committing the qcow2 writer's pending metadata in crash-safe order (see `writer.ts`):
 *
 * 1. new L2 tables, refcount blocks, a moved refcount table and the counts in existing blocks (all of it
 *    either unreferenced or counting up, so a crash at worst leaks clusters);
 * 2. only when there are new refcount blocks: a flush, then the refcount table entries or the header's
 *    table pointer that make them visible;
 * 3. a flush (which also makes the data durable), then L2 entries and L1 entries (and a header change
 *    that points at new tables);
 * 4. only when something was replaced: a flush, then the old clusters' refcounts go down.
 *
 * @module
 */
import { writeU64 } from "./header.ts";
import type { L2Table, Qcow2Image } from "./image.ts";
import { type Batch, newBatch, type Refcounts } from "./refcounts.ts";

const U32 = 4294967296;
const COPIED = 0x80000000;

/** Guest data bound for the file. */
export interface DataWrite {
  /** Host offset. */
  offset: number;
  /** Bytes. */
  bytes: Uint8Array;
}

/** Table changes of one operation, besides its refcount batch. */
export interface Changes {
  /** Refcount changes. */
  batch: Batch;
  /** L2 tables created (written whole). */
  newTables: Set<L2Table>;
  /** Entry ranges changed in existing L2 tables. */
  l2Ranges: Map<L2Table, { from: number; to: number }>;
  /** L1 entries changed. */
  l1Dirty: Set<number>;
  /** A header change that points at new structures (written with the tables). */
  header?: { offset: number; bytes: Uint8Array };
}

/**
 * Writes pending metadata changes in crash-safe order.
 *
 * @param image The image.
 * @param refcounts Its refcounts.
 * @param changes What changed.
 */
export async function commitChanges(image: Qcow2Image, refcounts: Refcounts, changes: Changes): Promise<void> {
  const file = image.file;
  const { batch } = changes;
  const grow = (end: number) => {
    image.fileBytes = Math.max(image.fileBytes, end);
  };
  try {
    // 1. What nothing points at yet, and counts going up (at worst a leak): new tables, new refcount
    // blocks, a moved refcount table, and the counts in existing blocks. The data is in the file already.
    for (const table of changes.newTables) {
      await file.write(table.offset, table.bytes);
      grow(table.offset + table.bytes.byteLength);
    }
    for (const offset of batch.newBlocks) {
      const bytes = await refcounts.blockBytes(offset);
      await file.write(offset, bytes);
      grow(offset + bytes.byteLength);
    }
    if (batch.movedTable) {
      const bytes = refcounts.encodeTable();
      await file.write(refcounts.tableOffset, bytes);
      grow(refcounts.tableOffset + bytes.byteLength);
    }
    await writeBlockRanges(image, refcounts, batch);
    // 2. After a barrier, the refcount table entries (or the header's pointer) that make new blocks
    // visible, in one write, because a new block's own count may sit in another new block.
    if (batch.movedTable) {
      await file.flush();
      const pointer = new Uint8Array(12);
      const view = new DataView(pointer.buffer);
      writeU64(view, 0, refcounts.tableOffset);
      view.setUint32(8, refcounts.tableClusters);
      await file.write(48, pointer);
      image.header = { ...image.header, refcountTableOffset: refcounts.tableOffset, refcountTableClusters: refcounts.tableClusters };
    } else if (batch.tableEntries.size > 0) {
      await file.flush();
      const indices = [...batch.tableEntries];
      const from = Math.min(...indices);
      const to = Math.max(...indices) + 1;
      await file.write(refcounts.tableOffset + from * 8, encodeL1(refcounts.table, from, to, (to - from) * 8, false));
    }
    // One barrier before anything points at the new clusters: their data, tables and counts are durable
    // then (QEMU's qcow2 cache flushes refcount blocks, then the L2 tables that depend on them, the same way).
    const phase3 = changes.l2Ranges.size + changes.l1Dirty.size + (changes.header ? 1 : 0);
    if (phase3 > 0 || batch.release.length > 0) await file.flush();
    // 3. Tables that point at the new clusters.
    for (const [table, range] of changes.l2Ranges) {
      await file.write(table.offset + range.from * 8, table.bytes.subarray(range.from * 8, (range.to + 1) * 8));
    }
    if (changes.l1Dirty.size > 0) {
      const indices = [...changes.l1Dirty];
      const from = Math.min(...indices);
      const to = Math.max(...indices) + 1;
      await file.write(image.header.l1TableOffset + from * 8, encodeL1(image.l1, from, to, (to - from) * 8));
    }
    if (changes.header) await file.write(changes.header.offset, changes.header.bytes);
    // 4. Release what was replaced, once nothing points at it.
    const release = [...batch.release];
    if (batch.movedTable) {
      release.push({ offset: batch.movedTable.oldOffset, length: batch.movedTable.oldClusters * image.clusterBytes });
    }
    if (release.length > 0) {
      await file.flush();
      const freeing = newBatch();
      for (const { offset, length } of release) {
        const cs = image.clusterBytes;
        for (let cluster = Math.floor(offset / cs); cluster * cs < offset + length; cluster++) await refcounts.adjust(cluster * cs, -1, freeing);
      }
      await writeBlockRanges(image, refcounts, freeing);
    }
  } finally {
    image.pinned.clear();
    refcounts.trimCache();
  }
}

async function writeBlockRanges(image: Qcow2Image, refcounts: Refcounts, batch: Batch): Promise<void> {
  for (const [offset, range] of batch.blockRanges) {
    const { start, end } = refcounts.entryBytes(range.from, range.to);
    await image.file.write(offset + start, (await refcounts.blockBytes(offset)).subarray(start, end));
  }
}

/**
 * Encodes table entries `from..to` (with the copied flag on non-zero entries when asked).
 *
 * @param table Host offsets.
 * @param from First index.
 * @param to End index (exclusive).
 * @param bytes Output size (zero padded).
 * @param copied Set bit 63 on non-zero entries.
 * @returns The bytes.
 */
export function encodeL1(table: Float64Array, from: number, to: number, bytes: number, copied = true): Uint8Array {
  const out = new Uint8Array(bytes);
  const view = new DataView(out.buffer);
  for (let i = from; i < to; i++) {
    const value = table[i]!;
    view.setUint32((i - from) * 8, (Math.floor(value / U32) | (copied && value !== 0 ? COPIED : 0)) >>> 0);
    view.setUint32((i - from) * 8 + 4, value % U32);
  }
  return out;
}
