/**
 * The pool manager's state: the defined pools, their lazily opened backends, the order of lifecycle
 * operations on each pool, persistence through the {@linkcode PoolConfigStore}, and the
 * {@linkcode StorageAccess} drivers use. Internal to `core/storage`.
 *
 * @module
 */
import { checkDeclaredOperations } from "../capabilities.ts";
import { type DriverContext } from "../driver.ts";
import { type StorageAccess, type StorageBackendDefinition, type StoragePoolBackend, type VolumeRecord } from "../storage_backend.ts";
import { ConflictError, NotFoundError, StateError } from "../errors.ts";
import type { EventBus } from "../event_bus.ts";
import type { JobManager } from "../jobs/types.ts";
import type { SignalOptions } from "../options.ts";
import type { PoolConfig } from "../storage_pool.ts";
import { BasePoolConfigSchema, checkPoolConfig } from "../config/pool_config.ts";
import { assertName, assertObject } from "../validate.ts";
import type { VolumeIO } from "../volume_io.ts";
import type { PoolConfigStore } from "./pool_config_store.ts";
import type { PoolManagerOptions } from "./pool_manager.ts";
import { requireOp } from "./volume_checks.ts";

/** Where the pool manager finds storage backends (a `Registry` fits). */
export interface StorageBackendSource {
  /** The backend serving pools of `type`; `NotFoundError` listing the known ones otherwise. */
  storageBackend(type: string): Promise<StorageBackendDefinition>;
}

/** What the table needs from the connection: the manager's options, with the store chosen. */
export type PoolTableOptions = Omit<PoolManagerOptions, "store"> & {
  /** Persistence of definitions. */
  store: PoolConfigStore;
};

/** One defined pool. */
export interface PoolEntry {
  /** Pool name. */
  readonly name: string;
  /** A private copy of the definition. */
  readonly config: PoolConfig;
  /** The backend serving it. */
  readonly definition: StorageBackendDefinition;
  /** Whether it is started. */
  active: boolean;
  /** Whether it is saved in the store (pools a driver seeds are not). */
  readonly persistent: boolean;
  /** Whether it starts when the host has booted (libvirt's autostart; persistent pools only). */
  autostart: boolean;
  /** The open backend object, once build, delete or start needed it. */
  backend: StoragePoolBackend | undefined;
  /** Tail of this pool's lifecycle operations, which run one at a time. */
  queue: Promise<unknown>;
}

/**
 * The pools of one connection.
 *
 * @internal
 * @example
 * ```ts
 * import { PoolTable } from "./pool_table.ts";
 * import { createMemoryPoolConfigStore } from "./pool_config_store.ts";
 * import { createVirtualClock } from "virtkit";
 * import type { EventBus } from "virtkit";
 * import type { JobManager } from "virtkit";
 * const table = new PoolTable({
 *   registry: { storageBackend: async (type) => { throw new Error(`no backend ${type}`); } },
 *   bus: {} as EventBus,
 *   clock: createVirtualClock(),
 *   jobs: {} as JobManager,
 *   uri: { href: "test:///empty", scheme: "test", host: "", path: "/empty", params: new Map() },
 *   store: createMemoryPoolConfigStore(),
 * });
 * await table.ready();
 * if (table.entries().length !== 0 || (await table.findVolume({ key: "k" })) !== undefined) throw new Error("unexpected");
 * ```
 */
export class PoolTable {
  /** The connection's bus. */
  readonly bus: EventBus;
  /** The connection's jobs. */
  readonly jobs: JobManager;
  /** What drivers and volume jobs use to reach pools. */
  readonly access: StorageAccess;
  readonly #options: PoolTableOptions;
  readonly #entries = new Map<string, PoolEntry>();
  #loaded: Promise<void> | undefined;
  #closed = false;

  /** @param options The connection's parts. */
  constructor(options: PoolTableOptions) {
    this.#options = options;
    this.bus = options.bus;
    this.jobs = options.jobs;
    this.access = {
      openVolume: (pool, volume, mode, opts) => this.#openVolume(pool, volume, mode, opts),
      backend: async (pool) => (await this.activeBackend(pool, "use its backend")).backend,
      findVolume: (query) => this.findVolume(query),
      addPools: (pools, opts) => this.addPools(pools, { ...opts, skipTaken: false }),
      openHostDirectory: (path, opts) => this.#openHostDirectory(path, opts),
    };
  }

  /** Loads the saved definitions once; every public entry point awaits this first. */
  ready(options?: SignalOptions): Promise<void> {
    options?.signal?.throwIfAborted();
    if (this.#closed) {
      return Promise.reject(new StateError("Cannot use storage pools: the connection is closed", { state: "closed" }));
    }
    this.#loaded ??= this.#load();
    return this.#loaded;
  }

