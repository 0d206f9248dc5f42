/**
 * One `qemu:///session` connection: definitions on disk, one QEMU process per running domain, QMP for
 * everything a running domain does, and re-attachment to the processes a previous connection started.
 *
 * @module
 */
import type { DiskInfo, DomainConfig, DomainInfo, DomainState } from "../../core/domain.ts";
import type {
  DiskSource,
  DriverContext,
  HypervisorConnection,
  LiveBlockCommitRequest,
  LiveBlockCopyRequest,
  LiveBlockPullRequest,
} from "../../core/driver.ts";
import { assertDomainIdle } from "../../core/domains/disk_lock.ts";
import { ConnectError, StateError } from "../../core/errors.ts";
import type { Job } from "../../core/job.ts";
import type { SignalOptions } from "../../core/options.ts";
import type { PoolConfigStore } from "../../core/storage/pool_config_store.ts";
import type { ConnectionUri } from "../../core/uri.ts";
import { resolve as resolvePath } from "node:path";
import { createPoolConfigFileStore } from "../dir/pool_config_file_store.ts";
import { type QemuBlockJob, type QemuBlockJobEnv } from "./block_job.ts";
import { startQemuCommit } from "./block_commit.ts";
import { startQemuCopy } from "./block_copy.ts";
import { startQemuPull } from "./block_pull.ts";
import { diskInfo, resolveDisks } from "./disk_chain.ts";
import { DomainDefinitions, type StoredConfig } from "./domain_table.ts";
import type { Instance } from "./instance.ts";
import { launchDomain } from "./launch.ts";
import { processAlive, waitForExit } from "./process.ts";
import { createBlockJobEnv, restoreFinishedJobs } from "./job_env.ts";
import { reattach } from "./reconnect.ts";
import { defaultStateDir, StateStore } from "./state_store.ts";

const DRIVER = "qemu";
/** How long `destroy()` waits for the process to end after `quit` before SIGKILL. */
const QUIT_TIMEOUT_MS = 3_000;
/** Default of `shutdown({ timeoutMs })`. */
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 30_000;

/**
 * Checks a `qemu:` URI: `qemu:///session`, optionally with `?stateDir=`.
 *
 * @param uri The parsed URI.
 * @throws {ConnectError} For anything else.
 */
function checkUri(uri: ConnectionUri): void {
  const refuse = (why: string) => new ConnectError(`Cannot connect to "${uri.href}": ${why}; the qemu driver serves qemu:///session[?stateDir=PATH]`, { driver: DRIVER });
  if (uri.transport !== undefined) throw refuse(`transport "${uri.transport}" is not supported`);
  if (uri.host !== "") throw refuse(`remote host "${uri.host}" is not supported`);
  if (uri.path !== "/session") throw refuse(uri.path === "/system" ? "qemu:///system needs a privileged daemon" : `unknown path "${uri.path}"`);
  for (const key of uri.params.keys()) if (key !== "stateDir") throw refuse(`unknown parameter "${key}"`);
}

/**
 * A `qemu:` connection, as the driver implements it. Opened by `connect("qemu:///session")` once the
 * driver is registered.
 *
 * @example
 * ```ts
 * import { QemuConnection } from "./connection.ts";
 * import { parseUri } from "virtkit";
 * const error = await QemuConnection.open(parseUri("qemu:///system"), {} as never).catch((e) => e);
 * if (!String(error.message).includes("privileged daemon")) throw new Error("unexpected");
 * ```
 */
export class QemuConnection implements HypervisorConnection {
  /** Pool definitions persist beside the domains, in `<stateDir>/pools/`. */
  readonly poolConfigStore: PoolConfigStore;
  readonly #ctx: DriverContext;
  readonly #store: StateStore;
  readonly #defs: DomainDefinitions;
  readonly #instances = new Map<string, Instance>();
  readonly #pulls = new Map<Instance, Map<string, QemuBlockJob>>();
  readonly #crashed = new Set<string>();
  readonly #starting = new Set<string>();
  readonly #saving = new WeakMap<Instance, Promise<void>>();
  readonly #pullEnv: QemuBlockJobEnv;
  #closed = false;

