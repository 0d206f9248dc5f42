/**
 * The public volume contract.
 *
 * @module
 */
import type { ImageFormat } from "./domain.ts";
import type { DownloadJob, Job, UploadJob } from "./job.ts";
import type { SignalOptions } from "./options.ts";

/**
 * Most backing images below a top image that virtkit follows (the image engine, disk chains, pulls and
 * commits alike); a deeper chain is taken for a loop made outside virtkit. libvirt and QEMU have no
 * smaller limit in practice, and no real chain comes near it.
 */
export const MAX_BACKING_CHAIN_DEPTH = 32;

/** A backing image reference. */
export interface BackingRef {
  /** Host path (or key) of the backing image. */
  readonly path: string;
  /** Its format. */
  readonly format: ImageFormat;
}

/** A snapshot of a volume's sizes. */
export interface VolumeInfo {
  /** Virtual size the guest sees. */
  readonly capacityBytes: number;
  /** Bytes really allocated (blocks used). */
  readonly allocationBytes: number;
  /** Size of the file or device itself. */
  readonly physicalBytes: number;
  /** Image format. */
  readonly format: ImageFormat;
  /** Its backing image, when it has one. */
  readonly backing?: BackingRef;
}

/**
 * A run of a volume's guest-visible address space, like one entry of `qemu-img map --output=json`.
 * Runs come in order and cover the asked range without overlap.
 */
export interface Extent {
  /** Start, in bytes. */
  readonly offset: number;
  /** Length, in bytes. */
  readonly length: number;
  /** Reading it needs I/O (false for holes and zero clusters). */
  readonly data: boolean;
  /** It reads as zeros. */
  readonly zero: boolean;
  /** Which layer serves it: 0 the volume itself, 1 its backing, and so on. */
  readonly depth: number;
}

/** A range of a volume. */
export interface RangeOptions extends SignalOptions {
  /** Start offset (default 0). */
  offset?: number;
  /** Length (default: to the end). */
  length?: number;
}

/** A range with a cap. */
export interface CappedRangeOptions extends RangeOptions {
  /** Cap in bytes per second; 0 or absent is unlimited. */
  bandwidth?: number;
}

/** A storage volume. */
export interface Volume {
  /** Name within its pool. */
  readonly name: string;
  /** Unique key across all pools (the canonical path for file volumes). */
  readonly key: string;
  /** Host path, or a driver-specific locator. */
  readonly path: string;
  /** Name of its pool. */
  readonly pool: string;
  /** Sizes, format and backing. */
  info(options?: SignalOptions): Promise<VolumeInfo>;
  /** Its allocation map over a range (the whole volume by default). */
  extents(options?: RangeOptions): AsyncIterable<Extent>;
  /** Fills holes in the range (with backing data, or allocated zeros) as a job. */
  allocate(options?: CappedRangeOptions): Promise<Job<void>>;
  /** Offline flatten: copies backing data in, then drops the backing, as a job. */
  pull(options?: SignalOptions & { bandwidth?: number; base?: string }): Promise<Job<void>>;
  /** Overwrites every byte with zeros, as a job. */
  wipe(options?: SignalOptions & { bandwidth?: number }): Promise<Job<void>>;
  /** Streams bytes into the volume through `job.writable`. */
  upload(options?: CappedRangeOptions): Promise<UploadJob>;
  /** Streams the volume's guest-visible bytes out through `job.readable`. */
  download(options?: CappedRangeOptions): Promise<DownloadJob>;
  /** Changes the capacity; shrinking needs `shrink: true`. */
  resize(capacityBytes: number, options?: SignalOptions & { shrink?: boolean }): Promise<void>;
  /** Deletes the volume; `ConflictError` while a job uses it. */
  delete(options?: SignalOptions): Promise<void>;
}

/** What `pool.volumes.create()` takes. */
export interface VolumeCreateOptions extends SignalOptions {
  /** Name: 1 to 255 characters, no `/`, no NUL, not `.` or `..`. */
  name: string;
  /** Virtual size in bytes. */
  capacityBytes: number;
  /** Image format (default `"raw"`). */
  format?: "raw" | "qcow2";
  /** A backing image (qcow2 only). */
  backing?: BackingRef;
}

/** What `pool.volumes.clone()` takes. */
export interface VolumeCloneOptions extends SignalOptions {
  /** Name of the new volume. */
  name: string;
  /** Format of the new volume (default: the source's). */
  format?: "raw" | "qcow2";
  /** Cap in bytes per second. */
  bandwidth?: number;
}

/** The volumes of one pool. */
export interface VolumeCollection {
  /** Every volume, by name. */
  list(options?: SignalOptions): Promise<Volume[]>;
  /** One volume by name; `NotFoundError` when there is none. */
  get(name: string, options?: SignalOptions): Promise<Volume>;
  /** Creates a thin volume at once; `ConflictError` when the name is taken. */
  create(options: VolumeCreateOptions): Promise<Volume>;
  /** Copies `source` (any pool) into a new volume of this pool, as a job resolving to it. */
  clone(source: Volume, options: VolumeCloneOptions): Promise<Job<Volume>>;
}

/** Volume look-ups across every pool of a connection. */
export interface VolumeLookup {
  /** Finds a volume by key or by path; `NotFoundError` when no pool has it. */
  lookup(query: { key: string } | { path: string }, options?: SignalOptions): Promise<Volume>;
}