  async #load(): Promise<void> {
    const restore: Array<{ entry: PoolEntry; reason: "restored" | "autostart" }> = [];
    for (const saved of await this.#options.store.load()) {
      const { config, definition } = await this.checkConfig(saved.config);
      if (this.#entries.has(config.name)) continue;
      const entry = this.add(config, definition, { active: false, persistent: true, autostart: saved.autostart === true });
      // After a host boot only autostart pools start; otherwise each pool is as the last connection
      // left it (a stopped autostart pool stays stopped until the next boot, as in libvirt).
      if (saved.hostRestarted === true ? saved.autostart : saved.active) {
        restore.push({ entry, reason: saved.hostRestarted === true ? "autostart" : "restored" });
      }
    }
    // A pool that was active when the last connection closed is active again, as libvirt keeps active
    // pools across a daemon restart; one whose backend cannot start it stays inactive and says why.
    let changed = false;
    for (const { entry, reason } of restore) {
      try {
        await this.serial(entry.name, (current) => this.activate(current, {}, false));
        this.bus.emit("pool:started", { pool: entry.name, reason });
      } catch (error) {
        changed = true;
        this.bus.emit("pool:stopped", { pool: entry.name, reason: "start-failed", error: error instanceof Error ? error.message : String(error) });
      }
    }
    // Saved as inactive, so the next connection does not retry a pool that no longer starts (unless autostart).
    if (changed) await this.persist().catch(() => {});
  }

  /**
   * Validates a definition and finds its backend.
   *
   * @throws {TypeError} For a malformed config: by the schema of its type (the backend's `configSchema`,
   *   or the built-in one), then by the backend's own `validate`.
   * @throws {NotFoundError} When no backend serves its type.
   */
  async checkConfig(input: PoolConfig): Promise<{ config: PoolConfig; definition: StorageBackendDefinition }> {
    // Name and type first, so an unknown type is a NotFoundError and not a schema error.
    const { type } = checkPoolConfig(input, BasePoolConfigSchema);
    const definition = await this.#options.registry.storageBackend(type);
    const config = checkPoolConfig(structuredClone(input), definition.configSchema);
    definition.validate?.(config);
    return { config, definition };
  }

  /** Adds a pool (the caller has checked the name is free). */
  add(
    config: PoolConfig,
    definition: StorageBackendDefinition,
    flags: { active: boolean; persistent: boolean; autostart?: boolean },
  ): PoolEntry {
    const entry: PoolEntry = {
      name: config.name,
      config,
      definition,
      backend: undefined,
      queue: Promise.resolve(),
      active: flags.active,
      persistent: flags.persistent,
      autostart: flags.autostart === true,
    };
    this.#entries.set(config.name, entry);
    return entry;
  }

  /** Forgets a pool. */
  remove(name: string): void {
    this.#entries.delete(name);
  }

  /** Puts back a pool that `remove` took out (a failed undefine). */
  restore(entry: PoolEntry): void {
    this.#entries.set(entry.name, entry);
  }

  /** Whether a pool of that name is defined. */
  has(name: string): boolean {
    return this.#entries.has(name);
  }

  /** Every pool, in definition order. */
  entries(): PoolEntry[] {
    return [...this.#entries.values()];
  }

  /** One pool; `NotFoundError` when it is not defined. */
  entry(name: string): PoolEntry {
    const entry = this.#entries.get(name);
    if (!entry) throw new NotFoundError("pool", name);
    return entry;
  }

  /** Runs a lifecycle operation of one pool after the ones already queued on it. */
  serial<T>(name: string, operation: (entry: PoolEntry) => Promise<T>): Promise<T> {
    const first = this.entry(name);
    const run = first.queue.then(() => operation(this.entry(name)));
    first.queue = run.catch(() => {});
    return run;
  }

  /** The pool's backend object, opened on first use (build and delete need it before start). */
  async backendOf(entry: PoolEntry): Promise<StoragePoolBackend> {
    if (entry.backend) return entry.backend;
    const { uri, bus, clock, jobs, stateDir } = this.#options;
    const ctx: DriverContext = { uri, bus, clock, jobs, storage: this.access, ...(stateDir === undefined ? {} : { stateDir }) };
    const backend = await entry.definition.open(structuredClone(entry.config), ctx);
    try {
      checkDeclaredOperations(entry.definition, backend);
    } catch (error) {
      await backend.close?.().catch(() => {});
      throw error;
    }
    entry.backend = backend;
    return backend;
  }

  /** The `dir` backend over a host directory, started, as no pool (see `StorageAccess.openHostDirectory`). */
  async #openHostDirectory(path: string, options?: SignalOptions): Promise<StoragePoolBackend> {
    const definition = await this.#options.registry.storageBackend("dir");
    const { uri, bus, clock, jobs, stateDir } = this.#options;
    const ctx: DriverContext = { uri, bus, clock, jobs, storage: this.access, ...(stateDir === undefined ? {} : { stateDir }) };
    const backend = await definition.open({ name: "host-directory", type: "dir", path } as never, ctx);
    try {
      await backend.start?.(options);
    } catch (error) {
      await backend.close?.().catch(() => {});
      throw error;
    }
    return backend;
  }

  /** Closes and forgets the pool's backend object (stop, undefine, close). */
  async releaseBackend(entry: PoolEntry): Promise<void> {
    const backend = entry.backend;
    entry.backend = undefined;
    await backend?.close?.();
  }

