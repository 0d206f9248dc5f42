/**
 * The qcow2 header (QEMU's `docs/interop/qcow2.txt`): parsing with every check that keeps a damaged
 * file from making the engine allocate, loop or read past its end, and encoding for create, resize and
 * backing changes. Unknown header fields and extensions are kept as they were.
 *
 * @module
 */
import { UnsupportedError } from "../../errors.ts";
import { CorruptImageError } from "../errors.ts";

/** The qcow2 magic, `QFI\xfb`. */
export const QCOW2_MAGIC = 0x514649fb;
/** Header extension: backing file format name. */
export const EXT_BACKING_FORMAT = 0xe2792aca;
/** Header extension: full disk encryption header pointer. */
export const EXT_CRYPTO = 0x0537be77;
/** Incompatible feature bits. */
export const INCOMPAT_DIRTY = 1n;
/** The image is marked corrupt. */
export const INCOMPAT_CORRUPT = 2n;
/** Guest data lives in an external file. */
export const INCOMPAT_DATA_FILE = 4n;
/** A compression type other than zlib. */
export const INCOMPAT_COMPRESSION = 8n;
/** Extended L2 entries (subclusters). */
export const INCOMPAT_EXTL2 = 16n;
/** QEMU's limit on the L1 table (32 MiB) and the refcount table (8 MiB). */
export const MAX_L1_BYTES = 32 * 1024 * 1024;
/** QEMU's limit on the refcount table. */
export const MAX_REFTABLE_BYTES = 8 * 1024 * 1024;

/** A header extension kept as raw bytes. */
export interface HeaderExtension {
  /** Its type. */
  type: number;
  /** Its data, without padding. */
  data: Uint8Array;
}

/** A parsed qcow2 header. Sizes and offsets are bytes. */
export interface Qcow2Header {
  /** 2 or 3. */
  version: 2 | 3;
  /** log2 of the cluster size. */
  clusterBits: number;
  /** Cluster size. */
  clusterBytes: number;
  /** Virtual size. */
  sizeBytes: number;
  /** 0 none, 1 AES, 2 LUKS. */
  cryptMethod: number;
  /** Entries of the active L1 table. */
  l1Size: number;
  /** Where the L1 table starts. */
  l1TableOffset: number;
  /** Where the refcount table starts. */
  refcountTableOffset: number;
  /** Clusters of the refcount table. */
  refcountTableClusters: number;
  /** Internal snapshots. */
  nbSnapshots: number;
  /** Where the snapshot table starts. */
  snapshotsOffset: number;
  /** Incompatible feature bits. */
  incompatibleFeatures: bigint;
  /** Compatible feature bits. */
  compatibleFeatures: bigint;
  /** Auto-clear feature bits. */
  autoclearFeatures: bigint;
  /** log2 of the refcount width in bits. */
  refcountOrder: number;
  /** Header length (72 for version 2). */
  headerLength: number;
  /** 0 zlib, 1 zstd. */
  compressionType: number;
  /** Extensions other than the backing format, in file order. */
  extensions: HeaderExtension[];
  /** Backing file name, when there is one. */
  backingFile?: string;
  /** Backing format from its extension, when present. */
  backingFormat?: string;
  /** The header bytes as read (unknown fields are kept from them when encoding). */
  raw: Uint8Array;
}

const U32 = 4294967296;

/**
 * Reads a big-endian u64 as a number.
 *
 * @param view Where.
 * @param at Byte offset.
 * @returns The value, or NaN when it is not a safe integer.
 */
export function readU64(view: DataView, at: number): number {
  const value = view.getUint32(at) * U32 + view.getUint32(at + 4);
  return Number.isSafeInteger(value) ? value : Number.NaN;
}

/**
 * Writes a number as a big-endian u64.
 *
 * @param view Where.
 * @param at Byte offset.
 * @param value A safe integer.
 */
export function writeU64(view: DataView, at: number, value: number): void {
  view.setUint32(at, Math.floor(value / U32));
  view.setUint32(at + 4, value % U32);
}

/**
 * Parses and checks a qcow2 header.
 *
 * @param bytes The file's first bytes: at least its first cluster, or the whole file when shorter.
 * @param fileBytes The file's size.
 * @param name The image's name, for messages.
 * @returns The header.
 * @throws {CorruptImageError} When the header is damaged or points outside the file.
 * @throws {UnsupportedError} For a version or feature the engine does not know.
 */
