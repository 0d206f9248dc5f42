/**
 * The driver-level contracts: what a hypervisor driver or a storage backend implements. Users never call
 * these directly; the public objects (`Connection`, `Domain`, `StoragePool`, `Volume`) check arguments
 * and dispatch here, and a missing optional method becomes an `UnsupportedError` (libvirt's driver tables).
 *
 * Contracts, as libvirt writes them in its headers:
 * - methods marked "required" must exist; every other one is optional;
 * - a method that creates something must remove what it created when it fails;
 * - names and sizes reaching a driver have already been validated by core;
 * - methods throw `NotFoundError` for unknown objects and `StateError` for wrong states.
 *
 * @module
 */
import type { Clock } from "./clock.ts";
import type { BlockPullOptions, DiskInfo, DomainConfig, DomainInfo } from "./domain.ts";
import type { EventBus } from "./event_bus.ts";
import type { Job } from "./job.ts";
import type { JobManager } from "./jobs/types.ts";
import type { SignalOptions } from "./options.ts";
import type { PoolConfig } from "./storage_pool.ts";
import type { ConnectionUri } from "./uri.ts";
import type { BackingRef, VolumeInfo } from "./volume.ts";
import type { VolumeIO } from "./volume_io.ts";

/** What core gives a driver when it opens a connection or a pool. */
export interface DriverContext {
  /** The parsed connection URI. */
  readonly uri: ConnectionUri;
  /** The connection's event bus: drivers emit domain, pool, volume and `qmp:event` events here. */
  readonly bus: EventBus;
  /** The connection's clock: every wait and timestamp goes through it. */
  readonly clock: Clock;
  /** The connection's one job list. */
  readonly jobs: JobManager;
  /** The connection's pools, to resolve disks on pool volumes. */
  readonly storage: StorageAccess;
  /** Where the connection keeps state on disk, when it has a place for it. */
  readonly stateDir?: string;
}

/** A volume as a backend names it. */
export interface VolumeRecord {
  /** Name within the pool. */
  readonly name: string;
  /** Unique key across pools (canonical path for files). */
  readonly key: string;
  /** Host path or locator. */
  readonly path: string;
}

/** What `createVolume` receives (already validated). */
export interface VolumeCreateSpec {
  /** Volume name. */
  readonly name: string;
  /** Virtual size in bytes. */
  readonly capacityBytes: number;
  /** Image format. */
  readonly format: "raw" | "qcow2";
  /** Backing image, qcow2 only. */
  readonly backing?: BackingRef;
}

/** One active pool of a storage backend. Sizes are bytes. */
export interface StoragePoolBackend {
  /** Required. Re-reads the underlying storage. */
  refresh(options?: SignalOptions): Promise<void>;
  /** Required. Capacity, allocation and free space. */
  sizes(options?: SignalOptions): Promise<{ capacityBytes: number; allocationBytes: number; availableBytes: number }>;
  /** Required. The volumes, sorted by name. */
  listVolumes(options?: SignalOptions): Promise<VolumeRecord[]>;
  /** Required. One volume; `NotFoundError` when absent. */
  lookupVolume(name: string, options?: SignalOptions): Promise<VolumeRecord>;
  /** Required. Sizes, format and backing of a volume. */
  volumeInfo(name: string, options?: SignalOptions): Promise<VolumeInfo>;
  /** Prepares the storage (mkdir, vgcreate). */
  build?(options?: SignalOptions): Promise<void>;
  /** Activates; called by `pool.start()` before the pool is marked active. */
  start?(options?: SignalOptions): Promise<void>;
  /** Deactivates. */
  stop?(options?: SignalOptions): Promise<void>;
  /** Destroys the storage of an inactive pool. */
  delete?(options?: SignalOptions): Promise<void>;
  /** Creates a volume atomically; `ConflictError` when the name exists; leaves nothing behind on failure. */
  createVolume?(spec: VolumeCreateSpec, options?: SignalOptions): Promise<VolumeRecord>;
  /** Deletes a volume. */
  deleteVolume?(name: string, options?: SignalOptions): Promise<void>;
  /** Changes a volume's capacity (core has checked `shrink`). */
  resizeVolume?(name: string, capacityBytes: number, options?: SignalOptions): Promise<void>;
  /** Opens a volume for positional I/O; the copy loop and every volume job run on it. */
  openVolume?(name: string, mode: { write: boolean }, options?: SignalOptions): Promise<VolumeIO>;
  /** Releases what the pool holds (called on stop and when the connection closes). */
  close?(): Promise<void>;
}

