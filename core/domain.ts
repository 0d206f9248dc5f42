/**
 * The public domain (virtual machine) contract.
 *
 * @module
 */
import type { Job } from "./job.ts";
import type { SignalOptions } from "./options.ts";

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
  /** The active (unfinished) job on that disk, if any. */
  blockJob(disk: string, options?: SignalOptions): Promise<Job | undefined>;
}

/** The domains of a connection. */
export interface DomainCollection {
  /** Every defined domain, in definition order. */
  list(options?: SignalOptions): Promise<Domain[]>;
  /** One domain by name; `NotFoundError` when there is none. */
  get(name: string, options?: SignalOptions): Promise<Domain>;
  /** Defines a new (shut-off) domain; `ConflictError` when the name is taken. */
  define(config: DomainConfig, options?: SignalOptions): Promise<Domain>;
}