export function parseQcow2Header(bytes: Uint8Array, fileBytes: number, name: string): Qcow2Header {
  const corrupt = (detail: string) => new CorruptImageError(name, detail);
  if (bytes.byteLength < 72) throw corrupt(`the file is truncated (${bytes.byteLength} bytes, a qcow2 header needs 72)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0) !== QCOW2_MAGIC) throw corrupt("no qcow2 magic");
  const version = view.getUint32(4);
  if (version !== 2 && version !== 3) {
    throw new UnsupportedError("openImage", { detail: `image "${name}" is qcow version ${version} (only 2 and 3 are supported)` });
  }
  const clusterBits = view.getUint32(20);
  if (clusterBits < 9 || clusterBits > 21) throw corrupt(`cluster_bits ${clusterBits} is outside 9..21 (512 B to 2 MiB clusters)`);
  const clusterBytes = 2 ** clusterBits;
  if (version === 3 && bytes.byteLength < 104) throw corrupt(`the file is truncated (${bytes.byteLength} bytes, a version 3 header needs 104)`);
  const headerLength = version === 2 ? 72 : view.getUint32(100);
  if (version === 3 && (headerLength < 104 || headerLength % 8 !== 0 || headerLength > clusterBytes)) {
    throw corrupt(`header_length ${headerLength} is invalid`);
  }
  if (bytes.byteLength < headerLength) throw corrupt("the file is truncated inside the header");
  const field = (at: number, what: string): number => {
    const value = readU64(view, at);
    if (Number.isNaN(value)) throw corrupt(`${what} is out of range`);
    return value;
  };
  const header: Qcow2Header = {
    version,
    clusterBits,
    clusterBytes,
    sizeBytes: field(24, "the virtual size"),
    cryptMethod: view.getUint32(32),
    l1Size: view.getUint32(36),
    l1TableOffset: field(40, "l1_table_offset"),
    refcountTableOffset: field(48, "refcount_table_offset"),
    refcountTableClusters: view.getUint32(56),
    nbSnapshots: view.getUint32(60),
    snapshotsOffset: field(64, "snapshots_offset"),
    incompatibleFeatures: version === 3 ? view.getBigUint64(72) : 0n,
    compatibleFeatures: version === 3 ? view.getBigUint64(80) : 0n,
    autoclearFeatures: version === 3 ? view.getBigUint64(88) : 0n,
    refcountOrder: version === 3 ? view.getUint32(96) : 4,
    headerLength,
    compressionType: version === 3 && headerLength > 104 ? view.getUint8(104) : 0,
    extensions: [],
    raw: bytes.slice(0, headerLength),
  };
  checkLayout(header, fileBytes, corrupt);
  readExtensions(header, view, fileBytes, corrupt);
  const backingOffset = field(8, "backing_file_offset");
  const backingBytes = view.getUint32(16);
  if (backingOffset !== 0) {
    if (backingBytes > 1023) throw corrupt(`backing file name is ${backingBytes} bytes long (at most 1023)`);
    if (backingOffset + backingBytes > Math.min(clusterBytes, bytes.byteLength)) {
      throw corrupt("backing file name lies outside the first cluster or past the end of the file");
    }
    header.backingFile = new TextDecoder().decode(bytes.subarray(backingOffset, backingOffset + backingBytes));
  }
  return header;
}

function checkLayout(h: Qcow2Header, fileBytes: number, corrupt: (detail: string) => CorruptImageError): void {
  if (h.refcountOrder > 6) throw corrupt(`refcount_order ${h.refcountOrder} is above 6`);
  const aligned = (offset: number) => offset % h.clusterBytes === 0;
  const l1Bytes = h.l1Size * 8;
  if (l1Bytes > MAX_L1_BYTES) throw corrupt(`the L1 table has ${h.l1Size} entries (more than QEMU's 32 MiB limit)`);
  const l2Entries = h.clusterBytes / 8;
  if (h.l1Size * l2Entries * h.clusterBytes < h.sizeBytes) {
    throw corrupt(`the L1 table (${h.l1Size} entries) is too small for the virtual size ${h.sizeBytes}`);
  }
  if (h.l1Size > 0) {
    if (!aligned(h.l1TableOffset) || h.l1TableOffset === 0) throw corrupt(`the L1 table offset ${h.l1TableOffset} is not cluster aligned`);
    if (h.l1TableOffset + l1Bytes > fileBytes) throw corrupt("the L1 table lies past the end of the file");
  }
  const refTableBytes = h.refcountTableClusters * h.clusterBytes;
  if (refTableBytes > MAX_REFTABLE_BYTES) throw corrupt(`the refcount table has ${h.refcountTableClusters} clusters (more than 8 MiB)`);
  if (h.refcountTableClusters === 0 || !aligned(h.refcountTableOffset) || h.refcountTableOffset === 0) {
    throw corrupt("the refcount table is missing or not cluster aligned");
  }
  if (h.refcountTableOffset + refTableBytes > fileBytes) throw corrupt("the refcount table lies past the end of the file");
  if (h.nbSnapshots > 65536) throw corrupt(`it claims ${h.nbSnapshots} snapshots`);
}

function readExtensions(h: Qcow2Header, view: DataView, fileBytes: number, corrupt: (detail: string) => CorruptImageError): void {
  const backingOffset = readU64(view, 8);
  const end = Math.min(h.clusterBytes, view.byteLength, fileBytes, backingOffset > 0 ? backingOffset : Infinity);
  for (let at = h.headerLength; ; ) {
    if (at + 8 > end) {
      // A version 2 header without extensions may end right where the backing name starts.
      if (at === end) return;
      throw corrupt("header extensions run past the end of the header area");
    }
    const type = view.getUint32(at);
    const length = view.getUint32(at + 4);
    if (type === 0) return;
    const dataAt = at + 8;
    if (dataAt + length > end) throw corrupt(`header extension 0x${type.toString(16)} runs past the end of the header area`);
    const data = new Uint8Array(view.buffer, view.byteOffset + dataAt, length).slice();
    if (type === EXT_BACKING_FORMAT) h.backingFormat = new TextDecoder().decode(data);
    else h.extensions.push({ type, data });
    at = dataAt + Math.ceil(length / 8) * 8;
  }
}

/**
 * Encodes the header area (header, extensions, backing name) for the first cluster.
 *
 * @param h The header to write; `raw` supplies unknown fields.
 * @returns The bytes to write at offset 0.
 * @throws {RangeError} When it does not fit in the first cluster.
 */
export function encodeQcow2Header(h: Qcow2Header): Uint8Array {
  const encoder = new TextEncoder();
  const exts: HeaderExtension[] = [];
  if (h.backingFormat !== undefined && h.backingFile !== undefined) {
    exts.push({ type: EXT_BACKING_FORMAT, data: encoder.encode(h.backingFormat) });
  }
  exts.push(...h.extensions);
  const name = h.backingFile === undefined ? new Uint8Array(0) : encoder.encode(h.backingFile);
  if (name.byteLength > 1023) throw new RangeError(`Backing file name "${h.backingFile}" is longer than 1023 bytes`);
  let extBytes = 8;
  for (const ext of exts) extBytes += 8 + Math.ceil(ext.data.byteLength / 8) * 8;
  const total = h.headerLength + extBytes + name.byteLength;
  if (total > h.clusterBytes) throw new RangeError(`The qcow2 header area (${total} bytes) does not fit in one ${h.clusterBytes}-byte cluster`);
  const out = new Uint8Array(total);
  out.set(h.raw.subarray(0, Math.min(h.raw.byteLength, h.headerLength)));
  const view = new DataView(out.buffer);
  view.setUint32(0, QCOW2_MAGIC);
  view.setUint32(4, h.version);
  writeU64(view, 8, name.byteLength ? h.headerLength + extBytes : 0);
  view.setUint32(16, name.byteLength);
  view.setUint32(20, h.clusterBits);
  writeU64(view, 24, h.sizeBytes);
  view.setUint32(32, h.cryptMethod);
  view.setUint32(36, h.l1Size);
  writeU64(view, 40, h.l1TableOffset);
  writeU64(view, 48, h.refcountTableOffset);
  view.setUint32(56, h.refcountTableClusters);
  view.setUint32(60, h.nbSnapshots);
  writeU64(view, 64, h.snapshotsOffset);
  if (h.version === 3) {
    view.setBigUint64(72, h.incompatibleFeatures);
    view.setBigUint64(80, h.compatibleFeatures);
    view.setBigUint64(88, h.autoclearFeatures);
    view.setUint32(96, h.refcountOrder);
    view.setUint32(100, h.headerLength);
    if (h.headerLength > 104) view.setUint8(104, h.compressionType);
  }
  let at = h.headerLength;
  for (const ext of exts) {
    view.setUint32(at, ext.type);
    view.setUint32(at + 4, ext.data.byteLength);
    out.set(ext.data, at + 8);
    at += 8 + Math.ceil(ext.data.byteLength / 8) * 8;
  }
  at += 8; // the end-of-extensions marker is zeros
  out.set(name, at);
  return out;
}