/** A storage backend: opens pools of one `type`. */
export interface StorageBackendDefinition<C extends PoolConfig = PoolConfig> {
  /** Always `"storage"`. */
  readonly kind: "storage";
  /** The pool `type` it serves (`"dir"`, `"logical"`, ...). */
  readonly name: string;
  /**
   * Checks a pool definition's own fields (name and type are checked by core).
   *
   * @throws {TypeError} For a malformed config.
   */
  validate?(config: C): void;
  /** Opens a pool (defined, maybe not built). */
  open(config: C, ctx: DriverContext): Promise<StoragePoolBackend>;
}

/** The pools of a connection, as drivers see them. */
export interface StorageAccess {
  /** Opens a volume of a pool for I/O. */
  openVolume(pool: string, volume: string, mode: { write: boolean }, options?: SignalOptions): Promise<VolumeIO>;
  /** The backend of an active pool. */
  backend(pool: string): Promise<StoragePoolBackend>;
  /** Finds the pool and volume behind a key or path. */
  findVolume(query: { key: string } | { path: string }): Promise<{ pool: string; volume: VolumeRecord } | undefined>;
}

/** Controls of the `test` driver: fault injection for users' own tests. */
export interface TestingControls {
  /**
   * Makes the next call of `operation` fail with `error`. Operation names are the public method names:
   * `"domain.start"`, `"pool.refresh"`, `"volume.resize"`, `"volumes.create"`, ...
   */
  failNext(operation: string, error: Error): void;
  /** Makes a running job fail now, or when it reaches `atBytes` of progress. */
  failJob(jobId: string, error: Error, options?: { atBytes?: number }): void;
  /** Loads domains, pools and volumes from a fixture description (JSON). */
  load(fixture: unknown): Promise<void>;
}

/** A hypervisor connection, as a driver implements it. Domain names reach it validated. */
export interface HypervisorConnection {
  /** Required. Names of the defined domains, in definition order. */
  listDomains(options?: SignalOptions): Promise<string[]>;
  /** Required. A domain's state; `NotFoundError` when it is not defined. */
  domainInfo(name: string, options?: SignalOptions): Promise<DomainInfo>;
  /** Required. A domain's definition. */
  domainConfig(name: string, options?: SignalOptions): Promise<DomainConfig>;
  /** Defines a domain (config complete, `uuid` set); `ConflictError` when the name is taken. */
  defineDomain?(config: DomainConfig, options?: SignalOptions): Promise<void>;
  /** Removes a shut-off domain's definition. */
  undefineDomain?(name: string, options?: SignalOptions): Promise<void>;
  /** Boots a domain. */
  startDomain?(name: string, options?: SignalOptions): Promise<void>;
  /** Graceful power-off; `StateError` (or a timeout error) when the guest does not comply. */
  shutdownDomain?(name: string, options?: SignalOptions & { timeoutMs?: number }): Promise<void>;
  /** Hard power-off. */
  destroyDomain?(name: string, options?: SignalOptions): Promise<void>;
  /** Pauses vCPUs. */
  suspendDomain?(name: string, options?: SignalOptions): Promise<void>;
  /** Resumes vCPUs. */
  resumeDomain?(name: string, options?: SignalOptions): Promise<void>;
  /** Disks with their backing chains. */
  domainDisks?(name: string, options?: SignalOptions): Promise<DiskInfo[]>;
  /** Starts a block pull; returns once the job exists (core has checked the bandwidth). */
  blockPull?(name: string, disk: string, options: BlockPullOptions): Promise<Job<void>>;
  /** Pools the driver brings with it (the test driver's seed); defined when the connection opens. */
  initialPools?(): Promise<Array<{ config: PoolConfig; active: boolean }>>;
  /** Present only on the `test` driver. */
  readonly testing?: TestingControls;
  /** Releases processes, sockets and timers. */
  close(): Promise<void>;
}

/** A hypervisor driver: opens connections for its URI schemes. */
export interface HypervisorDriverDefinition {
  /** Always `"hypervisor"`. */
  readonly kind: "hypervisor";
  /** Driver name (`"qemu"`, `"test"`). */
  readonly name: string;
  /** URI schemes it serves (`["qemu"]`). */
  readonly schemes: readonly string[];
  /** Opens a connection. */
  open(uri: ConnectionUri, ctx: DriverContext): Promise<HypervisorConnection>;
}
