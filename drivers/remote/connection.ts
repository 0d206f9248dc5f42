/**
 * A `remote` connection: virtkit's hypervisor contract over libvirt's RPC protocol to a libvirtd (or
 * virtkitd). Domains map onto libvirt's calls one by one; states come from DOMAIN_GET_INFO; block pulls,
 * copies and commits become jobs in the connection's one job list; libvirt's lifecycle events become `domain:*` events.
 *
 * Behaviour chosen where virtkit's contract and libvirt differ (libvirt's remote driver and virsh are
 * the reference otherwise):
 * - `undefine()` of a running domain is a `StateError` (libvirt would make it transient);
 * - `shutdown()` asks the guest (DOMAIN_SHUTDOWN) and then waits up to `timeoutMs` (30 s default, 0:
 *   do not wait) for the domain to be shut off, as the qemu driver does;
 * - `info().memoryBytes` is libvirt's maximum memory (the domain XML's `<memory>`), as `config()` reports;
 * - a lifecycle verb libvirt refuses with an error that is not already a state error (its test driver
 *   says INTERNAL_ERROR "already running") becomes a `StateError` when the domain's state explains the
 *   refusal, with libvirt's error as `cause`.
 *
 * @module
 */
import type { DiskInfo, DomainConfig, DomainInfo, DomainState } from "../../core/domain.ts";
import type {
  DriverContext,
  DriverJobs,
  DriverStorage,
  HypervisorConnection,
  LiveBlockCommitRequest,
  LiveBlockCopyRequest,
  LiveBlockJobRequest,
  LiveBlockPullRequest,
  TestingControls,
} from "../../core/driver.ts";
import { ConflictError, NotFoundError, StateError, UnsupportedError, VirtError } from "../../core/errors.ts";
import { disksFromDomainXml, domainFromXml, domainToXml } from "../../core/xml/mod.ts";
import { parseXmlDocument, type XmlElement } from "../../core/xml/xml_document.ts";
import type { Job } from "../../core/job.ts";
import type { SignalOptions } from "../../core/options.ts";
import { startRemoteCommit } from "./block_commit.ts";
import { startRemoteCopy } from "./block_copy.ts";
import { type BlockJobEnv, RemoteBlockJob } from "./block_job.ts";
import { type DaemonBlockJobEnv, startDaemonCommit, startDaemonCopy, startDaemonPull } from "./daemon_block_jobs.ts";
import { attachDaemonJobs, type DaemonJobs } from "./daemon_jobs.ts";
import { daemonTesting } from "./daemon_testing.ts";
import { DomainRefs } from "./domain_refs.ts";
import { type RemoteEvents, registerEvents } from "./events.ts";
import type { DomainRefValue, Procedure } from "./rpc/protocol/common.ts";
import {
  CONNECT_LIST_ALL_DOMAINS,
  DOMAIN_CREATE_WITH_FLAGS,
  DOMAIN_DEFINE_XML_FLAGS,
  DOMAIN_GET_XML_DESC,
  DomainXmlFlags,
  DOMAIN_DESTROY,
  DOMAIN_GET_INFO,
  DOMAIN_GET_STATE,
  DOMAIN_RESUME,
  DOMAIN_SHUTDOWN,
  DOMAIN_SUSPEND,
  DOMAIN_UNDEFINE,
  DomainStateCode,
} from "./rpc/protocol/domain.ts";
import { DomainLifecycle } from "./rpc/protocol/events.ts";
import { CONNECT_GET_CAPABILITIES, CONNECT_GET_TYPE } from "./rpc/protocol/connect.ts";
import type { RemoteSession } from "./session.ts";
import { createPoolCollection } from "./storage/pools.ts";
import { createVolumeLookup } from "./storage/volumes.ts";
import { probeVirtkitExtension } from "./virtkit_extension.ts";

/** Default of `shutdown({ timeoutMs })`, as the qemu driver's. */
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 30_000;
/** How often `shutdown()` checks whether the guest is off. */
const SHUTDOWN_POLL_MS = 100;

/**
 * Maps `virDomainState` onto virtkit's four states: blocked and shutting down still run, pmsuspended
 * is paused, no-state counts as shut off.
 *
 * @param code `virDomainState`.
 * @returns The state.
 * @example
 * ```ts
 * import { domainStateOf } from "./connection.ts";
 * if (domainStateOf(1) !== "running" || domainStateOf(5) !== "shutoff" || domainStateOf(7) !== "paused") throw new Error("unexpected");
 * ```
 */
