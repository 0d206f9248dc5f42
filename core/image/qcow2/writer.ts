/**
 * The qcow2 write side: guest writes, zero clusters, backing changes and growth. Guest data goes to the
 * file at once (into clusters nothing on disk points at yet, or in place); the metadata changes of many
 * operations gather in one pending {@linkcode Batch} (group commit, as QEMU's metadata caches do) and are
 * committed on `flush`, `close`, a header change, or every 256 MiB of new clusters, in an order that keeps
 * the image valid if the process (or the machine) dies at any point — at worst clusters leak. A flush with
 * nothing written since the last one does not reach the file (a job flushing at each phase costs one fsync):
 *
 * 1. new L2 tables, refcount blocks, a moved refcount table and the counts in existing blocks;
 * 2. only when there are new refcount blocks: a flush, then the table entries that make them visible;
 * 3. a flush (which also makes the data durable), then L2 entries and L1 entries (and a header change);
 * 4. only when something was replaced: a flush, then the old clusters' refcounts go down.
 *
 * @module
 */
import { StateError, UnsupportedError } from "../../errors.ts";
import { CorruptImageError } from "../errors.ts";
import type { LayerBackingRef, ReadBelow } from "../layer.ts";
import { l1EntriesFor } from "./create.ts";
import { encodeQcow2Header, MAX_L1_BYTES, writeU64 } from "./header.ts";
import { COMPRESSED, DATA, type L2Table, type Qcow2Image, UNALLOCATED, ZERO } from "./image.ts";
import { type Batch, newBatch, Refcounts } from "./refcounts.ts";
import { type Changes, commitChanges, type DataWrite, encodeL1 } from "./commit.ts";

const U32 = 4294967296;
const COPIED = 0x80000000;
const GROUP_COMMIT_BYTES = 256 * 1024 * 1024;
const GROUP_COMMIT_OPS = 2048;
const GROUP_COMMIT_PINNED_BYTES = 32 * 1024 * 1024;

/** Writes into one open qcow2 image; operations run one at a time. */
export class Qcow2Writer {
  readonly #image: Qcow2Image;
  #refcounts: Refcounts | undefined;
  #tail: Promise<unknown> = Promise.resolve();
  #pending: Changes | undefined;
  #pendingBytes = 0;
  #pendingOps = 0;
  /** Set when a commit failed half-way: memory and file disagree, so nothing more is written. */
  #failed: unknown;
  /** Something was written to the file since its last flush. */
  #unflushed = false;

  /**
   * Creates a writer; refcounts are loaded at the first change.
   *
   * @param image The image, opened by {@linkcode Qcow2Image.open}.
   */
  constructor(image: Qcow2Image) {
    this.#image = image;
  }

  /** Resolves when no operation is running (readers wait for it so they never see half a change). */
  idle(): Promise<unknown> {
    return this.#tail;
  }