  /**
   * The backend of an active pool.
   *
   * @param name Pool name.
   * @param action What the caller wanted, for the message (`"list volumes"`).
   * @throws {NotFoundError} When the pool is not defined.
   * @throws {StateError} When it is inactive.
   */
  async activeBackend(name: string, action: string): Promise<{ backend: StoragePoolBackend; driver: string }> {
    await this.ready();
    const entry = this.entry(name);
    if (!entry.active || !entry.backend) {
      throw new StateError(`Cannot ${action}: pool "${name}" is inactive`, { state: "inactive", driver: entry.definition.name });
    }
    return { backend: entry.backend, driver: entry.definition.name };
  }

  /**
   * Starts an inactive pool: opens its backend, lets it activate, reads its volumes. A pool whose start or
   * first refresh fails is left inactive, with its backend closed. Call it inside {@linkcode serial}.
   *
   * @param entry The pool.
   * @param options Cancellation.
   * @param announce Emit `pool:started` (pools a driver brings start quietly).
   * @throws {StateError} When the pool is active.
   */
  async activate(entry: PoolEntry, options: SignalOptions, announce: boolean): Promise<void> {
    const driver = entry.definition.name;
    if (entry.active) throw new StateError(`Cannot start pool "${entry.name}": it is already active`, { state: "active", driver });
    const backend = await this.backendOf(entry);
    const call = options.signal ? { signal: options.signal } : undefined;
    let started = false;
    try {
      if (backend.start) {
        await backend.start(call);
        started = true;
      }
      await backend.refresh(call);
    } catch (error) {
      if (started) await backend.stop?.().catch(() => {});
      await this.releaseBackend(entry).catch(() => {});
      throw error;
    }
    entry.active = true;
    if (announce) this.bus.emit("pool:started", { pool: entry.name });
  }

  /**
   * Defines pools a driver brings, quietly and not persistent, starting the active ones; all or nothing.
   *
   * @param list The pools and whether each starts active.
   * @param options `skipTaken`: a name already defined keeps its definition (a saved one wins over a
   *   seed); otherwise a taken name is a `ConflictError` and nothing is added.
   */
  async addPools(
    list: ReadonlyArray<{ config: PoolConfig; active: boolean }>,
    options: SignalOptions & { skipTaken: boolean },
  ): Promise<void> {
    if (!Array.isArray(list)) throw new TypeError("Invalid pools: expected an array of { config, active }");
    await this.ready(options);
    const checked: Array<{ config: PoolConfig; definition: StorageBackendDefinition; active: boolean }> = [];
    for (const item of list) {
      const { config, definition } = await this.checkConfig(assertObject(item, "pool entry").config as PoolConfig);
      if (this.has(config.name) || checked.some((c) => c.config.name === config.name)) {
        if (options.skipTaken) continue;
        throw new ConflictError(`Cannot add pool "${config.name}": a pool of that name exists`);
      }
      checked.push({ config, definition, active: item.active === true });
    }
    options.signal?.throwIfAborted();
    const added = checked.map((c) => ({ entry: this.add(c.config, c.definition, { active: false, persistent: false }), active: c.active }));
    try {
      for (const { entry, active } of added) if (active) await this.serial(entry.name, (current) => this.activate(current, options, false));
    } catch (error) {
      for (const { entry } of added) {
        this.remove(entry.name);
        if (entry.active) await entry.backend?.stop?.().catch(() => {});
        entry.active = false;
        await this.releaseBackend(entry).catch(() => {});
      }
      throw error;
    }
  }

  /** Saves the persistent definitions with their autostart flags and whether each is active. */
  async persist(): Promise<void> {
    await this.#options.store.save(
      this.entries().filter((e) => e.persistent).map((e) => ({ config: structuredClone(e.config), autostart: e.autostart, active: e.active })),
    );
  }

  /** Finds the active pool holding a volume with that key or path. */
  async findVolume(query: { key: string } | { path: string }): Promise<{ pool: string; volume: VolumeRecord } | undefined> {
    const q = assertObject(query, "volume query");
    const field = typeof q.key === "string" && q.key.length > 0 ? "key" : typeof q.path === "string" && q.path.length > 0 ? "path" : undefined;
    if (field === undefined) throw new TypeError("Invalid volume query: expected { key } or { path } with a non-empty string");
    const wanted = q[field] as string;
    await this.ready();
    for (const entry of this.entries()) {
      if (!entry.active || !entry.backend) continue;
      const found = (await entry.backend.listVolumes()).find((record) => record[field] === wanted);
      if (found) return { pool: entry.name, volume: found };
    }
    return undefined;
  }

  async #openVolume(pool: string, volume: string, mode: { write: boolean }, options?: SignalOptions): Promise<VolumeIO> {
    const { backend, driver } = await this.activeBackend(pool, `open volume "${volume}"`);
    return await requireOp(backend, "openVolume", driver, pool)(volume, { write: mode.write === true }, options);
  }

  /** Closes every open backend; later calls fail with `StateError`. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const errors: unknown[] = [];
    for (const entry of this.entries()) {
      entry.active = false;
      await this.releaseBackend(entry).catch((error: unknown) => errors.push(error));
    }
    if (errors.length > 0) throw errors[0];
  }
}