export function domainStateOf(code: number): DomainState {
  const S = DomainStateCode;
  if (code === S.RUNNING || code === S.BLOCKED || code === S.SHUTDOWN) return "running";
  if (code === S.PAUSED || code === S.PMSUSPENDED) return "paused";
  if (code === S.CRASHED) return "crashed";
  return "shutoff";
}

/**
 * The driver's connection object (what `remoteDriver.open` returns).
 *
 * @example
 * ```ts
 * import { RemoteConnection } from "./connection.ts";
 * if (typeof RemoteConnection.open !== "function") throw new Error("unexpected");
 * ```
 */
export class RemoteConnection implements HypervisorConnection {
  readonly #session: RemoteSession;
  readonly #ctx: DriverContext;
  readonly #refs: DomainRefs;
  #events: RemoteEvents | undefined;
  /** virtkitd's jobs, when it offers virtkit's program: then every job of `conn.jobs` is the daemon's. */
  #daemon: DaemonJobs | undefined;
  #testing: TestingControls | undefined;
  /** libvirt's pools and volumes serve `conn.pools` and `conn.volumes`. */
  readonly storage: DriverStorage;
  /** libvirt's domain type for new definitions, asked once. */
  #hypervisor: Promise<"kvm" | "qemu" | "test"> | undefined;

  private constructor(session: RemoteSession, ctx: DriverContext) {
    this.#session = session;
    this.#ctx = ctx;
    this.#refs = new DomainRefs(session.client);
    const storageCtx = {
      client: session.client, jobs: ctx.jobs, bus: ctx.bus, hasPoolEvents: () => this.#events !== undefined, daemon: () => this.#daemon,
    };
    this.storage = Object.freeze({ pools: createPoolCollection(storageCtx), volumes: createVolumeLookup(storageCtx) });
  }

