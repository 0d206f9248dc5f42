/**
 * Format probing from content, as `qemu-img info` does: qcow2 in detail, other formats by their magic.
 *
 * @module
 */
import type { PositionalFile } from "./positional_file.ts";
import { INCOMPAT_EXTL2, parseQcow2Header, QCOW2_MAGIC } from "./qcow2/header.ts";

/** What the qcow2 header says, as {@linkcode probeImage} reports it. */
export interface Qcow2ProbeInfo {
  /** Format version (`compat=0.10` is 2, `compat=1.1` is 3). */
  version: 2 | 3;
  /** Cluster size in bytes. */
  clusterBytes: number;
  /** The backing file recorded in the header, with its format when the header names it. */
  backing?: {
    /** The backing file's name as recorded. */
    path: string;
    /** Its format, when the header names one. */
    format?: string;
  };
  /** The image is encrypted (AES or LUKS); the engine cannot read it. */
  encrypted: boolean;
  /** Extended L2 entries (subclusters); the engine cannot read it. */
  extendedL2: boolean;
  /** `"zlib"` or `"zstd"` (any other value as `"type-N"`). */
  compressionType: string;
  /** Width of a refcount in bits. */
  refcountBits: number;
  /** Internal snapshots. */
  snapshots: number;
  /** The dirty bit (lazy refcounts not yet repaired). */
  dirty: boolean;
  /** The corrupt bit QEMU sets when it found damage. */
  corrupt: boolean;
}

/** The result of {@linkcode probeImage}. */
export interface ImageProbe {
  /** `"raw"`, `"qcow2"`, or another format's name (`"vmdk"`, `"vdi"`, `"vhdx"`, `"vpc"`, `"qed"`, `"luks"`, `"qcow"`). */
  format: string;
  /** The guest-visible size: from the header when known, else the file's size. */
  virtualSizeBytes: number;
  /** The file's size. */
  fileBytes: number;
  /** Present for qcow2. */
  qcow2?: Qcow2ProbeInfo;
}

const PROBE_BYTES = 2 * 1024 * 1024;

/**
 * Recognises an image's format from its first bytes. Anything not recognised is raw (as with an explicit
 * raw format, never guessed from a file name).
 *
 * @param file The open image.
 * @param name The image's name, for messages (default `"image"`).
 * @returns The format and sizes.
 * @throws {CorruptImageError} When the file has a qcow2 magic but a damaged header.
 * @throws {UnsupportedError} For a qcow2 version other than 2 and 3.
 * @example
 * ```ts
 * import { createMemoryFile } from "virtkit";
 * import { createQcow2 } from "virtkit";
 * import { probeImage } from "virtkit";
 * const file = createMemoryFile();
 * await createQcow2(file, { capacityBytes: 1 << 30 });
 * const probe = await probeImage(file);
 * if (probe.format !== "qcow2" || probe.virtualSizeBytes !== 1 << 30) throw new Error("unexpected");
 * ```
 */
export async function probeImage(file: PositionalFile, name = "image"): Promise<ImageProbe> {
  const fileBytes = await file.size();
  const head = new Uint8Array(Math.min(512, fileBytes));
  const got = await file.read(0, head);
  const view = new DataView(head.buffer, 0, got);
  const ascii = (at: number, length: number) => String.fromCharCode(...head.subarray(at, Math.min(got, at + length)));
  const u64le = (at: number) => (got >= at + 8 ? view.getUint32(at, true) + view.getUint32(at + 4, true) * 4294967296 : Number.NaN);
  const other = (format: string, virtualSizeBytes = fileBytes): ImageProbe => ({
    format,
    virtualSizeBytes: Number.isSafeInteger(virtualSizeBytes) && virtualSizeBytes >= 0 ? virtualSizeBytes : fileBytes,
    fileBytes,
  });
  if (got >= 4 && view.getUint32(0) === QCOW2_MAGIC) {
    if (got >= 8 && view.getUint32(4) === 1) return other("qcow", got >= 32 ? view.getUint32(24) * 4294967296 + view.getUint32(28) : fileBytes);
    const clusterBits = got >= 24 ? view.getUint32(20) : 0;
    const areaBytes = clusterBits >= 9 && clusterBits <= 21 ? Math.min(2 ** clusterBits, fileBytes, PROBE_BYTES) : got;
    const area = new Uint8Array(areaBytes);
    const areaGot = await file.read(0, area);
    const h = parseQcow2Header(area.subarray(0, areaGot), fileBytes, name);
    const compression = ["zlib", "zstd"][h.compressionType] ?? `type-${h.compressionType}`;
    return {
      format: "qcow2",
      virtualSizeBytes: h.sizeBytes,
      fileBytes,
      qcow2: {
        version: h.version,
        clusterBytes: h.clusterBytes,
        ...(h.backingFile !== undefined
          ? { backing: h.backingFormat !== undefined ? { path: h.backingFile, format: h.backingFormat } : { path: h.backingFile } }
          : {}),
        encrypted: h.cryptMethod !== 0,
        extendedL2: (h.incompatibleFeatures & INCOMPAT_EXTL2) !== 0n,
        compressionType: compression,
        refcountBits: 2 ** h.refcountOrder,
        snapshots: h.nbSnapshots,
        dirty: (h.incompatibleFeatures & 1n) !== 0n,
        corrupt: (h.incompatibleFeatures & 2n) !== 0n,
      },
    };
  }
  if (ascii(0, 4) === "KDMV") return other("vmdk", u64le(12) * 512);
  if (ascii(0, 21) === "# Disk DescriptorFile") return other("vmdk");
  if (got >= 0x48 && view.getUint32(0x40, true) === 0xbeda107f) return other("vdi", u64le(0x170));
  if (ascii(0, 8) === "vhdxfile") return other("vhdx");
  if (ascii(0, 8) === "conectix") return other("vpc");
  if (ascii(0, 4) === "QEF\0") return other("qed", u64le(48));
  if (ascii(0, 6) === "LUKS\xba\xbe") return other("luks");
  return other("raw");
}
