/**
 * virtkit: one API for virtual machines (domains), storage pools and volumes, and long-running jobs,
 * with drivers that plug in through a registry, in the spirit of libvirt. Runs from the same sources on
 * Deno 2 and Node.js 20+.
 *
 * `connect(uri)` picks a driver by the URI's scheme from the built-ins (`test:` is an in-memory,
 * deterministic driver for tests). Every size is in bytes and every bandwidth in bytes per second; every
 * long operation is a {@linkcode Job} listed in `conn.jobs`, and every change is an event on `conn.events`.
 *
 * @example Pull a thin disk from its backing image, on a virtual clock
 * ```ts
 * import { connect, createVirtualClock, MiB } from "virtkit";
 * const clock = createVirtualClock();
 * await using conn = await connect("test:///default", { clock });
 * const dom = await conn.domains.get("test");
 * const job = await dom.blockPull("vda", { bandwidth: MiB(100) });
 * const done = conn.events.next("job:completed");
 * await clock.runUntilIdle();
 * await job.wait();
 * if ((await done).job.id !== job.id) throw new Error("unexpected");
 * const [disk] = await dom.disks();
 * if (disk?.backingChain.length !== 0) throw new Error("the disk still has a backing chain");
 * ```
 *
 * @module virtkit
 */
import type { Connection, ConnectOptions } from "./core/connection.ts";
import { openConnection } from "./core/connect.ts";
import { createRegistry, type Registry } from "./core/registry.ts";
import { registerBuiltins } from "./drivers/mod.ts";

export * from "./core/units.ts";
export * from "./core/errors.ts";
export { createRealClock, createVirtualClock } from "./core/clock.ts";
export type { Clock, VirtualClock } from "./core/clock.ts";
export { parseUri } from "./core/uri.ts";
export type { ConnectionUri } from "./core/uri.ts";
export { createRegistry } from "./core/registry.ts";
export type {
  DriverKind,
  LazyDriver,
  LazyHypervisorDriver,
  LazyStorageBackend,
  Registry,
  RegistryEntry,
} from "./core/registry.ts";
export { API_VERSION, definePlugin } from "./core/plugin.ts";
export type { ConnectCleanup, ConnectListener, PluginDefinition, PluginHost, PluginTeardown } from "./core/plugin.ts";
export { defineHypervisorDriver } from "./core/driver.ts";
export { defineStorageBackend } from "./core/storage_backend.ts";
export type {
  DiskSource,
  DriverContext,
  DriverJobs,
  DriverStorage,
  HypervisorConnection,
  LiveBlockCommitRequest,
  LiveBlockCopyRequest,
  LiveBlockJobRequest,
  LiveBlockPullRequest,
  PathDiskSource,
  VolumeDiskSource,
  HypervisorDriverDefinition,
  TestingControls,
  InitialPool,
  DriverPeer,
} from "./core/driver.ts";
export type {
  AnyStorageBackendDefinition,
  StorageAccess,
  StorageBackendDefinition,
  StoragePoolBackend,
  VolumeCreateSpec,
  VolumeRecord,
  PoolSizes,
  VolumeLocation,
} from "./core/storage_backend.ts";
export type { VolumeIO } from "./core/volume_io.ts";
export {
  disksFromDomainXml,
  domainFromXml,
  domainToXml,
  MAX_XML_LENGTH,
  poolFromXml,
  poolToXml,
  VIRTKIT_POOL_NS,
  volumeFromXml,
  volumeToXml,
} from "./core/xml/mod.ts";
export type { DomainXmlOptions, VolumeXmlConfig, XmlParseOptions, XmlParseResult, XmlWarning } from "./core/xml/mod.ts";
export { checkDomainConfig, DEFAULT_MACHINE, DomainConfigSchema } from "./core/config/domain_config.ts";
export { DiskConfigSchema } from "./core/config/disk_config.ts";
export {
  checkPoolConfig,
  DirPoolConfigSchema,
  IscsiChapAuthSchema,
  IscsiPoolConfigSchema,
  LogicalPoolConfigSchema,
  MemoryPoolConfigSchema,
} from "./core/config/pool_config.ts";
export { checkVolumeSpec, VolumeCreateSpecSchema } from "./core/config/volume_spec.ts";
export type { Connection, ConnectOptions } from "./core/connection.ts";
export type { SignalOptions } from "./core/options.ts";
export type {
  BackingLayer,
  BlockCommitOptions,
  BlockCopyDestination,
  BlockCopyOptions,
  PathRef,
  BlockPullOptions,
  DefineXmlOptions,
  CheckedDomainConfig,
  DiskConfig,
  DiskInfo,
  Domain,
  DomainCollection,
  DomainConfig,
  DomainInfo,
  DomainListing,
  DomainState,
  ImageFormat,
  VolumeRef,
} from "./core/domain.ts";
export type {
  BasePoolConfig,
  DirPoolConfig,
  IscsiChapAuth,
  IscsiPoolAuth,
  IscsiSecretRef,
  IscsiPoolConfig,
  LogicalPoolConfig,
  MemoryPoolConfig,
  OtherPoolConfig,
  PoolCollection,
  PoolConfig,
  PoolInfo,
  PoolState,
  StoragePool,
} from "./core/storage_pool.ts";
export type {
  BackingRef,
  CappedRangeOptions,
  Extent,
  RangeOptions,
  Volume,
  VolumeCloneOptions,
  VolumeCollection,
  VolumeCreateOptions,
  VolumeInfo,
  VolumeLookup,
} from "./core/volume.ts";
export { MAX_BACKING_CHAIN_DEPTH } from "./core/volume.ts";
export { TERMINAL_JOB_STATES, UNFINISHED_JOB_STATES } from "./core/job.ts";
export type {
  DownloadJob,
  Job,
  JobInfo,
  JobList,
  JobListFilter,
  JobState,
  JobTarget,
  JobType,
  UploadJob,
} from "./core/job.ts";
export type {
  FinishedJobOutcome,
  JobController,
  JobHandle,
  JobManager,
  JobSpec,
  LocalJobContext,
  LocalJobSpec,
} from "./core/jobs/types.ts";
export { createJobMirror } from "./core/jobs/job_mirror.ts";
export type { JobMirror, JobMirrorOptions, MirrorExpectation } from "./core/jobs/job_mirror.ts";
export type { JobVerb } from "./core/jobs/state_machine.ts";
export type { RateLimiter, RateLimiterOptions } from "./core/copy/rate_limiter.ts";
export type {
  CoreEvent,
  CoreEventPayloads,
  CoreEventType,
  DomainEventPayload,
  EventBase,
  EventPattern,
  EventsMatching,
  JobEventPayload,
  PoolEventPayload,
  VolumeEventPayload,
} from "./core/events.ts";
export type { EventBus, SubscribeOptions } from "./core/event_bus.ts";
export { registerBuiltins } from "./drivers/mod.ts";
export { createMemoryFile, type MemoryFile } from "./core/image/memory_file.ts";
export { type ImageIO, type OpenedBacking, openImage, type OpenImageOptions } from "./core/image/open_image.ts";
export type { PositionalFile } from "./core/image/positional_file.ts";
export type { LayerBackingRef, RawExtentsHook } from "./core/image/layer.ts";
export { type ImageProbe, probeImage, type Qcow2ProbeInfo } from "./core/image/probe.ts";
export { createQcow2, type CreateQcow2Options } from "./core/image/qcow2/create.ts";
export { CorruptImageError } from "./core/image/errors.ts";

