/**
 * The storage backend contract: what a pool type (`dir`, `logical`, `iscsi`, a plugin's own) implements,
 * and how drivers reach the connection's pools. Users never call these directly; `StoragePool` and
 * `Volume` check arguments and dispatch here, and a missing optional method becomes an `UnsupportedError`.
 * The contracts of core/driver.ts hold here too.
 *
 * @module
 */
import { checkCapabilityList, STORAGE_OPERATIONS, type StorageOperation } from "./capabilities.ts";
import type { DriverContext } from "./driver.ts";
import { checkDefinition } from "./driver_definition.ts";
import type { SignalOptions } from "./options.ts";
import type { GenericSchema } from "valibot";
import type { BasePoolConfig, IscsiChapAuth, PoolConfig } from "./storage_pool.ts";
import type { VolumeInfo } from "./volume.ts";
import type { VolumeIO } from "./volume_io.ts";

/** A volume as a backend names it. */
export interface VolumeRecord {
  /** Name within the pool. */
  readonly name: string;
  /** Unique key across pools (canonical path for files). */
  readonly key: string;
  /** Host path or locator. */
  readonly path: string;
  /**
   * Credentials a hypervisor needs to open `path`: an `iscsi` pool's CHAP account, as libvirt copies a
   * pool's `<auth>` into the disk source of a domain using its volume. Never part of `path` or `key`,
   * and never shown to users (volume handles keep only name, key and path); a driver passes the secret
   * on to its hypervisor out of sight (the qemu driver: a QEMU `secret` object read from a 0600 file).
   */
  readonly auth?: IscsiChapAuth;
}

/** A pool's sizes in bytes. */
export interface PoolSizes {
  /** Total bytes. */
  readonly capacityBytes: number;
  /** Bytes used. */
  readonly allocationBytes: number;
  /** Bytes free. */
  readonly availableBytes: number;
}

/** Where a volume lives. */
export interface VolumeLocation {
  /** Pool name. */
  readonly pool: string;
  /** The volume as its backend names it. */
  readonly volume: VolumeRecord;
}

export type { VolumeCreateSpec } from "./config/volume_spec.ts";
import type { VolumeCreateSpec } from "./config/volume_spec.ts";

/**
 * One active pool of a storage backend. Sizes are bytes. Implement the required methods, and
 * `openVolume` to get clone, allocate, pull, wipe, upload and download from core's copy loop.
 *
 * @example A read-only pool holding one 1 MiB volume of 0x2a bytes
 * ```ts
 * import { createDefaultRegistry, defineStorageBackend, MiB, NotFoundError, type StoragePoolBackend, type VolumeIO } from "virtkit";
 * const bytes = new Uint8Array(MiB(1)).fill(0x2a);
 * const record = { name: "answer.img", key: "fixed/answer.img", path: "/fixed/answer.img" };
 * const io: VolumeIO = {
 *   capacityBytes: bytes.length,
 *   async read(offset, target) { const n = Math.min(target.length, bytes.length - offset); target.set(bytes.subarray(offset, offset + n)); return n; },
 *   async write() { throw new Error("read-only"); },
 *   async writeZeroes() { throw new Error("read-only"); },
 *   async *extents(offset, length) { yield { offset, length, data: true, zero: false, depth: 0 }; },
 *   async flush() {},
 *   async close() {},
 * };
 * const pool: StoragePoolBackend = {
 *   async refresh() {},
 *   async sizes() { return { capacityBytes: bytes.length, allocationBytes: bytes.length, availableBytes: 0 }; },
 *   async listVolumes() { return [record]; },
 *   async lookupVolume(name) { if (name !== record.name) throw new NotFoundError("volume", name); return record; },
 *   async volumeInfo() { return { capacityBytes: bytes.length, allocationBytes: bytes.length, physicalBytes: bytes.length, format: "raw" }; },
 *   async openVolume() { return io; },
 * };
 * // The built-ins plus this backend: every connection of the registry can define "fixed" pools.
 * const registry = createDefaultRegistry();
 * registry.register(defineStorageBackend({ name: "fixed", open: async () => pool }));
 * await using conn = await registry.connect("test:///empty");
 * const fixed = await conn.pools.create({ name: "fixed", type: "fixed" });
 * const download = await (await fixed.volumes.get("answer.img")).download({ length: 4 });
 * const { value } = await download.readable.getReader().read();
 * if (value?.[0] !== 0x2a) throw new Error("unexpected");
 * ```
 */
