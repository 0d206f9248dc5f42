/**
 * One `test:` connection: the {@linkcode HypervisorConnection} over an in-memory domain table, with the
 * connection's memory pools and fault injection.
 *
 * @module
 */
import type { DiskInfo, DomainConfig, DomainInfo } from "../../core/domain.ts";
import type {
  DiskSource,
  DriverContext,
  HypervisorConnection,
  LiveBlockCommitRequest,
  LiveBlockCopyRequest,
  LiveBlockPullRequest,
  TestingControls,
} from "../../core/driver.ts";
import { readFile } from "node:fs/promises";
import { assertDomainIdle } from "../../core/domains/disk_lock.ts";
import type { MirrorHooks } from "../../core/domains/volume_block_copy.ts";
import { startVolumeBlockCommit } from "../../core/domains/volume_block_commit.ts";
import { startVolumeBlockCopy } from "../../core/domains/volume_block_copy.ts";
import { startVolumeBlockPull } from "../../core/domains/volume_block_pull.ts";
import { ConnectError } from "../../core/errors.ts";
import type { Job } from "../../core/job.ts";
import type { SignalOptions } from "../../core/options.ts";
import type { MemoryPoolConfig } from "../../core/storage_pool.ts";
import type { PoolConfigStore } from "../../core/storage/pool_config_store.ts";
import type { ConnectionUri } from "../../core/uri.ts";
import { resolve as resolvePath } from "node:path";
import { createPoolConfigFileStore } from "../dir/pool_config_file_store.ts";
import { diskVolume, resolveDisks } from "./disks.ts";
import { DomainTable, type DomainTransition } from "./domains.ts";
import { GuestWrites } from "./guest_writes.ts";
import type { TestOperation } from "./faults.ts";
import { commitDomains, commitPools, planFixture } from "./fixture_load.ts";
import { parseFixture } from "./fixture.ts";
import { type MemoryHost, memoryHostOf } from "./memory_host.ts";
import { DEFAULT_SEED } from "./seed.ts";
import { createTestingControls } from "./testing.ts";
import { testUriSource } from "./uri.ts";

/** Reads and parses a fixture file. */
async function readFixtureFile(uri: ConnectionUri, path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    throw new ConnectError(`Cannot connect to "${uri.href}": cannot read fixture file "${path}"`, { driver: "test", cause: error });
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ConnectError(`Cannot connect to "${uri.href}": fixture file "${path}" is not JSON (${(error as Error).message})`, {
      driver: "test",
      cause: error,
    });
  }
}

/**
 * A `test:` connection. Every connection has its own state: two connections to `test:///default` do not
 * see each other's changes (libvirt's test driver shares one `defaultPrivconn` per process instead).
 *
 * @example
 * ```ts
 * // Opened by connect() for test: URIs:
 * import { connect } from "virtkit";
 * await using a = await connect("test:///default");
 * await using b = await connect("test:///default");
 * await (await a.domains.get("test")).destroy();
 * if ((await (await b.domains.get("test")).info()).state !== "running") throw new Error("state leaked");
 * ```
 */
export class TestConnection implements HypervisorConnection {
  /** Fault injection and fixtures. */
  readonly testing: TestingControls;
  readonly #ctx: DriverContext;
  readonly #host: MemoryHost;
  readonly #domains: DomainTable;
  readonly #guestWrites: GuestWrites;
  readonly #seedPools: MemoryPoolConfig[] = [];

  /**
   * With a state directory (`connect(uri, { stateDir })`), pool definitions persist in
   * `<stateDir>/pools/` like the qemu driver's; without one they live as long as the connection.
   */
  readonly poolConfigStore?: PoolConfigStore;