/**
 * Creates a registry holding the built-in drivers (registered lazily: a driver's code loads on first use).
 *
 * @returns A new registry; add third-party drivers with `register()` or plugins with `use()`.
 * @example
 * ```ts
 * import { createDefaultRegistry } from "./mod.ts";
 * const registry = createDefaultRegistry();
 * const test = registry.list("hypervisor").find((entry) => entry.name === "test");
 * if (!test || test.loaded) throw new Error("unexpected");
 * ```
 */
export function createDefaultRegistry(): Registry {
  const registry = createRegistry();
  registerBuiltins(registry);
  return registry;
}

let sharedDefault: Registry | undefined;

/**
 * The registry plain `connect()` uses (without `options.registry`): the built-ins, created on first use.
 * A plugin `use()`d on it is seen by every later plain `connect()` in the process.
 *
 * @returns The process-wide default registry.
 * @example
 * ```ts
 * import { connect, defaultRegistry } from "./mod.ts";
 * if (defaultRegistry() !== defaultRegistry()) throw new Error("unexpected");
 * await using conn = await connect("test:///empty");
 * if (!defaultRegistry().list("hypervisor").find((e) => e.name === "test")?.loaded) throw new Error("unexpected");
 * ```
 */
export function defaultRegistry(): Registry {
  return (sharedDefault ??= createDefaultRegistry());
}

/**
 * Opens a connection. The driver is chosen by the URI's scheme from `options.registry`, or from
 * {@linkcode defaultRegistry} (the built-ins, created on first use).
 *
 * @param uri Such as `"test:///default"`, `"test:///empty"` or `"qemu:///session"`.
 * @param options Registry, clock, state directory, progress interval, event buffer size, host-wide
 *   bandwidth budget, and an abort signal for the opening.
 * @returns The open connection; `close()` it, or hold it with `await using`.
 * @throws {TypeError} For a malformed URI or options.
 * @throws {NotFoundError} When no registered driver serves the scheme (the message lists those that do).
 * @throws {ConnectError} When the driver fails to open, with the failure as `cause`.
 * @example
 * ```ts
 * import { connect } from "./mod.ts";
 * await using conn = await connect("test:///default");
 * const names = (await conn.domains.list()).map((dom) => dom.name);
 * if (!names.includes("test")) throw new Error("unexpected");
 * ```
 */
export function connect(uri: string, options?: ConnectOptions): Promise<Connection> {
  const registry = options?.registry ?? defaultRegistry();
  return openConnection(uri, options, registry);
}

export type { PoolConfigStore, SavedPool } from "./core/storage/pool_config_store.ts";

/** The `test` driver's fixture schema, for `conn.testing.load()` and `test:///path/to/fixture.json`. */
export type {
  CheckedTestFixture,
  FixtureContent,
  FixtureDisk,
  FixtureDomain,
  FixturePool,
  FixtureVolume,
  TestFixture,
} from "./drivers/test/fixture.ts";
export { FixtureContentSchema, FixtureDomainSchema, FixturePoolSchema, FixtureVolumeSchema, TestFixtureSchema } from "./drivers/test/fixture.ts";
