/**
 * The definitions of a `qemu:` connection: in memory in definition order, persisted through the
 * {@linkcode StateStore}, with the checks libvirt makes on define and undefine.
 *
 * @module
 */
import type { DomainConfig } from "../../core/domain.ts";
import type { DiskSource } from "../../core/driver.ts";
import { ConflictError, NotFoundError } from "../../core/errors.ts";
import type { EventBus } from "../../core/event_bus.ts";
import type { StateStore } from "./state_store.ts";

/** A stored definition: always with its UUID. */
export type StoredConfig = DomainConfig & { uuid: string };

/**
 * The domain definitions of one state directory.
 *
 * @example
 * ```ts
 * import { DomainDefinitions } from "./domain_table.ts";
 * import { StateStore } from "./state_store.ts";
 * import { mkdtempSync, rmSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * const dir = mkdtempSync(join(tmpdir(), "virtkit-doc-"));
 * try {
 *   const store = new StateStore(dir);
 *   await store.init();
 *   const bus = { emit: () => {} } as unknown as import("../../core/event_bus.ts").EventBus;
 *   const table = await DomainDefinitions.load(store, bus);
 *   await table.define({ name: "a", vcpus: 1, memoryBytes: 1 << 26, disks: [] });
 *   if (table.names()[0] !== "a") throw new Error("unexpected");
 * } finally {
 *   rmSync(dir, { recursive: true, force: true });
 * }
 * ```
 */
export class DomainDefinitions {
  readonly #store: StateStore;
  readonly #bus: EventBus;
  readonly #configs = new Map<string, StoredConfig>();
  #order = 0;

  private constructor(store: StateStore, bus: EventBus) {
    this.#store = store;
    this.#bus = bus;
  }

  /**
   * Reads every saved definition.
   *
   * @param store The state directory.
   * @param bus Where `domain:defined`/`domain:undefined` go.
   * @returns The table.
   */
  static async load(store: StateStore, bus: EventBus): Promise<DomainDefinitions> {
    const table = new DomainDefinitions(store, bus);
    for (const config of await store.loadDomains()) table.#configs.set(config.name, config);
    return table;
  }

  /** Names, in definition order. */
  names(): string[] {
    return [...this.#configs.keys()];
  }

  /**
   * A copy of a definition.
   *
   * @throws {NotFoundError} When there is none.
   */
  get(name: string): StoredConfig {
    const config = this.#configs.get(name);
    if (!config) throw new NotFoundError("domain", name, { driver: "qemu" });
    return structuredClone(config);
  }

  /**
   * Defines and persists a domain, then emits `domain:defined`.
   *
   * @throws {TypeError} For disks with a repeated target or without exactly one of volume and path.
   * @throws {ConflictError} When the name or UUID is taken.
   */
  async define(config: DomainConfig): Promise<void> {
    const targets = new Set<string>();
    for (const disk of config.disks) {
      if (targets.has(disk.target)) throw new TypeError(`Invalid config of domain "${config.name}": disk target "${disk.target}" is used twice`);
      targets.add(disk.target);
      if ((disk.volume === undefined) === (disk.path === undefined)) {
        throw new TypeError(`Invalid config of domain "${config.name}": disk "${disk.target}" needs exactly one of volume and path`);
      }
    }
    if (this.#configs.has(config.name)) {
      throw new ConflictError(`Cannot define domain "${config.name}": a domain with that name exists`, { driver: "qemu" });
    }
    const uuid = (config.uuid ?? crypto.randomUUID()).toLowerCase();
    const owner = [...this.#configs.values()].find((c) => c.uuid === uuid);
    if (owner) {
      throw new ConflictError(`Cannot define domain "${config.name}": UUID ${uuid} belongs to domain "${owner.name}"`, { driver: "qemu" });
    }
    const stored: StoredConfig = { ...structuredClone(config), uuid };
    await this.#store.saveDomain(stored, Date.now() * 1000 + (this.#order++ % 1000));
    this.#configs.set(config.name, stored);
    this.#bus.emit("domain:defined", { domain: config.name, reason: "added" });
  }

  /**
   * Points a disk at another image (the pivot of a block copy or active commit), persists the
   * definition, and emits `domain:defined` (reason `"updated"`).
   *
   * @throws {NotFoundError} For an unknown domain or disk.
   */
  async setDiskSource(name: string, target: string, source: DiskSource): Promise<void> {
    const config = this.get(name);
    const index = config.disks.findIndex((d) => d.target === target);
    if (index < 0) throw new NotFoundError("disk", target, { driver: "qemu", detail: `domain "${name}" has no such disk` });
    const { volume: _volume, path: _path, ...rest } = config.disks[index]!;
    config.disks[index] = "volume" in source
      ? { ...rest, volume: { ...source.volume }, format: source.format }
      : { ...rest, path: source.path, format: source.format };
    await this.#store.updateDomain(config);
    this.#configs.set(name, config);
    this.#bus.emit("domain:defined", { domain: name, reason: "updated" });
  }

  /** Removes a definition (the caller checked the state) and emits `domain:undefined`. */
  async undefine(name: string): Promise<void> {
    this.get(name);
    await this.#store.removeDomain(name);
    this.#configs.delete(name);
    this.#bus.emit("domain:undefined", { domain: name, reason: "removed" });
  }
}