  private constructor(ctx: DriverContext) {
    this.#ctx = ctx;
    if (ctx.stateDir !== undefined) this.poolConfigStore = createPoolConfigFileStore(resolvePath(ctx.stateDir));
    this.#host = memoryHostOf(ctx);
    this.#domains = new DomainTable(ctx.bus);
    this.#guestWrites = new GuestWrites(ctx.storage, this.#domains);
    this.testing = createTestingControls({ ctx, host: this.#host, domains: this.#domains, guestWrites: this.#guestWrites });
  }

  /**
   * Opens a connection with the state its URI names: the seed, nothing, or a fixture file.
   *
   * @param uri `test:///default`, `test:///empty` or `test:///<absolute path>.json`.
   * @param ctx What core gives the driver.
   * @returns The connection.
   * @throws {ConnectError} For another URI, or a fixture file that cannot be read, parsed or loaded
   *   (the fixture's own error, which names the bad path, is the `cause` and is quoted in the message).
   */
  static async open(uri: ConnectionUri, ctx: DriverContext): Promise<TestConnection> {
    const source = testUriSource(uri);
    const conn = new TestConnection(ctx);
    if (source.kind === "empty") return conn;
    const fixture = source.kind === "default" ? DEFAULT_SEED : await readFixtureFile(uri, source.path);
    try {
      const plan = await planFixture(parseFixture(fixture), { host: conn.#host, domains: conn.#domains });
      commitPools(plan, conn.#host);
      commitDomains(plan, conn.#domains);
      conn.#seedPools.push(...plan.pools.map((p) => p.config));
    } catch (error) {
      throw new ConnectError(`Cannot connect to "${uri.href}": ${(error as Error).message}`, { driver: "test", cause: error });
    }
    return conn;
  }

  /** The seed's or the fixture file's pools, active. */
  initialPools(): Promise<Array<{ config: MemoryPoolConfig; active: boolean }>> {
    return Promise.resolve(this.#seedPools.map((config) => ({ config: { ...config }, active: true })));
  }

  /** Names of the domains, in definition order. */
  listDomains(options?: SignalOptions): Promise<string[]> {
    return this.#run("domains.list", options, () => this.#domains.names());
  }

  /** A domain's state, vCPUs and memory. */
  domainInfo(name: string, options?: SignalOptions): Promise<DomainInfo> {
    return this.#run("domain.info", options, () => this.#domains.info(name));
  }

  /** A copy of a domain's definition. */
  domainConfig(name: string, options?: SignalOptions): Promise<DomainConfig> {
    return this.#run("domain.config", options, () => this.#domains.config(name));
  }

  /** Defines a shut-off domain; its disks' volumes are checked when it starts, as libvirt does. */
  defineDomain(config: DomainConfig, options?: SignalOptions): Promise<void> {
    return this.#run("domains.define", options, () => this.#domains.define(config));
  }

  /** Removes a shut-off domain that no block job works on. */
  undefineDomain(name: string, options?: SignalOptions): Promise<void> {
    return this.#run("domain.undefine", options, () => this.#undefine(name));
  }

  #undefine(name: string): void {
    assertDomainIdle(this.#ctx.jobs, this.#domains.config(name), "undefine", "test");
    this.#domains.undefine(name);
  }

  /** Boots a shut-off or crashed domain once every disk volume exists. */
  async startDomain(name: string, options?: SignalOptions): Promise<void> {
    this.#enter("domain.start", options);
    this.#domains.check(name, "start");
    for (const disk of this.#domains.config(name).disks) await diskVolume(this.#diskEnv(), disk);
    this.#domains.transition(name, "start");
  }

  /** Graceful power-off: the mock guest always complies at once. */
  shutdownDomain(name: string, options?: SignalOptions & { timeoutMs?: number }): Promise<void> {
    return this.#transition("domain.shutdown", name, "shutdown", options);
  }

  /** Hard power-off. */
  destroyDomain(name: string, options?: SignalOptions): Promise<void> {
    return this.#transition("domain.destroy", name, "destroy", options);
  }

  /** Pauses a running domain. */
  suspendDomain(name: string, options?: SignalOptions): Promise<void> {
    return this.#transition("domain.suspend", name, "suspend", options);
  }

  /** Resumes a paused domain. */
  resumeDomain(name: string, options?: SignalOptions): Promise<void> {
    return this.#transition("domain.resume", name, "resume", options);
  }

  /** Disks with their volumes and backing chains. */
  async domainDisks(name: string, options?: SignalOptions): Promise<DiskInfo[]> {
    this.#enter("domain.disks", options);
    return await resolveDisks(this.#diskEnv(), this.#domains.config(name).disks);
  }

  /**
   * A running domain's pull: the same core job as a shut-off domain's, on the connection's clock (the
   * mock guest's disk is a pool volume), writing only where `testing.guestWrite()` has not written.
   */
  liveBlockPull(request: LiveBlockPullRequest): Promise<Job<void>> {
    const writes = this.#guestWrites.source(request.domain, request.disk.target);
    return this.#run("domain.blockPull", request, () => startVolumeBlockPull(this.#jobEnv(), request, writes));
  }

  /** A running domain's copy: core's mirror, fed by `testing.guestWrite()`, pivoting the definition. */
  liveBlockCopy(request: LiveBlockCopyRequest): Promise<Job<void>> {
    return this.#run("domain.blockCopy", request, () => startVolumeBlockCopy(this.#jobEnv(), request, this.#mirrorHooks(request)));
  }

  /** A running domain's commit: core's commit (an active one mirrors `testing.guestWrite()`). */
  liveBlockCommit(request: LiveBlockCommitRequest): Promise<Job<void>> {
    return this.#run("domain.blockCommit", request, () => startVolumeBlockCommit(this.#jobEnv(), request, this.#mirrorHooks(request)));
  }

  /** Points a disk's definition at another image (an offline pivot). */
  setDiskSource(name: string, disk: string, source: DiskSource, options?: SignalOptions): Promise<void> {
    return this.#run("domain.config", options, () => this.#domains.setDiskSource(name, disk, source));
  }

  #jobEnv() {
    return { storage: this.#ctx.storage, jobs: this.#ctx.jobs, bus: this.#ctx.bus };
  }

  #mirrorHooks(request: { domain: string; disk: { target: string } }): MirrorHooks {
    const { domain, disk: { target } } = request;
    return {
      writes: this.#guestWrites.source(domain, target),
      pivot: async (source) => this.#domains.setDiskSource(domain, target, source),
    };
  }

  /**
   * Drops the connection's memory storage at once (core closes jobs and pools first), so a test suite
   * that opens many connections does not keep their volumes until the garbage collector finds them.
   */
  close(): Promise<void> {
    this.#host.pools.clear();
    return Promise.resolve();
  }

  #transition(operation: TestOperation, name: string, transition: DomainTransition, options?: SignalOptions): Promise<void> {
    return this.#run(operation, options, () => this.#domains.transition(name, transition));
  }

  /**
   * Runs an operation: its armed failure (or the cancellation) rejects before the body runs. Not an
   * async function: most bodies are synchronous, and a daemon serving thousands of calls a second
   * paid for the async frame of each (a throw still comes back as a rejection).
   */
  #run<T>(operation: TestOperation, options: SignalOptions | undefined, body: () => T | Promise<T>): Promise<T> {
    try {
      this.#enter(operation, options);
      return Promise.resolve(body());
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #diskEnv() {
    return { storage: this.#ctx.storage, host: this.#host };
  }

  /** Every operation starts here: cancellation first, then a failure armed with `failNext`. */
  #enter(operation: TestOperation, options: SignalOptions | undefined): void {
    options?.signal?.throwIfAborted();
    this.#host.faults.check(operation);
  }
}