  private constructor(ctx: DriverContext, store: StateStore, defs: DomainDefinitions) {
    this.#ctx = ctx;
    this.#store = store;
    this.#defs = defs;
    this.poolConfigStore = createPoolConfigFileStore(resolvePath(store.dir));
    this.#pullEnv = createBlockJobEnv({
      ctx,
      store,
      defs,
      track: (inst, job) => {
        let jobs = this.#pulls.get(inst);
        if (!jobs) this.#pulls.set(inst, (jobs = new Map()));
        jobs.set(job.id, job);
      },
      persist: (inst) => this.#persist(inst),
    });
  }

  /**
   * Opens the connection: reads the definitions and re-attaches to running QEMU processes.
   *
   * @param uri `qemu:///session`.
   * @param ctx What core gives the driver (`stateDir` from the options or the URI).
   * @returns The connection.
   * @throws {ConnectError} For another URI or an unusable state directory.
   */
  static async open(uri: ConnectionUri, ctx: DriverContext): Promise<QemuConnection> {
    checkUri(uri);
    const store = new StateStore(ctx.stateDir ?? defaultStateDir());
    try {
      await store.init();
    } catch (error) {
      throw new ConnectError(`Cannot connect to "${uri.href}": cannot use state directory "${store.dir}": ${(error as Error).message}`, {
        driver: DRIVER,
        cause: error,
      });
    }
    const conn = new QemuConnection(ctx, store, await DomainDefinitions.load(store, ctx.bus));
    // Jobs that finished under an earlier connection and were not dismissed: listed as they ended.
    await restoreFinishedJobs(store, ctx.jobs);
    for (const name of conn.#defs.names()) {
      const run = await store.loadRun(name);
      if (!run) continue;
      const found = await reattach({ name, run, ctx, env: conn.#pullEnv }).catch(() => undefined);
      if (found) {
        conn.#adopt(found, name);
        // Jobs that ended while no one listened were finished during the re-attach: record what remains.
        await conn.#persist(found);
      }
      // A QEMU that lives but does not answer (another connection holds its one QMP socket) keeps its record.
      else if (!processAlive(run.pid)) await store.removeRun(name, conn.#defs.get(name).uuid);
    }
    return conn;
  }

  /** Names of the defined domains, in definition order. */
  listDomains(options?: SignalOptions): Promise<string[]> {
    options?.signal?.throwIfAborted();
    return Promise.resolve(this.#defs.names());
  }

  /**
   * The run state of a running domain as QEMU's events reported it (`STOP`, `RESUME`; QEMU sends one
   * for every run-state change, before the reply of the command that caused it), so reading it costs no
   * QMP round trip; `shutoff` or `crashed` otherwise. The re-attach of a previous connection's QEMU
   * reads it once with `query-status`.
   */
  // async although nothing is awaited: an unknown name rejects, as it did when QEMU was asked
  async domainInfo(name: string, options?: SignalOptions): Promise<DomainInfo> {
    options?.signal?.throwIfAborted();
    const config = this.#defs.get(name);
    const inst = this.#instances.get(name);
    const state: DomainState = inst ? inst.state : this.#crashed.has(name) ? "crashed" : "shutoff";
    return { name, uuid: config.uuid, state, vcpus: config.vcpus, memoryBytes: config.memoryBytes };
  }

  /** A copy of the definition. */
  domainConfig(name: string, options?: SignalOptions): Promise<DomainConfig> {
    options?.signal?.throwIfAborted();
    return Promise.resolve(this.#defs.get(name));
  }

  /** Defines and persists a shut-off domain. */
  async defineDomain(config: DomainConfig, options?: SignalOptions): Promise<void> {
    options?.signal?.throwIfAborted();
    await this.#defs.define(config);
  }

  /** Removes the definition of a shut-off (or crashed) domain that no job works on. */
  async undefineDomain(name: string, options?: SignalOptions): Promise<void> {
    options?.signal?.throwIfAborted();
    const config = this.#defs.get(name);
    if (this.#instances.has(name) || this.#starting.has(name)) {
      throw new StateError(`Cannot undefine domain "${name}": it is running`, { state: "running", driver: DRIVER });
    }
    assertDomainIdle(this.#ctx.jobs, config, "undefine", DRIVER);
    await this.#defs.undefine(name);
    this.#crashed.delete(name);
  }

  /** Launches QEMU for a shut-off domain, stopped (`-S`), wires events, then `cont`. */
  async startDomain(name: string, options?: SignalOptions): Promise<void> {
    const config = this.#defs.get(name);
    if (this.#instances.has(name) || this.#starting.has(name)) {
      throw new StateError(`Cannot start domain "${name}": it is already running`, { state: "running", driver: DRIVER });
    }
    assertDomainIdle(this.#ctx.jobs, config, "start", DRIVER);
    this.#starting.add(name);
    try {
      await launchDomain({
        config,
        store: this.#store,
        ctx: this.#ctx,
        ...(options?.signal ? { signal: options.signal } : {}),
        adopt: async (inst) => {
          // An offline disk job may have started since the check above: QEMU (still stopped) goes again.
          assertDomainIdle(this.#ctx.jobs, config, "start", DRIVER);
          this.#adopt(inst, name);
          await this.#persist(inst);
        },
        drop: (inst) => {
          if (this.#instances.get(name) === inst) this.#instances.delete(name);
        },
      });
    } finally {
      this.#starting.delete(name);
    }
    this.#crashed.delete(name);
    this.#ctx.bus.emit("domain:started", { domain: name, reason: "booted" });
  }

  /** Takes over a running instance: reports its end. */
  #adopt(inst: Instance, name: string): void {
    this.#instances.set(name, inst);
    inst.onEnd((end) => {
      if (this.#instances.get(name) === inst) this.#instances.delete(name);
      this.#pulls.delete(inst);
      if (!end.expected) this.#crashed.add(name);
      const uuid = this.#defs.names().includes(name) ? this.#defs.get(name).uuid : undefined;
      if (uuid) void this.#store.removeRun(name, uuid).catch(() => {});
    });
  }

  /** ACPI power-off (`system_powerdown`), then waits for QEMU to exit. */
  async shutdownDomain(name: string, options?: SignalOptions & { timeoutMs?: number }): Promise<void> {
    const inst = this.#running(name, "shut down");
    const timeoutMs = options?.timeoutMs ?? DEFAULT_SHUTDOWN_TIMEOUT_MS;
    await inst.qmp.execute("system_powerdown", undefined, options?.signal ? { signal: options.signal } : {});
    if (timeoutMs === 0) return;
    const timer = new AbortController();
    const late = this.#ctx.clock.sleep(timeoutMs, timer.signal).then(() => "late" as const, () => "stopped" as const);
    const outcome = await Promise.race([inst.ended.then(() => "ended" as const), late]);
    timer.abort();
    if (outcome === "late") {
      throw new StateError(
        `Cannot shut down domain "${name}": the guest did not power off within ${timeoutMs} ms (no OS answering ACPI?); it is still running, use destroy() to force it off`,
        { state: inst.state, driver: DRIVER },
      );
    }
  }

  /** Hard power-off: `quit`, then SIGKILL when QEMU does not exit in time. A crashed domain becomes shut off. */
  async destroyDomain(name: string, options?: SignalOptions): Promise<void> {
    options?.signal?.throwIfAborted();
    this.#defs.get(name);
    const inst = this.#instances.get(name);
    if (!inst) {
      if (!this.#crashed.delete(name)) throw new StateError(`Cannot destroy domain "${name}": it is not running`, { state: "shutoff", driver: DRIVER });
      this.#ctx.bus.emit("domain:stopped", { domain: name, reason: "destroyed" });
      return;
    }
    inst.expectExit("destroyed");
    await inst.qmp.execute("quit").catch(() => {});
    if (!(await waitForExit(inst.pid, this.#ctx.clock, QUIT_TIMEOUT_MS))) inst.kill();
    await inst.ended;
  }

  /** Pauses the vCPUs (`stop`). */
  async suspendDomain(name: string, options?: SignalOptions): Promise<void> {
    const inst = this.#running(name, "suspend");
    if (inst.state === "paused") throw new StateError(`Cannot suspend domain "${name}": it is already paused`, { state: "paused", driver: DRIVER });
    await inst.qmp.execute("stop", undefined, options ?? {});
    inst.markState("paused");
  }

  /** Resumes the vCPUs (`cont`). */
  async resumeDomain(name: string, options?: SignalOptions): Promise<void> {
    const inst = this.#running(name, "resume", "it is not paused");
    if (inst.state !== "paused") throw new StateError(`Cannot resume domain "${name}": it is not paused`, { state: inst.state, driver: DRIVER });
    await inst.qmp.execute("cont", undefined, options ?? {});
    inst.markState("running");
  }

  /** Disks with their chains: as QEMU holds them when running, from the image headers otherwise. */
  async domainDisks(name: string, options?: SignalOptions): Promise<DiskInfo[]> {
    const config = this.#defs.get(name);
    const inst = this.#instances.get(name);
    const disks = inst ? inst.disks : await resolveDisks(config.disks, this.#ctx.storage, options?.signal ? { signal: options.signal } : {});
    return disks.map(diskInfo);
  }

  /** `block-stream` on a running domain (core pulls a shut-off one through the image engine). */
  async liveBlockPull(request: LiveBlockPullRequest): Promise<Job<void>> {
    const inst = this.#live(request.domain, request.disk.target, "pull");
    const running = inst.disks.find((d) => d.target === request.disk.target)!;
    return (await startQemuPull(this.#pullEnv, inst, running, request)).job;
  }

  /** `blockdev-add` of the destination and `blockdev-mirror` on a running domain (core copies a shut-off one). */
  async liveBlockCopy(request: LiveBlockCopyRequest): Promise<Job<void>> {
    const inst = this.#live(request.domain, request.disk.target, "copy");
    const running = inst.disks.find((d) => d.target === request.disk.target)!;
    const deps = { storage: this.#ctx.storage, bus: this.#ctx.bus };
    return (await startQemuCopy(this.#pullEnv, deps, inst, running, request)).job;
  }

  /** `block-commit` on a running domain (core commits a shut-off one through the image engine). */
  async liveBlockCommit(request: LiveBlockCommitRequest): Promise<Job<void>> {
    const inst = this.#live(request.domain, request.disk.target, "commit");
    const running = inst.disks.find((d) => d.target === request.disk.target)!;
    return (await startQemuCommit(this.#pullEnv, { storage: this.#ctx.storage }, inst, running, request)).job;
  }

  /**
   * Sends an HMP command to a running domain's QEMU (`human-monitor-command`), as libvirt's
   * `virsh qemu-monitor-command --hmp` does. Not part of the portable API: for tests and diagnosis
   * (for example `qemu-io -d vda-0 "write -P 0x5a 0 64k"` to write as a guest would).
   *
   * @param name Domain name.
   * @param commandLine The HMP command.
   * @returns QEMU's text output.
   * @throws {StateError} When the domain is not running.
   */
  async humanMonitorCommand(name: string, commandLine: string, options?: SignalOptions): Promise<string> {
    const inst = this.#running(name, "send a monitor command to");
    return await inst.qmp.execute<string>("human-monitor-command", { "command-line": commandLine }, options ?? {});
  }

  /** Points a shut-off domain's disk at another image and persists the definition. */
  async setDiskSource(name: string, disk: string, source: DiskSource, options?: SignalOptions): Promise<void> {
    options?.signal?.throwIfAborted();
    await this.#defs.setDiskSource(name, disk, source);
  }

  /** The instance of a domain a live disk job works on; `StateError` while it starts or once it ended. */
  #live(name: string, disk: string, verb: string): Instance {
    const inst = this.#instances.get(name);
    if (inst) return inst;
    const state = this.#starting.has(name) ? "starting" : this.#crashed.has(name) ? "crashed" : "shutoff";
    throw new StateError(`Cannot ${verb} disk "${disk}" of domain "${name}": it is ${state === "starting" ? "starting" : "not running"}`, { state, driver: DRIVER });
  }

  /** Stops watching the QEMU processes; they keep running, and the next connection finds them. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.#instances.values()].map((inst) => inst.detach()));
    this.#instances.clear();
  }

  #running(name: string, verb: string, refusal = "it is not running"): Instance {
    this.#defs.get(name);
    const inst = this.#instances.get(name);
    if (!inst) {
      const state = this.#crashed.has(name) ? "crashed" : "shutoff";
      throw new StateError(`Cannot ${verb} domain "${name}": ${refusal}`, { state, driver: DRIVER });
    }
    return inst;
  }

  /** Saves a running domain's record; saves of one domain run one after another, so the last one wins. */
  #persist(inst: Instance): Promise<void> {
    const write = async () => {
      if (inst.isEnded || this.#instances.get(inst.name) !== inst) return;
      const jobs = [...(this.#pulls.get(inst)?.values() ?? [])].filter((j) => j.inQemu).map((j) => j.record);
      await this.#store.saveRun(inst.name, { pid: inst.pid, socket: inst.socket, disks: inst.disks, jobs });
    };
    const next = (this.#saving.get(inst) ?? Promise.resolve()).then(write, write);
    this.#saving.set(inst, next.catch(() => {}));
    return next;
  }
}
