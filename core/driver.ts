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
import { checkCapabilityList, checkPeerList, HYPERVISOR_OPERATIONS, type HypervisorOperation } from "./capabilities.ts";
import type { Clock } from "./clock.ts";
import type { BackingLayer, BlockCopyDestination, DiskConfig, DiskInfo, DomainConfig, DomainInfo, VolumeRef } from "./domain.ts";
import type { EventBus } from "./event_bus.ts";
import type { Job } from "./job.ts";
import type { JobManager } from "./jobs/types.ts";
import type { SignalOptions } from "./options.ts";
import type { GenericSchema } from "valibot";
import type { BasePoolConfig, IscsiChapAuth, PoolConfig } from "./storage_pool.ts";
import type { PoolConfigStore } from "./storage/pool_config_store.ts";
import type { ConnectionUri } from "./uri.ts";
import type { BackingRef, VolumeInfo } from "./volume.ts";
import { checkDefinition } from "./driver_definition.ts";
import type { StorageAccess, StoragePoolBackend, VolumeLocation } from "./storage_backend.ts";

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

/** A pool a hypervisor driver brings with it. */
export interface InitialPool {
  /** Its definition. */
  readonly config: PoolConfig;
  /** Whether it starts active. */
  readonly active: boolean;
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
  /**
   * Writes bytes to a running domain's disk as its guest would. A block copy or active commit on that
   * disk sees the write as QEMU's mirror does (copied again before `ready`, mirrored at once in `ready`),
   * so code that waits for `ready` and then pivots can be tested.
   *
   * @param domain Domain name.
   * @param disk Disk target (`"vda"`).
   * @param offset Byte offset in the disk.
   * @param bytes What the guest writes.
   * @throws {StateError} When the domain is not running.
   */
  guestWrite(domain: string, disk: string, offset: number, bytes: Uint8Array): Promise<void>;
}

/**
 * A disk job core hands a driver for a running domain, after its own checks: the disk exists, no job
 * works on it, the arguments are valid. The driver registers its job with `locks` (the disk's lock).
 */
export interface LiveBlockJobRequest {
  /** Domain name. */
  readonly domain: string;
  /** The disk's definition. */
  readonly disk: DiskConfig;
  /** Locks the job must take (`jobs.create({ locks })`). */
  readonly locks: readonly string[];
  /** Cap in bytes per second (0: unlimited). */
  readonly bandwidth: number;
  /** Aborts the start (not the job). */
  readonly signal?: AbortSignal;
}

/** A live block pull (`dom.blockPull()` on a running domain). */
export interface LiveBlockPullRequest extends LiveBlockJobRequest {
  /** Keep this backing image (path) and everything below it. */
  readonly base?: string;
}

/** A live block copy (`dom.blockCopy()` on a running domain). */
export interface LiveBlockCopyRequest extends LiveBlockJobRequest {
  /** Where the copy goes. */
  readonly destination: BlockCopyDestination;
  /** Format of a created destination, when the user gave one. */
  readonly format?: "raw" | "qcow2";
  /** Copy only the top image (QEMU `sync: "top"`). */
  readonly shallow: boolean;
  /** The destination exists already. */
  readonly reuseExisting: boolean;
  /** Dirty-tracking granularity, when the user gave one. */
  readonly granularityBytes?: number;
}

/** A live block commit (`dom.blockCommit()` on a running domain), `top` and `base` resolved by core. */
export interface LiveBlockCommitRequest extends LiveBlockJobRequest {
  /** The disk's chain, active image first (as `dom.disks()` reports it). */
  readonly chain: readonly BackingLayer[];
  /** Index in `chain` of the uppermost committed image (0: active commit, two-phase). */
  readonly topIndex: number;
  /** Index in `chain` of the image that receives the data (> `topIndex`). */
  readonly baseIndex: number;
  /** Delete the committed images' volumes once the commit completed. */
  readonly deleteCommitted: boolean;
}

/** A disk's image as a pool volume. */
export interface VolumeDiskSource {
  /** The volume. */
  readonly volume: VolumeRef;
  /** Its format. */
  readonly format: string;
}

/** A disk's image as a host path. */
export interface PathDiskSource {
  /** The path. */
  readonly path: string;
  /** Its format. */
  readonly format: string;
}

/** What a disk's definition points at after a pivot: a pool volume, or a host path. */
export type DiskSource = VolumeDiskSource | PathDiskSource;

