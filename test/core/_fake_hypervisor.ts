/**
 * A small hypervisor driver and storage backend for the core tests: in memory, with only some of the
 * optional operations (start, destroy, define, blockPull), so the others exercise `UnsupportedError`.
 */
import type { DomainConfig, DomainState } from "../../core/domain.ts";
import { defineHypervisorDriver } from "../../core/driver.ts";
import { defineStorageBackend } from "../../core/storage_backend.ts";
import type {
  DriverContext,
  HypervisorConnection,
  HypervisorDriverDefinition,
  TestingControls,
} from "../../core/driver.ts";
import type {
  StorageBackendDefinition,
  StoragePoolBackend,
} from "../../core/storage_backend.ts";
import { ConflictError, NotFoundError, StateError } from "../../core/errors.ts";
import type { Job } from "../../core/job.ts";
import type { JobHandle } from "../../core/jobs/types.ts";
import type { PoolConfig } from "../../core/storage_pool.ts";
import type { ConnectionUri } from "../../core/uri.ts";

/** One open connection of the fake driver, as the test sees it. */
export interface FakeSession {
  readonly uri: ConnectionUri;
  readonly ctx: DriverContext;
  readonly domains: Map<string, { config: DomainConfig; state: DomainState }>;
  /** Every driver method called, in order (`"startDomain web1"`). */
  readonly calls: string[];
  /** Block jobs the driver created, so tests can finish them. */
  readonly jobs: Array<JobHandle<void>>;
  closeCount: number;
}

/** Options of {@linkcode createFakeHypervisor}. */
export interface FakeHypervisorOptions {
  name?: string;
  schemes?: string[];
  /** `open` rejects with this. */
  openError?: unknown;
  /** Called as `open` starts. */
  onOpenStart?: () => void;
  /** `open` waits for this before resolving. */
  openGate?: Promise<void>;
  /** Pools the driver brings. */
  initialPools?: Array<{ config: PoolConfig; active: boolean }>;
  /** `initialPools()` rejects with this. */
  initialPoolsError?: unknown;
  /** Give the connection testing controls. */
  testing?: boolean;
  /** Domains defined when a connection opens. */
  seed?: DomainConfig[];
  /** Optional operations to leave out. */
  omit?: Array<keyof HypervisorConnection>;
  /** Names `listDomains` reports that `domainInfo` does not know (undefined in between). */
  ghosts?: string[];
}

/** Creates the fake driver's definition and the list of sessions it opened. */
export function createFakeHypervisor(options: FakeHypervisorOptions = {}): {
  def: HypervisorDriverDefinition;
  sessions: FakeSession[];
} {
  const sessions: FakeSession[] = [];
  const def = defineHypervisorDriver({
    name: options.name ?? "fake",
    schemes: options.schemes ?? ["fake"],
    async open(uri, ctx) {
      options.onOpenStart?.();
      await options.openGate;
      if (options.openError !== undefined) throw options.openError;
      const session: FakeSession = { uri, ctx, domains: new Map(), calls: [], jobs: [], closeCount: 0 };
      for (const config of options.seed ?? []) {
        session.domains.set(config.name, { config: { ...config, uuid: config.uuid ?? crypto.randomUUID() }, state: "shutoff" });
      }
      sessions.push(session);
      return fakeConnection(session, options);
    },
  });
  return { def, sessions };
}

function fakeConnection(session: FakeSession, options: FakeHypervisorOptions): HypervisorConnection {
  const { domains, calls, ctx } = session;
  const find = (name: string) => {
    const domain = domains.get(name);
    if (!domain) throw new NotFoundError("domain", name, { driver: "fake" });
    return domain;
  };
  const conn: HypervisorConnection = {
    async listDomains() {
      calls.push("listDomains");
      return [...domains.keys(), ...(options.ghosts ?? [])];
    },
    async domainInfo(name) {
      calls.push(`domainInfo ${name}`);
      const { config, state } = find(name);
      return { name, uuid: config.uuid!, state, vcpus: config.vcpus, memoryBytes: config.memoryBytes };
    },
    async domainConfig(name) {
      calls.push(`domainConfig ${name}`);
      return structuredClone(find(name).config);
    },
    async defineDomain(config) {
      calls.push(`defineDomain ${config.name}`);
      if (domains.has(config.name)) throw new ConflictError(`Cannot define domain "${config.name}": it exists`);
      domains.set(config.name, { config, state: "shutoff" });
      ctx.bus.emit("domain:defined", { domain: config.name });
    },
    async startDomain(name) {
      calls.push(`startDomain ${name}`);
      const domain = find(name);
      if (domain.state !== "shutoff") {
        throw new StateError(`Cannot start domain "${name}": it is ${domain.state}`, { state: domain.state });
      }
      domain.state = "running";
      ctx.bus.emit("domain:started", { domain: name });
    },
    async destroyDomain(name) {
      calls.push(`destroyDomain ${name}`);
      find(name).state = "shutoff";
      ctx.bus.emit("domain:stopped", { domain: name, reason: "destroyed" });
    },
    async liveBlockPull(request): Promise<Job<void>> {
      const { domain: name, disk: { target: disk } } = request;
      calls.push(`liveBlockPull ${name} ${disk} ${JSON.stringify({ bandwidth: request.bandwidth, base: request.base, locks: request.locks })}`);
      const handle: JobHandle<void> = ctx.jobs.create<void>({
        type: "block-pull",
        target: { domain: name, disk },
        endBytes: 1024,
        bandwidth: request.bandwidth,
        locks: request.locks,
        driver: "fake",
        controller: {
          setSpeed: async (bytesPerSecond) => handle.setBandwidth(bytesPerSecond),
          abort: async () => void handle.aborted(),
        },
      });
      handle.setState("running");
      session.jobs.push(handle);
      return handle.job;
    },
    async close() {
      session.closeCount++;
    },
  };
  if (options.initialPools || options.initialPoolsError !== undefined) {
    conn.initialPools = async () => {
      if (options.initialPoolsError !== undefined) throw options.initialPoolsError;
      return options.initialPools ?? [];
    };
  }
  for (const operation of options.omit ?? []) delete conn[operation];
  if (options.testing) {
    const testing: TestingControls = {
      failNext() {},
      failJob() {},
      load: async () => {},
      guestWrite: async () => {},
    };
    return { ...conn, testing };
  }
  return conn;
}

/** A storage backend of type `fake` whose pools are empty and 1 MiB large. */
export function createFakeBackend(): { def: StorageBackendDefinition; opened: string[] } {
  const opened: string[] = [];
  const def = defineStorageBackend({
    name: "fake",
    async open(config): Promise<StoragePoolBackend> {
      opened.push(config.name);
      return {
        refresh: async () => {},
        sizes: async () => ({ capacityBytes: 1 << 20, allocationBytes: 0, availableBytes: 1 << 20 }),
        listVolumes: async () => [],
        lookupVolume: async (name) => {
          throw new NotFoundError("volume", name, { driver: "fake" });
        },
        volumeInfo: async (name) => {
          throw new NotFoundError("volume", name, { driver: "fake" });
        },
      };
    },
  });
  return { def, opened };
}

/** A valid domain config for tests. */
export function domainConfig(name: string, extra: Partial<DomainConfig> = {}): DomainConfig {
  return { name, vcpus: 1, memoryBytes: 64 << 20, disks: [{ target: "vda", path: `/images/${name}.qcow2` }], ...extra };
}
