/**
 * The public domain (virtual machine) contract.
 *
 * @module
 */
import type { Job } from "./job.ts";
import type { SignalOptions } from "./options.ts";
import type { DomainXmlOptions } from "./xml/domain_xml.ts";
import type { XmlParseOptions, XmlWarning } from "./xml/element_reader.ts";

/** Domain run states, as libvirt reports them. */
export type DomainState = "running" | "paused" | "shutoff" | "crashed";

/** Image formats virtkit knows by name. */
export type ImageFormat = "raw" | "qcow2" | (string & {});

/** A volume named by its pool and its name. */
export interface VolumeRef {
  /** Pool name. */
  readonly pool: string;
  /** Volume name within the pool. */
  readonly name: string;
}

export type { DiskConfig } from "./config/disk_config.ts";
export type { CheckedDomainConfig, DomainConfig } from "./config/domain_config.ts";
import type { DomainConfig } from "./config/domain_config.ts";

/** A snapshot of a domain's state. */
export interface DomainInfo {
  /** Domain name. */
  readonly name: string;
  /** Domain UUID. */
  readonly uuid: string;
  /** Current run state. */
  readonly state: DomainState;
  /** Virtual CPUs. */
  readonly vcpus: number;
  /** Guest memory in bytes. */
  readonly memoryBytes: number;
}

/** One layer of a disk's backing chain. */
export interface BackingLayer {
  /** Host path (or key) of the image. */
  readonly path: string;
  /** Its format. */
  readonly format: ImageFormat;
}

/** A disk as the domain sees it now, with its backing chain (nearest first). */
export interface DiskInfo {
  /** Guest target (`"vda"`). */
  readonly target: string;
  /** Host path (or key) of the top image. */
  readonly path: string;
  /** Format of the top image. */
  readonly format: ImageFormat;
  /** Backing images, nearest first; empty when the disk stands alone. */
  readonly backingChain: readonly BackingLayer[];
  /** The volume behind the disk, when it is a pool volume. */
  readonly volume?: VolumeRef;
}

/** Options of {@linkcode Domain.blockPull}. */
export interface BlockPullOptions extends SignalOptions {
  /** Cap in bytes per second; 0 or absent is unlimited. */
  bandwidth?: number;
  /** Keep this backing image (path) and everything under it; pull only the layers above. */
  base?: string;
}

/** A host path as a block copy destination. */
export interface PathRef {
  /** The path. */
  readonly path: string;
}

/** Where {@linkcode Domain.blockCopy} copies to: a volume of a pool, or a host path. */
export type BlockCopyDestination = VolumeRef | PathRef;

/** Options of {@linkcode Domain.blockCopy} (libvirt `virDomainBlockCopy`). */
export interface BlockCopyOptions extends SignalOptions {
  /** The new image: `{ pool, name }` (created in that pool unless `reuseExisting`) or `{ path }`. */
  destination: BlockCopyDestination;
  /** Format of a created destination (default: the source's; `shallow` makes it qcow2). */
  format?: "raw" | "qcow2";
  /** Copy only the top image and give the destination the same backing (libvirt `--shallow`, QEMU `sync: "top"`). */
  shallow?: boolean;
  /** Use an existing destination (libvirt `--reuse-external`); its size must be at least the disk's. */
  reuseExisting?: boolean;
  /** Cap in bytes per second; 0 or absent is unlimited. */
  bandwidth?: number;
  /** Size of the dirty-tracking unit, a power of two from 512 B to 64 MiB (QEMU `granularity`). */
  granularityBytes?: number;
}

/** Options of {@linkcode Domain.blockCommit} (libvirt `virDomainBlockCommit`). */
export interface BlockCommitOptions extends SignalOptions {
  /**
   * The uppermost image committed: a path of the disk's chain, or an index as libvirt writes it (`"vda[1]"`:
   * 0 is the active image, 1 its backing, ...). Default: the active image (an active, two-phase commit).
   */
  top?: string;
  /** The image that receives the data, below `top` (path or index). Default: the deepest image. */
  base?: string;
  /** Cap in bytes per second; 0 or absent is unlimited. */
  bandwidth?: number;
  /** Delete the committed images' volumes once the commit has completed (libvirt `--delete`). */
  deleteCommitted?: boolean;
}