  /**
   * Wraps an open session: registers the event callbacks; on virtkitd, mirrors its jobs.
   *
   * @param session The open RPC session.
   * @param ctx What core gives the driver.
   * @returns The connection.
   */
  static async open(session: RemoteSession, ctx: DriverContext): Promise<RemoteConnection> {
    const self = new RemoteConnection(session, ctx);
    if (session.eventCallbacks) {
      self.#events = await registerEvents(session.client, ctx.bus, {
        domainChanged: (dom, event) => {
          if (event === DomainLifecycle.UNDEFINED) self.#refs.forgetUuid(dom.uuid);
          else if (self.#refs.cached(dom.name)?.uuid === dom.uuid || event === DomainLifecycle.STARTED) self.#refs.remember(dom);
        },
      });
    }
    const ext = await probeVirtkitExtension(session.client);
    if (ext) {
      self.#daemon = await attachDaemonJobs(ext, {
        jobs: ctx.jobs,
        clock: ctx.clock,
        // A clone's job resolves to the new volume, as on a local connection.
        resultOf: async (info) => {
          const { pool, volume } = info.target;
          if (info.type !== "volume-clone" || pool === undefined || volume === undefined) return undefined;
          return await (await self.storage.pools.get(pool)).volumes.get(volume);
        },
      });
    }
    return self;
  }

  /** On virtkitd serving a `test:` connection: its fault injection and fixtures, over virtkit's program. */
  get testing(): TestingControls | undefined {
    if (!this.#daemon || this.#ctx.uri.scheme !== "test") return undefined;
    return (this.#testing ??= daemonTesting(this.#daemon));
  }

  /** Present on virtkitd: `conn.jobs` brings the daemon's jobs in before it answers. */
  get jobs(): DriverJobs | undefined {
    return this.#daemon;
  }

  /**
   * On virtkitd: its core runs block jobs of shut-off domains itself, so they go there like live ones
   * (this driver has no `setDiskSource`, and core could not switch the daemon's definition). On a
   * libvirtd: `false`, and core's offline path says `setDiskSource` is unsupported.
   */
  get peerRunsOfflineBlockJobs(): boolean {
    return this.#daemon !== undefined;
  }

  get #client() {
    return this.#session.client;
  }

  async listDomains(options?: SignalOptions): Promise<string[]> {
    const { domains } = await this.#client.call(CONNECT_LIST_ALL_DOMAINS, { needResults: 1, flags: 0 }, { signal: options?.signal, operation: "list domains" });
    for (const dom of domains) this.#refs.remember(dom);
    return domains.map((d) => d.name);
  }

  domainInfo(name: string, options?: SignalOptions): Promise<DomainInfo> {
    // Promise chains rather than async functions: this is the path of `get()` and `info()`, and each
    // await is a microtask turn of its own.
    return this.#refs.with(name, (dom) =>
      this.#client.call(DOMAIN_GET_INFO, { dom }, { signal: options?.signal, objectName: name })
        .then((info) => ({ name: dom.name, uuid: dom.uuid, state: domainStateOf(info.state), vcpus: info.nrVirtCpu, memoryBytes: info.maxMem * 1024 })), options);
  }

  /** The persistent definition (DOMAIN_GET_XML_DESC with INACTIVE), through core/xml's mapping. */
  async domainConfig(name: string, options?: SignalOptions): Promise<DomainConfig> {
    const xml = await this.#refs.with(name, (dom) =>
      this.#client.call(DOMAIN_GET_XML_DESC, { dom, flags: DomainXmlFlags.INACTIVE }, { signal: options?.signal, objectName: name }), options);
    return domainFromXml(xml).config;
  }

  /** The live disks with their backing chains, from the live domain XML. */
  async domainDisks(name: string, options?: SignalOptions): Promise<DiskInfo[]> {
    const xml = await this.#refs.with(name, (dom) => this.#client.call(DOMAIN_GET_XML_DESC, { dom, flags: 0 }, { signal: options?.signal, objectName: name }), options);
    return disksFromDomainXml(xml);
  }

  /**
   * Defines a domain from its config written as libvirt XML (core/xml), of type `kvm` when the host
   * offers it, else `qemu` (TCG, also when the daemon does not answer CONNECT_GET_CAPABILITIES, as
   * virtkitd), or `test` on libvirt's test driver. A taken name is a `ConflictError`:
   * libvirt itself would silently update the existing definition when the UUIDs match.
   */
  async defineDomain(config: DomainConfig, options?: SignalOptions): Promise<void> {
    const taken = await this.#refs.get(config.name, options).then(() => true, (error) => {
      if (error instanceof NotFoundError) return false;
      throw error;
    });
    if (taken) throw new ConflictError(`Cannot define domain "${config.name}": a domain of that name exists`, { driver: "remote" });
    const xml = domainToXml(config, { hypervisor: await this.#hypervisorType(options) });
    const dom = await this.#withEvent(config.name, DomainLifecycle.DEFINED, () =>
      this.#client.call(DOMAIN_DEFINE_XML_FLAGS, { xml, flags: 0 }, this.#context(config.name, "define", options)));
    this.#refs.remember(dom);
  }

  #hypervisorType(options?: SignalOptions): Promise<"kvm" | "qemu" | "test"> {
    return (this.#hypervisor ??= (async () => {
      const type = await this.#client.call(CONNECT_GET_TYPE, undefined, { signal: options?.signal });
      if (type.toLowerCase() === "test") return "test";
      const capabilities = await this.#client.call(CONNECT_GET_CAPABILITIES, undefined, { signal: options?.signal }).catch((error) => {
        // virtkitd does not describe its host (and picks KVM or TCG itself): `qemu` is valid everywhere.
        if (error instanceof UnsupportedError) return undefined;
        throw error;
      });
      if (capabilities === undefined) return "qemu";
      return offersKvm(parseXmlDocument(capabilities, "the host's capabilities")) ? "kvm" : "qemu";
    })().catch((error) => {
      this.#hypervisor = undefined;
      throw error;
    }));
  }

  async startDomain(name: string, options?: SignalOptions): Promise<void> {
    await this.#refs.with(name, async (dom) => {
      const started = await this.#withEvent(name, DomainLifecycle.STARTED, () =>
        this.#explained(dom, "start", ["running", "paused"], () => this.#client.call(DOMAIN_CREATE_WITH_FLAGS, { dom, flags: 0 }, this.#context(name, "start", options))));
      this.#refs.remember(started);
    }, options);
  }

  async shutdownDomain(name: string, options?: SignalOptions & { timeoutMs?: number }): Promise<void> {
    const timeoutMs = options?.timeoutMs ?? DEFAULT_SHUTDOWN_TIMEOUT_MS;
    if (timeoutMs === 0) {
      await this.#refs.with(name, (d) => this.#shutdownCall(d, options), options);
      return;
    }
    await this.#withEvent(name, DomainLifecycle.STOPPED, async () => {
      const dom = await this.#refs.with(name, async (d) => (await this.#shutdownCall(d, options), d), options);
      const deadline = this.#ctx.clock.now() + timeoutMs;
      for (;;) {
        const { state } = await this.#client.call(DOMAIN_GET_STATE, { dom, flags: 0 }, { signal: options?.signal, objectName: name });
        const now = domainStateOf(state);
        if (now === "shutoff" || now === "crashed") return;
        if (this.#ctx.clock.now() >= deadline) {
          throw new StateError(
            `Cannot shut down domain "${name}": the guest did not power off within ${timeoutMs} ms (no OS answering ACPI?); it is still ${now}, use destroy() to force it off`,
            { state: now, driver: "remote" },
          );
        }
        await this.#ctx.clock.sleep(SHUTDOWN_POLL_MS, options?.signal);
      }
    });
  }

  #shutdownCall(dom: DomainRefValue, options?: SignalOptions): Promise<void> {
    return this.#explained(dom, "shut down", ["shutoff", "paused", "crashed"], () => this.#client.call(DOMAIN_SHUTDOWN, { dom }, this.#context(dom.name, "shut down", options)));
  }

  async destroyDomain(name: string, options?: SignalOptions): Promise<void> {
    await this.#withEvent(name, DomainLifecycle.STOPPED, () => this.#domainCall(name, "destroy", DOMAIN_DESTROY, ["shutoff"], options));
  }

  async suspendDomain(name: string, options?: SignalOptions): Promise<void> {
    // libvirt's qemu driver accepts suspend of a paused domain (and resume of a running one) silently;
    // virtkit's contract says StateError, so the state is checked first.
    await this.#requireState(name, "suspend", "running", options);
    await this.#withEvent(name, DomainLifecycle.SUSPENDED, () => this.#domainCall(name, "suspend", DOMAIN_SUSPEND, ["paused", "shutoff", "crashed"], options));
  }

  async resumeDomain(name: string, options?: SignalOptions): Promise<void> {
    await this.#requireState(name, "resume", "paused", options);
    await this.#withEvent(name, DomainLifecycle.RESUMED, () => this.#domainCall(name, "resume", DOMAIN_RESUME, ["running", "shutoff", "crashed"], options));
  }

  async undefineDomain(name: string, options?: SignalOptions): Promise<void> {
    await this.#refs.with(name, async (dom) => {
      const info = await this.#client.call(DOMAIN_GET_INFO, { dom }, { signal: options?.signal, objectName: name });
      const state = domainStateOf(info.state);
      if (state !== "shutoff" && state !== "crashed") {
        throw new StateError(`Cannot undefine domain "${name}": it is ${state}; destroy or shut it down first`, { state, driver: "remote" });
      }
      await this.#withEvent(name, DomainLifecycle.UNDEFINED, () => this.#client.call(DOMAIN_UNDEFINE, { dom }, this.#context(name, "undefine", options)));
      this.#refs.forget(name);
    }, options);
  }

  async liveBlockPull(request: LiveBlockPullRequest): Promise<Job<void>> {
    if (this.#daemon) return await startDaemonPull(this.#daemonBlockJobs, request);
    const { base, signal } = request;
    const options = { bandwidth: request.bandwidth, ...(base === undefined ? {} : { base }), ...(signal ? { signal } : {}) };
    const { dom, disk, env } = await this.#liveDisk(request, "blockPull");
    if (base !== undefined && !disk.backingChain.some((layer) => layer.path === base)) {
      throw new NotFoundError("volume", base, { driver: "remote", detail: `it is not in the backing chain of disk "${disk.target}" of domain "${dom.name}"` });
    }
    return await RemoteBlockJob.startPull(env, dom, disk.target, { ...options, locks: request.locks, ...(disk.volume ? { volume: disk.volume } : {}) });
  }

  /** DOMAIN_BLOCK_COPY (see block_copy.ts); a `{ pool, name }` destination is made through libvirt's storage first. */
  async liveBlockCopy(request: LiveBlockCopyRequest): Promise<Job<void>> {
    if (this.#daemon) return await startDaemonCopy(this.#daemonBlockJobs, request);
    const { dom, disk, env } = await this.#liveDisk(request, "blockCopy");
    return await startRemoteCopy(env, this.storage, dom, disk, request);
  }

  /** DOMAIN_BLOCK_COMMIT (see block_commit.ts), ACTIVE when the top is the active image. */
  async liveBlockCommit(request: LiveBlockCommitRequest): Promise<Job<void>> {
    if (this.#daemon) return await startDaemonCommit(this.#daemonBlockJobs, request);
    const { dom, disk, env } = await this.#liveDisk(request, "blockCommit");
    return await startRemoteCommit(env, dom, disk, request);
  }

  /** The domain's reference, its live disk (with the chain) and the job wiring, for a live block job. */
  async #liveDisk(request: LiveBlockJobRequest, operation: string) {
    const events = this.#events;
    if (!events) throw new UnsupportedError(`domain.${operation}`, { driver: "remote", detail: "the daemon sends no callback events (feature REMOTE_EVENT_CALLBACK)" });
    const options = request.signal ? { signal: request.signal } : {};
    const dom = await this.#refs.get(request.domain, options);
    // libvirt says INVALID_ARG for an unknown disk or base: checked here first, so they are NotFoundErrors.
    const target = request.disk.target;
    const disk = (await this.domainDisks(request.domain, options)).find((d) => d.target === target);
    if (!disk) throw new NotFoundError("disk", target, { driver: "remote", detail: `domain "${request.domain}" has no disk "${target}"` });
    const env: BlockJobEnv = { client: this.#client, jobs: this.#ctx.jobs, route: events.route };
    return { dom, disk, env };
  }

  /** The wiring of block jobs on virtkitd (daemon_block_jobs.ts), once the extension is attached. */
  get #daemonBlockJobs(): DaemonBlockJobEnv {
    return { client: this.#client, jobs: this.#ctx.jobs, daemon: this.#daemon!, refs: this.#refs };
  }

  async close(): Promise<void> {
    await this.#daemon?.close();
    await this.#events?.close();
    await this.#session.close();
  }

  async #domainCall(name: string, verb: string, procedure: Procedure<{ dom: DomainRefValue }, void>, invalidIn: DomainState[], options?: SignalOptions): Promise<void> {
    await this.#refs.with(name, (dom) => this.#explained(dom, verb, invalidIn, () => this.#client.call(procedure, { dom }, this.#context(name, verb, options))), options);
  }

  async #requireState(name: string, verb: string, wanted: DomainState, options?: SignalOptions): Promise<void> {
    const { state } = await this.domainInfo(name, options);
    if (state !== wanted) {
      throw new StateError(`Cannot ${verb} domain "${name}": it is ${state === "shutoff" ? "shut off" : state}`, { state, driver: "remote" });
    }
  }

  /** Runs `run`, then waits (bounded) for the lifecycle event it causes, so the event is on the bus when the verb resolves. */
  async #withEvent<T>(name: string, event: number, run: () => Promise<T>): Promise<T> {
    const wait = this.#events?.nextLifecycle(name, event);
    try {
      const result = await run();
      await wait?.seen;
      return result;
    } catch (error) {
      wait?.cancel();
      throw error;
    }
  }

  /** Runs a lifecycle call; a refusal the domain's state explains becomes a `StateError`. */
  async #explained<T>(dom: DomainRefValue, verb: string, invalidIn: DomainState[], run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      if (!(error instanceof VirtError) || error.code !== "internal" || this.#client.closed) throw error;
      const info = await this.#client.call(DOMAIN_GET_INFO, { dom }).catch(() => undefined);
      const state = info && domainStateOf(info.state);
      if (!state || !invalidIn.includes(state)) throw error;
      throw new StateError(`Cannot ${verb} domain "${dom.name}": it is ${state === "shutoff" ? "shut off" : state}`, { state, driver: "remote", cause: error });
    }
  }

  #context(name: string, verb: string, options?: SignalOptions) {
    return { signal: options?.signal, objectName: name, operation: `${verb} domain "${name}"` };
  }
}

/** Whether libvirt's capabilities offer a `kvm` domain type for some guest (`guest/arch/domain[@type]`). */
function offersKvm(capabilities: XmlElement): boolean {
  return capabilities.children.some((guest) =>
    guest.name === "guest" &&
    guest.children.some((arch) => arch.name === "arch" && arch.children.some((d) => d.name === "domain" && d.attributes.type === "kvm"))
  );
}