/**
 * Storage a driver serves itself, instead of core's pool manager and storage backends: the `remote`
 * driver, whose pools and volumes live in the daemon it talks to (libvirt's storage driver).
 */
export interface DriverStorage {
  /** Becomes `conn.pools`. */
  readonly pools: import("./storage_pool.ts").PoolCollection;
  /** Becomes `conn.volumes`. */
  readonly volumes: import("./volume.ts").VolumeLookup;
}

/**
 * Jobs a driver's peer owns (virtkitd's), mirrored into the connection's job manager through
 * `core/jobs/job_mirror.ts`: the manager stays the one home of job semantics; this only lets
 * `conn.jobs.list()` and `get()` bring the mirror up to date first, so a job another client started a
 * moment ago is there.
 */
export interface DriverJobs {
  /** Mirrors the peer's jobs not seen yet (all of them, or the one `id`) before the manager answers. */
  refresh(options?: SignalOptions & { id?: string }): Promise<void>;
}

/**
 * A hypervisor connection, as a driver implements it. Domain names reach it validated. Leave out what
 * the hypervisor cannot do: the public API then throws `UnsupportedError` for it.
 *
 * @example A driver for one fixed, running domain (read-only: it cannot be started or stopped)
 * ```ts
 * import { createRegistry, defineHypervisorDriver, MiB, NotFoundError, UnsupportedError, type HypervisorConnection } from "virtkit";
 * const config = { name: "vm1", uuid: "6f1e6c7a-2f1d-4a59-9f8e-2a6d1c3b9e10", vcpus: 1, memoryBytes: MiB(64), disks: [] };
 * const hypervisor: HypervisorConnection = {
 *   async listDomains() { return ["vm1"]; },
 *   async domainInfo(name) {
 *     if (name !== "vm1") throw new NotFoundError("domain", name);
 *     return { name, uuid: config.uuid, state: "running", vcpus: 1, memoryBytes: config.memoryBytes };
 *   },
 *   async domainConfig() { return structuredClone(config); },
 *   async close() {},
 * };
 * const registry = createRegistry();
 * registry.register(defineHypervisorDriver({ name: "fixed", schemes: ["fixed"], open: async () => hypervisor }));
 * await using conn = await registry.connect("fixed:///");
 * const dom = await conn.domains.get("vm1");
 * if ((await dom.info()).state !== "running") throw new Error("unexpected");
 * if (!((await dom.destroy().catch((e: unknown) => e)) instanceof UnsupportedError)) throw new Error("unexpected");
 * ```
 */
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
  /**
   * Starts a block pull on a running (or paused) domain; returns once the job exists. Shut-off domains
   * never reach the driver (core pulls through the image engine) unless {@linkcode HypervisorConnection.peerRunsOfflineBlockJobs}
   * says so. Absent: a live pull is unsupported.
   */
  liveBlockPull?(request: LiveBlockPullRequest): Promise<Job<void>>;
  /** Starts a block copy (mirror) on a running domain; its job reaches `ready` and pivots on `finalize()`. */
  liveBlockCopy?(request: LiveBlockCopyRequest): Promise<Job<void>>;
  /** Starts a block commit on a running domain; an active commit (`topIndex` 0) is two-phase. */
  liveBlockCommit?(request: LiveBlockCommitRequest): Promise<Job<void>>;
  /**
   * `true` when the driver's peer runs block jobs of a shut-off domain itself (virtkitd, whose own core
   * does): then `liveBlockPull`, `liveBlockCopy` and `liveBlockCommit` are called whatever the domain's
   * state, after core's checks and disk lock, instead of core running the offline job through the image
   * engine and `setDiskSource` (which such a driver need not have). Absent or `false`: only running and
   * paused domains reach them.
   */
  readonly peerRunsOfflineBlockJobs?: boolean;
  /**
   * Points a disk's definition at another image: what an offline copy or active commit does on
   * `finalize()` (running domains pivot in their live job). `disks()` and the persisted definition say so.
   */
  setDiskSource?(name: string, disk: string, source: DiskSource, options?: SignalOptions): Promise<void>;
  /** Pools the driver brings with it (the test driver's seed); defined when the connection opens. */
  initialPools?(): Promise<InitialPool[]>;
  /** Present only on the `test` driver. */
  readonly testing?: TestingControls;
  /** When present, `conn.pools` and `conn.volumes` are the driver's own (see {@linkcode DriverStorage}). */
  readonly storage?: DriverStorage;
  /** When present, `conn.jobs` refreshes the peer's mirrored jobs before it answers (see {@linkcode DriverJobs}). */
  readonly jobs?: DriverJobs;
  /**
   * Where this connection's pool definitions persist (the qemu driver: its state directory), so they
   * survive a restart. Absent: in memory for the connection's life.
   */
  readonly poolConfigStore?: PoolConfigStore;
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
  /**
   * The optional operations its connections implement. docs/support-matrix.md is generated from it, and
   * core checks every opened connection against it (absent: not declared, shown so in the matrix).
   */
  readonly capabilities?: readonly HypervisorOperation[];
  /**
   * The peers its connections may talk to, for a driver whose behaviour depends on which (the remote
   * driver: libvirtd or virtkitd). docs/support-matrix.md gives each peer a row, and core checks that an
   * opened connection's {@linkcode HypervisorConnection.peerRunsOfflineBlockJobs} is one a peer declares.
   */
  readonly peers?: readonly DriverPeer[];
  /** Opens a connection. */
  open(uri: ConnectionUri, ctx: DriverContext): Promise<HypervisorConnection>;
}