/** A virtual machine. Methods re-read state from the driver; the handle itself holds no state. */
export interface Domain {
  /** Domain name. */
  readonly name: string;
  /** Domain UUID. */
  readonly uuid: string;
  /** Current state, vCPUs and memory. */
  info(options?: SignalOptions): Promise<DomainInfo>;
  /** The configuration it was defined with. */
  config(options?: SignalOptions): Promise<DomainConfig>;
  /** Its configuration as libvirt domain XML (`virsh dumpxml --inactive`), for `virsh define`. */
  xml(options?: SignalOptions & DomainXmlOptions): Promise<string>;
  /** Starts a shut-off domain; `StateError` if it runs. */
  start(options?: SignalOptions): Promise<void>;
  /** Asks the guest to power off (ACPI); `StateError` if it is not running. */
  shutdown(options?: SignalOptions & { timeoutMs?: number }): Promise<void>;
  /** Hard power-off, like pulling the plug; `StateError` if shut off. */
  destroy(options?: SignalOptions): Promise<void>;
  /** Pauses the vCPUs; `StateError` unless running. */
  suspend(options?: SignalOptions): Promise<void>;
  /** Resumes paused vCPUs; `StateError` unless paused. */
  resume(options?: SignalOptions): Promise<void>;
  /** Removes the definition of a shut-off domain; `StateError` if it runs. */
  undefine(options?: SignalOptions): Promise<void>;
  /** Its disks with their backing chains. */
  disks(options?: SignalOptions): Promise<DiskInfo[]>;
  /**
   * Starts filling `disk` from its backing chain in the background (libvirt `virDomainBlockPull`). Works
   * on a shut-off domain too, through the image engine. Resolves once the job has started.
   *
   * @param disk Target name (`"vda"`).
   * @throws {NotFoundError} For an unknown disk.
   * @throws {ConflictError} When a job already works on that disk.
   */
  blockPull(disk: string, options?: BlockPullOptions): Promise<Job<void>>;
  /**
   * Starts copying `disk` to a new image while the guest keeps writing (libvirt `virDomainBlockCopy`,
   * QEMU `blockdev-mirror`). The job (type `"block-copy"`) becomes `ready` once the copy is in sync and
   * stays in sync; `finalize()` then pivots the domain onto the copy (`virsh blockjob --pivot`), `abort()`
   * leaves the domain on its source with the copy consistent as of that moment. Works on a shut-off
   * domain too (ready as soon as the copy is done).
   *
   * @throws {NotFoundError} For an unknown disk.
   * @throws {ConflictError} When a job already works on that disk, or the destination exists without `reuseExisting`.
   */
  blockCopy(disk: string, options: BlockCopyOptions): Promise<Job<void>>;
  /**
   * Starts committing images of `disk`'s chain into a lower one (libvirt `virDomainBlockCommit`). An
   * intermediate `top` completes in one phase and the chain above is re-linked to `base`; the active
   * image (the default `top`) makes a two-phase job: `ready`, then `finalize()` pivots onto `base`.
   *
   * @throws {NotFoundError} For an unknown disk, or a `top` or `base` not in its chain.
   * @throws {TypeError} For a `base` not below `top`, or a top without backing.
   * @throws {ConflictError} When a job already works on that disk.
   */
  blockCommit(disk: string, options?: BlockCommitOptions): Promise<Job<void>>;
  /** The active (unfinished) job on that disk, if any. */
  blockJob(disk: string, options?: SignalOptions): Promise<Job | undefined>;
}

/** One entry of {@linkcode DomainCollection.listWithInfo}: a domain's handle and its info. */
export interface DomainListing {
  /** The handle, as `list()` returns it. */
  readonly domain: Domain;
  /** Its name, UUID, state and size when it was listed. */
  readonly info: DomainInfo;
}

/** The domains of a connection. */
export interface DomainCollection {
  /** Every defined domain, in definition order. */
  list(options?: SignalOptions): Promise<Domain[]>;
  /**
   * Every defined domain with its {@linkcode DomainInfo} as read while listing: what `list()` followed
   * by `info()` on each handle returns, with one driver call per domain instead of two (a daemon
   * answering `virsh list --all` needs both).
   *
   * @example
   * ```ts
   * import { connect } from "virtkit";
   * await using conn = await connect("test:///default");
   * const [first] = await conn.domains.listWithInfo();
   * if (first?.domain.name !== "test" || first.info.state !== "running") throw new Error("unexpected");
   * ```
   */
  listWithInfo(options?: SignalOptions): Promise<DomainListing[]>;
  /** One domain by name; `NotFoundError` when there is none. */
  get(name: string, options?: SignalOptions): Promise<Domain>;
  /** Defines a new (shut-off) domain; `ConflictError` when the name is taken. */
  define(config: DomainConfig, options?: SignalOptions): Promise<Domain>;
  /**
   * Defines a domain from libvirt domain XML (`virsh dumpxml`), checked like `define()`. What virtkit
   * does not model goes to `onWarning` (or is a `TypeError` with `strict: true`).
   */
  defineXml(xml: string, options?: DefineXmlOptions): Promise<Domain>;
}

/** Options of `defineXml()` (domains and pools). */
export interface DefineXmlOptions extends SignalOptions, XmlParseOptions {
  /** Told about each element or attribute virtkit does not model and so drops. */
  onWarning?: (warning: XmlWarning) => void;
}