  #exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#tail.then(() => {
      if (this.#failed !== undefined) {
        throw new StateError(`Cannot write image "${this.#image.name}": an earlier metadata write failed`, {
          state: "failed",
          cause: this.#failed,
        });
      }
      return work();
    });
    this.#tail = run.catch(() => undefined);
    return run;
  }

  async #ready(): Promise<Refcounts> {
    if (this.#refcounts) return this.#refcounts;
    const { header: h, name } = this.#image;
    if (h.incompatibleFeatures & 2n) throw new CorruptImageError(name, "QEMU marked it corrupt; repair it with qemu-img check -r all");
    if (h.incompatibleFeatures & 1n) {
      throw new UnsupportedError("writeImage", { detail: `image "${name}" is dirty (lazy refcounts); repair it with qemu-img check -r all` });
    }
    if (h.nbSnapshots > 0) throw new UnsupportedError("writeImage", { detail: `image "${name}" has internal snapshots` });
    this.#refcounts = await Refcounts.load(this.#image);
    if (h.autoclearFeatures !== 0n) {
      // Bits this engine does not maintain must be cleared before the first change (qcow2 spec).
      h.autoclearFeatures = 0n;
      await this.#image.file.write(88, new Uint8Array(8));
      await this.#image.file.flush();
    }
    return this.#refcounts;
  }

  #changes(): Changes {
    return (this.#pending ??= { batch: newBatch(), newTables: new Set(), l2Ranges: new Map(), l1Dirty: new Set() });
  }

  /** Commits the pending metadata once enough has gathered. */
  async #maybeCommit(newBytes: number): Promise<void> {
    this.#pendingBytes += newBytes;
    this.#pendingOps++;
    // Pinned tables stay in memory until the commit: bound them too (2 MiB clusters make 2 MiB tables).
    const pinnedBytes = this.#image.pinned.size * this.#image.clusterBytes;
    if (this.#pendingBytes >= GROUP_COMMIT_BYTES || this.#pendingOps >= GROUP_COMMIT_OPS || pinnedBytes >= GROUP_COMMIT_PINNED_BYTES) {
      await this.#commit();
    }
  }

  /**
   * Writes guest data now: it lands where nothing on disk points yet, or in place. One run after the
   * other: issued together, the runs of a 4 MiB chunk made the offline commit slower and costlier in
   * CPU on an idle machine (its pwrites contend for the file's inode lock; bench/qemu_block_jobs part 3).
   */
  async #writeData(writes: DataWrite[]): Promise<void> {
    for (const write of writes) {
      this.#unflushed = true;
      await this.#image.file.write(write.offset, write.bytes);
      this.#image.fileBytes = Math.max(this.#image.fileBytes, write.offset + write.bytes.byteLength);
    }
  }

  async #table(l1Index: number, changes: Changes, create: boolean): Promise<L2Table | undefined> {
    const image = this.#image;
    const found = await image.l2Table(l1Index);
    if (found) {
      image.pinned.add(found.offset);
      return found;
    }
    if (!create) return undefined;
    const offset = await this.#refcounts!.allocate(1, changes.batch);
    const bytes = new Uint8Array(image.clusterBytes);
    const table = { offset, bytes, view: new DataView(bytes.buffer) };
    image.pinned.add(offset);
    image.adopt(table);
    image.l1[l1Index] = offset;
    changes.newTables.add(table);
    changes.l1Dirty.add(l1Index);
    return table;
  }

  #setEntry(changes: Changes, table: L2Table, index: number, host: number, zero: boolean): void {
    const copied = host !== 0 ? COPIED : 0;
    table.view.setUint32(index * 8, (Math.floor(host / U32) | copied) >>> 0);
    table.view.setUint32(index * 8 + 4, (host % U32) + (zero ? 1 : 0));
    if (changes.newTables.has(table)) return;
    const range = changes.l2Ranges.get(table);
    if (range) {
      range.from = Math.min(range.from, index);
      range.to = Math.max(range.to, index);
    } else changes.l2Ranges.set(table, { from: index, to: index });
  }

  /**
   * Writes guest bytes.
   *
   * @param offset Guest offset.
   * @param data Bytes.
   * @param below Reads what lies below, for clusters written in part.
   */
  write(offset: number, data: Uint8Array, below: ReadBelow): Promise<void> {
    return this.#exclusive(async () => {
      const refcounts = await this.#ready();
      const image = this.#image;
      const cs = image.clusterBytes;
      const end = offset + data.byteLength;
      const changes = this.#changes();
      const fresh: DataWrite[] = [];
      // Entries change in memory only after the data is written: a failure before leaves at most a leak.
      const updates: Array<[L2Table, number, number, boolean]> = [];
      const needs: Array<{ cluster: number; table: L2Table; index: number; kind: number; host: number; compressedBytes: number }> = [];
      const lastCluster = Math.ceil(end / cs);
      for (let cluster = Math.floor(offset / cs); cluster < lastCluster; ) {
        // One table lookup per L2 table the range touches, then its entries without an await.
        const l1Index = Math.floor(cluster / image.l2Entries);
        const table = (await this.#table(l1Index, changes, true))!;
        const tableEnd = Math.min(lastCluster, (l1Index + 1) * image.l2Entries);
        for (; cluster < tableEnd; cluster++) {
          const index = cluster % image.l2Entries;
          const entry = image.decode(table, index);
          const start = Math.max(offset, cluster * cs);
          const stop = Math.min(end, (cluster + 1) * cs);
          if (entry.kind === DATA) {
            pushFresh(fresh, entry.host + start - cluster * cs, data, start - offset, stop - offset);
          } else if (entry.kind === ZERO && entry.host !== 0) {
            const buffer = new Uint8Array(cs);
            buffer.set(data.subarray(start - offset, stop - offset), start - cluster * cs);
            fresh.push({ offset: entry.host, bytes: buffer });
            updates.push([table, index, entry.host, false]);
          } else needs.push({ cluster, table, index, ...entry });
        }
      }
      const released: Batch["release"] = [];
      if (needs.length > 0) {
        const first = await refcounts.allocate(needs.length, changes.batch);
        for (let k = 0; k < needs.length; k++) {
          const need = needs[k]!;
          const host = first + k * cs;
          const base = need.cluster * cs;
          const visible = Math.min(cs, image.capacityBytes - base);
          const start = Math.max(offset, base);
          const stop = Math.min(end, base + cs);
          if (start === base && stop >= base + visible) {
            pushFresh(fresh, host, data, start - offset, stop - offset);
          } else {
            const buffer = new Uint8Array(cs);
            if (need.kind === UNALLOCATED) await below(base, buffer.subarray(0, visible));
            else if (need.kind === COMPRESSED) buffer.set(await image.inflate(need));
            buffer.set(data.subarray(start - offset, stop - offset), start - base);
            fresh.push({ offset: host, bytes: buffer });
          }
          if (need.kind === COMPRESSED) released.push({ offset: need.host, length: need.compressedBytes });
          updates.push([need.table, need.index, host, false]);
        }
      }
      await this.#writeData(fresh);
      for (const [table, index, host, zero] of updates) this.#setEntry(changes, table, index, host, zero);
      changes.batch.release.push(...released);
      await this.#maybeCommit(needs.length * cs);
    });
  }

  /**
   * Makes a range read as zeros.
   *
   * @param offset Guest offset.
   * @param length Length.
   * @param allocate Write real zeros (allocated) instead of marking clusters.
   * @param below Reads what lies below.
   * @param hasBacking Whether unallocated clusters would fall through to something.
   */
  async writeZeroes(offset: number, length: number, allocate: boolean, below: ReadBelow, hasBacking: boolean): Promise<void> {
    const image = this.#image;
    const cs = image.clusterBytes;
    const end = offset + length;
    const capacity = image.capacityBytes;
    const chunk = 4 * 1024 * 1024;
    const writeZeros = async (from: number, to: number) => {
      const zeros = new Uint8Array(Math.min(chunk, to - from));
      for (let at = from; at < to; at += zeros.byteLength) await this.write(at, zeros.subarray(0, Math.min(zeros.byteLength, to - at)), below);
    };
    // Whole clusters (the last one may end at the capacity) can be marked; the rest is written as zeros.
    const firstWhole = Math.ceil(offset / cs) * cs;
    const lastWhole = end === capacity ? end : Math.floor(end / cs) * cs;
    if (allocate || firstWhole >= lastWhole) return writeZeros(offset, end);
    if (offset < firstWhole) await writeZeros(offset, firstWhole);
    for (let at = firstWhole; at < lastWhole; at += chunk) {
      // Version 2 has no zero flag: what must read as zeros there is written as data.
      for (const [start, stop] of await this.#markZero(at, Math.min(lastWhole, at + chunk), hasBacking)) await writeZeros(start, stop);
    }
    if (lastWhole < end) await writeZeros(lastWhole, end);
  }

  #markZero(from: number, to: number, hasBacking: boolean): Promise<Array<[number, number]>> {
    return this.#exclusive(async () => {
      await this.#ready();
      const image = this.#image;
      const cs = image.clusterBytes;
      const v3 = image.header.version === 3;
      const changes = this.#changes();
      const dataZeros: Array<[number, number]> = [];
      for (let cluster = from / cs; cluster * cs < to; cluster++) {
        const l1Index = Math.floor(cluster / image.l2Entries);
        const existing = await this.#table(l1Index, changes, false);
        const entry = existing ? image.decode(existing, cluster % image.l2Entries) : { kind: UNALLOCATED, host: 0, compressedBytes: 0 };
        if (entry.kind === ZERO || (entry.kind === UNALLOCATED && !hasBacking)) continue;
        if (!v3) {
          const last = dataZeros[dataZeros.length - 1];
          if (last && last[1] === cluster * cs) last[1] = Math.min(to, (cluster + 1) * cs);
          else dataZeros.push([cluster * cs, Math.min(to, (cluster + 1) * cs)]);
          continue;
        }
        const table = existing ?? (await this.#table(l1Index, changes, true))!;
        if (entry.kind === COMPRESSED) changes.batch.release.push({ offset: entry.host, length: entry.compressedBytes });
        // A data cluster keeps its host cluster (QEMU's "zero, allocated"): no refcount change needed.
        this.#setEntry(changes, table, cluster % image.l2Entries, entry.kind === DATA ? entry.host : 0, true);
      }
      await this.#maybeCommit(0);
      return dataZeros;
    });
  }

  /**
   * Records a new backing file (or none) in the header.
   *
   * @param backing The new reference.
   */
  setBacking(backing: LayerBackingRef | undefined): Promise<void> {
    return this.#exclusive(async () => {
      await this.#ready();
      await this.#commit();
      const h = this.#image.header;
      const oldLength = encodeQcow2Header(h).byteLength;
      const next = { ...h };
      if (backing === undefined) {
        delete next.backingFile;
        delete next.backingFormat;
      } else {
        next.backingFile = backing.path;
        if (backing.format !== undefined) next.backingFormat = backing.format;
        else delete next.backingFormat;
      }
      const encoded = encodeQcow2Header(next);
      const bytes = new Uint8Array(Math.max(oldLength, encoded.byteLength));
      bytes.set(encoded);
      await this.#flushFile();
      this.#unflushed = true;
      await this.#image.file.write(0, bytes);
      await this.#flushFile();
      this.#image.header = next;
    });
  }

  /**
   * Grows the virtual size, moving the L1 table to a bigger one when needed.
   *
   * @param capacityBytes The new size (rounded up to 512).
   */
  resize(capacityBytes: number): Promise<void> {
    return this.#exclusive(async () => {
      const refcounts = await this.#ready();
      const image = this.#image;
      const h = image.header;
      const size = Math.ceil(capacityBytes / 512) * 512;
      if (size < h.sizeBytes) throw new UnsupportedError("shrinkImage", { detail: `image "${image.name}" cannot shrink (${h.sizeBytes} to ${size} bytes)` });
      const l1Size = Math.max(h.l1Size, l1EntriesFor(size, image.clusterBytes));
      if (l1Size * 8 > MAX_L1_BYTES) throw new RangeError(`Capacity ${capacityBytes} is too large for ${image.clusterBytes}-byte clusters`);
      const changes = this.#changes();
      const header = new Uint8Array(24);
      const view = new DataView(header.buffer);
      writeU64(view, 0, size);
      view.setUint32(8, h.cryptMethod);
      view.setUint32(12, l1Size);
      let l1Offset = h.l1TableOffset;
      if (l1Size > h.l1Size) {
        const clusters = Math.ceil((l1Size * 8) / image.clusterBytes);
        l1Offset = await refcounts.allocate(clusters, changes.batch);
        const l1 = new Float64Array(l1Size);
        l1.set(image.l1);
        await this.#writeData([{ offset: l1Offset, bytes: encodeL1(l1, 0, l1Size, clusters * image.clusterBytes) }]);
        const oldClusters = Math.ceil((h.l1Size * 8) / image.clusterBytes);
        if (h.l1Size > 0) changes.batch.release.push({ offset: h.l1TableOffset, length: oldClusters * image.clusterBytes });
        image.l1 = l1;
      }
      writeU64(view, 16, l1Offset);
      changes.header = { offset: 24, bytes: header };
      await this.#commit();
      image.header = { ...h, sizeBytes: size, l1Size, l1TableOffset: l1Offset };
    });
  }

  /** Makes everything written durable. */
  flush(): Promise<void> {
    return this.#exclusive(async () => {
      await this.#commit();
      await this.#flushFile();
    });
  }

  /** Flushes the file when something reached it since the last flush. */
  async #flushFile(): Promise<void> {
    if (!this.#unflushed) return;
    await this.#image.file.flush();
    this.#unflushed = false;
  }

  /** Commits what is pending and makes it durable; the writer is not used afterwards. */
  close(): Promise<void> {
    return this.flush();
  }

  async #commit(): Promise<void> {
    const changes = this.#pending;
    if (!changes) return;
    this.#pending = undefined;
    this.#pendingBytes = 0;
    this.#pendingOps = 0;
    this.#unflushed = true;
    try {
      await commitChanges(this.#image, this.#refcounts!, changes);
    } catch (error) {
      this.#failed = error;
      throw error;
    }
  }
}

/** Appends a slice of `data` to the fresh writes, merging it with the previous one when both are contiguous. */
function pushFresh(fresh: DataWrite[], host: number, data: Uint8Array, from: number, to: number): void {
  const last = fresh[fresh.length - 1];
  const slice = data.subarray(from, to);
  if (
    last && last.bytes.buffer === data.buffer && last.offset + last.bytes.byteLength === host &&
    last.bytes.byteOffset + last.bytes.byteLength === slice.byteOffset
  ) {
    last.bytes = new Uint8Array(data.buffer, last.bytes.byteOffset, last.bytes.byteLength + slice.byteLength);
  } else fresh.push({ offset: host, bytes: slice });
}