/** One peer a hypervisor driver's connection may talk to (see {@linkcode HypervisorDriverDefinition.peers}). */
export interface DriverPeer {
  /** What it is (`"libvirtd"`, `"virtkitd"`). */
  readonly name: string;
  /** Whether it runs block jobs of shut-off domains itself: the connection's `peerRunsOfflineBlockJobs` on it. */
  readonly runsOfflineBlockJobs: boolean;
}

/** A URI scheme a driver serves; `+` is not allowed because it separates the transport. */
const URI_SCHEME = /^[a-z][a-z0-9.-]*$/;

/**
 * Defines a hypervisor driver: checks the name, the URI schemes and `open`, tags `kind` and freezes the
 * result. Register it with `registry.register(def)`; defining it registers nothing.
 *
 * @param def The driver's name, the URI schemes it serves, and `open(uri, ctx)`.
 * @returns A frozen definition with `kind: "hypervisor"`.
 * @throws {TypeError} For a malformed name, no or malformed or repeated schemes, or a missing `open`.
 * @example
 * ```ts
 * import { defineHypervisorDriver } from "virtkit";
 * const demo = defineHypervisorDriver({
 *   name: "demo",
 *   schemes: ["demo"],
 *   open: async () => ({
 *     listDomains: async () => [],
 *     domainInfo: async (name) => { throw new Error(`no domain ${name}`); },
 *     domainConfig: async (name) => { throw new Error(`no domain ${name}`); },
 *     close: async () => {},
 *   }),
 * });
 * if (demo.kind !== "hypervisor" || !Object.isFrozen(demo)) throw new Error("unexpected");
 * ```
 */
export function defineHypervisorDriver(def: Omit<HypervisorDriverDefinition, "kind">): HypervisorDriverDefinition {
  const { name } = checkDefinition(def, "hypervisor driver");
  const schemes: unknown = def.schemes;
  if (!Array.isArray(schemes) || schemes.length === 0) {
    throw new TypeError(`Invalid hypervisor driver "${name}": schemes must be a non-empty array of URI schemes`);
  }
  for (const scheme of schemes) {
    if (typeof scheme !== "string" || !URI_SCHEME.test(scheme)) {
      throw new TypeError(`Invalid hypervisor driver "${name}": scheme ${JSON.stringify(scheme)} must be lower-case letters, digits, "." and "-", starting with a letter`);
    }
  }
  if (new Set(schemes).size !== schemes.length) {
    throw new TypeError(`Invalid hypervisor driver "${name}": a scheme is listed twice`);
  }
  const capabilities = checkCapabilityList(def.capabilities, HYPERVISOR_OPERATIONS, `hypervisor driver "${name}"`);
  const peers = checkPeerList(def.peers, `hypervisor driver "${name}"`);
  return Object.freeze({
    kind: "hypervisor",
    name,
    schemes: Object.freeze([...schemes] as string[]),
    ...(capabilities === undefined ? {} : { capabilities: capabilities as readonly HypervisorOperation[] }),
    ...(peers === undefined ? {} : { peers }),
    open: def.open,
  });
}
