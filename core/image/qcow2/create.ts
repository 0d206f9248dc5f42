/**
 * Writes a new, empty qcow2 version 3 image: header (with the backing name and its format extension),
 * refcount table, refcount blocks and a zeroed L1 table, laid out the way `qemu-img create` does.
 *
 * @module
 */
import type { PositionalFile } from "../positional_file.ts";
import { encodeQcow2Header, MAX_L1_BYTES, type Qcow2Header, writeU64 } from "./header.ts";

/** Options of {@linkcode createQcow2}. */
export interface CreateQcow2Options {
  /** Virtual size in bytes, rounded up to a multiple of 512 as `qemu-img create` does. */
  capacityBytes: number;
  /** Cluster size: a power of two from 512 B to 2 MiB (default 64 KiB). */
  clusterBytes?: number;
  /** Backing image recorded in the header, with its format (written as the backing format extension). */
  backing?: {
    /** The backing image's path as the header records it. */
    path: string;
    /** Its format (`"raw"`, `"qcow2"`). */
    format: string;
  };
}

/**
 * Writes an empty qcow2 v3 image (refcount width 16, zlib compression) into an empty file.
 *
 * @param file The file; its current content is overwritten and it is truncated to the new image.
 * @param options Capacity, cluster size and backing.
 * @throws {RangeError} For a bad capacity or cluster size, or a capacity whose L1 table would exceed QEMU's 32 MiB limit.
 * @throws {TypeError} For a bad backing reference.
 * @example
 * ```ts
 * import { createMemoryFile } from "virtkit";
 * import { createQcow2 } from "virtkit";
 * const file = createMemoryFile();
 * await createQcow2(file, { capacityBytes: 10 * 2 ** 30, backing: { path: "base.raw", format: "raw" } });
 * if ((await file.size()) !== 4 * 65536) throw new Error("unexpected layout");
 * ```
 */
export async function createQcow2(file: PositionalFile, options: CreateQcow2Options): Promise<void> {
  const clusterBytes = options.clusterBytes ?? 65536;
  if (!Number.isInteger(clusterBytes) || clusterBytes < 512 || clusterBytes > 2 * 1024 * 1024 || (clusterBytes & (clusterBytes - 1)) !== 0) {
    throw new RangeError(`Invalid qcow2 cluster size ${clusterBytes}: expected a power of two from 512 to 2097152`);
  }
  const { capacityBytes, backing } = options;
  if (!Number.isSafeInteger(capacityBytes) || capacityBytes < 0) {
    throw new RangeError(`Invalid qcow2 capacity ${capacityBytes}: expected a byte count`);
  }
  if (backing !== undefined) {
    if (typeof backing !== "object" || typeof backing.path !== "string" || backing.path === "" || typeof backing.format !== "string" || backing.format === "") {
      throw new TypeError("Invalid qcow2 backing: expected { path, format } with non-empty strings");
    }
  }
  const sizeBytes = Math.ceil(capacityBytes / 512) * 512;
  const clusterBits = Math.log2(clusterBytes);
  const l1Size = l1EntriesFor(sizeBytes, clusterBytes);
  if (l1Size * 8 > MAX_L1_BYTES) {
    throw new RangeError(`Capacity ${capacityBytes} is too large for ${clusterBytes}-byte qcow2 clusters (L1 table above 32 MiB)`);
  }
  const l1Clusters = Math.ceil((l1Size * 8) / clusterBytes);
  const blockEntries = clusterBytes / 2;
  // Metadata must count itself: iterate until the refcount structures cover every metadata cluster.
  let blocks = 1;
  let tableClusters = 1;
  for (;;) {
    const total = 1 + tableClusters + blocks + l1Clusters;
    const needBlocks = Math.ceil(total / blockEntries);
    const needTable = Math.ceil((needBlocks * 8) / clusterBytes);
    if (needBlocks === blocks && needTable === tableClusters) break;
    blocks = needBlocks;
    tableClusters = needTable;
  }
  const tableOffset = clusterBytes;
  const blocksOffset = tableOffset + tableClusters * clusterBytes;
  const l1Offset = blocksOffset + blocks * clusterBytes;
  const totalClusters = l1Offset / clusterBytes + l1Clusters;
  const header: Qcow2Header = {
    version: 3,
    clusterBits,
    clusterBytes,
    sizeBytes,
    cryptMethod: 0,
    l1Size,
    l1TableOffset: l1Offset,
    refcountTableOffset: tableOffset,
    refcountTableClusters: tableClusters,
    nbSnapshots: 0,
    snapshotsOffset: 0,
    incompatibleFeatures: 0n,
    compatibleFeatures: 0n,
    autoclearFeatures: 0n,
    refcountOrder: 4,
    headerLength: 112,
    compressionType: 0,
    extensions: [],
    ...(backing ? { backingFile: backing.path, backingFormat: backing.format } : {}),
    raw: new Uint8Array(0),
  };
  const encoded = encodeQcow2Header(header);
  const image = new Uint8Array(l1Offset);
  image.set(encoded);
  const view = new DataView(image.buffer);
  for (let i = 0; i < blocks; i++) writeU64(view, tableOffset + i * 8, blocksOffset + i * clusterBytes);
  for (let c = 0; c < totalClusters; c++) view.setUint16(blocksOffset + c * 2, 1);
  await file.truncate(0);
  await file.write(0, image);
  // The L1 table is all zeros: extend the file over it without writing it.
  await file.truncate(totalClusters * clusterBytes);
  await file.flush();
}

/**
 * The number of L1 entries a virtual size needs.
 *
 * @param sizeBytes Virtual size.
 * @param clusterBytes Cluster size.
 * @returns Entries (each maps one L2 table of `clusterBytes / 8` clusters).
 */
export function l1EntriesFor(sizeBytes: number, clusterBytes: number): number {
  const clusters = Math.ceil(sizeBytes / clusterBytes);
  return Math.ceil(clusters / (clusterBytes / 8));
}