export interface StoragePoolBackend {
  /** Required. Re-reads the underlying storage. */
  refresh(options?: SignalOptions): Promise<void>;
  /** Required. Capacity, allocation and free space. */
  sizes(options?: SignalOptions): Promise<PoolSizes>;
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
export interface StorageBackendDefinition<C extends BasePoolConfig = PoolConfig> {
  /** Always `"storage"`. */
  readonly kind: "storage";
  /** The pool `type` it serves (`"dir"`, `"logical"`, ...). */
  readonly name: string;
  /**
   * The schema of its pool definitions (valibot), which core checks every definition of this type
   * against (after name and type), so its messages have the shape of every other config error. Built-in
   * types (`dir`, `logical`, `iscsi`, `memory`) have one in `core/config/pool_config.ts` already.
   */
  readonly configSchema?: GenericSchema<unknown, C>;
  /**
   * Checks what a schema cannot (runs after `configSchema`; name and type are checked by core).
   *
   * @throws {TypeError} For a malformed config.
   */
  validate?(config: C): void;
  /**
   * The optional operations its pools implement. docs/support-matrix.md is generated from it, and core
   * checks every opened pool against it (absent: not declared, shown so in the matrix).
   */
  readonly capabilities?: readonly StorageOperation[];
  /** Opens a pool (defined, maybe not built). */
  open(config: C, ctx: DriverContext): Promise<StoragePoolBackend>;
}

/**
 * A storage backend of any pool config type, as `registry.register()` takes them: a backend whose config
 * is a plain interface (`StorageBackendDefinition<ScratchPoolConfig>`) is not a
 * `StorageBackendDefinition<PoolConfig>`, and need not be.
 */
// deno-lint-ignore no-explicit-any
export type AnyStorageBackendDefinition = StorageBackendDefinition<any>;

/** The pools of a connection, as drivers see them. */
export interface StorageAccess {
  /** Opens a volume of a pool for I/O. */
  openVolume(pool: string, volume: string, mode: { write: boolean }, options?: SignalOptions): Promise<VolumeIO>;
  /** The backend of an active pool. */
  backend(pool: string): Promise<StoragePoolBackend>;
  /** Finds the pool and volume behind a key or path. */
  findVolume(query: { key: string } | { path: string }): Promise<VolumeLocation | undefined>;
  /**
   * Defines pools a driver brings after the connection opened, exactly as the entries of
   * `HypervisorConnection.initialPools()` are defined when it opens (not persistent; `active` ones
   * started). The `test` driver's `conn.testing.load(fixture)` needs it for the fixture's pools.
   * `ConflictError` when a name is taken; then none of them is added.
   */
  addPools?(pools: ReadonlyArray<{ config: PoolConfig; active: boolean }>, options?: SignalOptions): Promise<void>;
  /**
   * Opens the `dir` backend over a host directory that is no pool (transient: not listed, not saved;
   * the caller closes it), for a job whose destination is a bare host path, as libvirt's blockcopy
   * writes a file anywhere. `NotFoundError` when the registry has no `dir` backend or the directory
   * does not exist.
   */
  openHostDirectory?(path: string, options?: SignalOptions): Promise<StoragePoolBackend>;
}

/**
 * Defines a storage backend: checks the name, `open` and `validate`, tags `kind` and freezes the result.
 * The name is the pool `type` it serves. Register it with `registry.register(def)`.
 *
 * The result is typed for any pool config: core hands `validate` and `open` only definitions whose
 * `type` is this backend's name, after checking `name`; `validate` checks the backend's own fields.
 *
 * @typeParam C The pool config type it opens (an interface or a type with `name` and `type`).
 * @param def The backend's name, an optional `validate(config)`, and `open(config, ctx)`.
 * @returns A frozen definition with `kind: "storage"`.
 * @throws {TypeError} For a malformed name, or an `open` or `validate` that is not a function.
 * @example
 * ```ts
 * import { defineStorageBackend } from "virtkit";
 * const scratch = defineStorageBackend({
 *   name: "scratch",
 *   open: async () => { throw new Error("not in this example"); },
 * });
 * if (scratch.kind !== "storage" || scratch.name !== "scratch") throw new Error("unexpected");
 * ```
 */
export function defineStorageBackend<C extends BasePoolConfig = PoolConfig>(
  def: Omit<StorageBackendDefinition<C>, "kind">,
): StorageBackendDefinition {
  const { name } = checkDefinition(def, "storage backend");
  if (def.validate !== undefined && typeof def.validate !== "function") {
    throw new TypeError(`Invalid storage backend "${name}": validate must be a function when given`);
  }
  const schema = def.configSchema as { kind?: unknown; "~run"?: unknown } | undefined;
  if (schema !== undefined && (schema.kind !== "schema" || typeof schema["~run"] !== "function")) {
    throw new TypeError(`Invalid storage backend "${name}": configSchema must be a valibot schema when given`);
  }
  const capabilities = checkCapabilityList(def.capabilities, STORAGE_OPERATIONS, `storage backend "${name}"`);
  // Erased to the general config type: which config reaches which backend is core's routing by `type`.
  const erased = def as unknown as Omit<StorageBackendDefinition, "kind">;
  return Object.freeze({
    kind: "storage",
    name,
    ...(erased.configSchema === undefined ? {} : { configSchema: erased.configSchema }),
    ...(erased.validate === undefined ? {} : { validate: erased.validate }),
    ...(capabilities === undefined ? {} : { capabilities: capabilities as readonly StorageOperation[] }),
    open: erased.open,
  });
}
