/**
 * One `memory` pool: the {@linkcode StoragePoolBackend} over the pool's storage in the connection's
 * {@linkcode MemoryHost}. Capacity is accounted like libvirt's test driver.
 *
 * @module
 */
import type { StoragePoolBackend, VolumeCreateSpec, VolumeRecord } from "../../core/storage_backend.ts";
import { ConflictError, NotFoundError, StateError } from "../../core/errors.ts";
import type { SignalOptions } from "../../core/options.ts";
import type { MemoryPoolConfig } from "../../core/storage_pool.ts";
import type { VolumeInfo } from "../../core/volume.ts";
import type { VolumeIO } from "../../core/volume_io.ts";
import {
  DEFAULT_POOL_CAPACITY_BYTES,
  type MemoryHost,
  type MemoryPoolData,
  type MemoryVolume,
  memoryVolumeKey,
  poolAllocationBytes,
} from "./memory_host.ts";
import type { TestOperation } from "./faults.ts";
import { createContentStore } from "./volume_content.ts";

const DRIVER = "test";

/** Runs a synchronous body as an async operation: what it throws becomes the rejection. */
function settle<T>(body: () => T): Promise<T> {
  try {
    return Promise.resolve(body());
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * A `memory` pool. Its volumes live in the connection's {@linkcode MemoryHost}, so they survive
 * `stop()`/`start()` and a re-definition under the same name, like files in a directory; `delete()`
 * empties it. Key and path of a volume are `/<pool>/<name>`.
 *
 * @example
 * ```ts
 * import { MemoryHost } from "./memory_host.ts";
 * import { MemoryPool } from "./memory_pool.ts";
 * const pool = new MemoryPool({ name: "p", type: "memory" }, new MemoryHost());
 * await pool.start();
 * const record = await pool.createVolume({ name: "a.img", capacityBytes: 1 << 20, format: "raw" });
 * if (record.key !== "/p/a.img") throw new Error("unexpected");
 * ```
 */
export class MemoryPool implements StoragePoolBackend {
  readonly #name: string;
  readonly #capacityBytes: number;
  readonly #host: MemoryHost;

  /**
   * @param config The pool's definition (capacity default 100 GiB).
   * @param host The connection's memory storage.
   */
  constructor(config: MemoryPoolConfig, host: MemoryHost) {
    this.#name = config.name;
    this.#capacityBytes = config.capacityBytes ?? DEFAULT_POOL_CAPACITY_BYTES;
    this.#host = host;
    const data = host.pools.get(this.#name);
    if (data) data.capacityBytes = this.#capacityBytes;
  }

  /** Creates the pool's (empty) storage unless it exists. */
  build(options?: SignalOptions): Promise<void> {
    return this.#op("pool.build", options, () => void this.#ensure());
  }

  /** Activates the pool; a memory pool needs no build first. */
  start(options?: SignalOptions): Promise<void> {
    return this.#op("pool.start", options, () => void this.#ensure());
  }

  /** Deactivates the pool; its volumes stay. */
  stop(options?: SignalOptions): Promise<void> {
    return this.#op("pool.stop", options, () => {});
  }

  /** Nothing to re-read: the storage is the state. */
  refresh(options?: SignalOptions): Promise<void> {
    return this.#op("pool.refresh", options, () => void this.#data());
  }

  /** Destroys the pool's volumes. */
  delete(options?: SignalOptions): Promise<void> {
    return this.#op("pool.delete", options, () => {
      const data = this.#host.pools.get(this.#name);
      if (!data) return;
      for (const volume of data.volumes.values()) {
        const outside = this.#host.dependentsOf(volume.store).filter((key) => !key.startsWith(`/${this.#name}/`));
        if (outside.length > 0) {
          throw new ConflictError(`Cannot delete pool "${this.#name}": its volume "${volume.name}" backs "${outside[0]}"`, { driver: DRIVER });
        }
      }
      this.#host.pools.delete(this.#name);
    });
  }

  /** Capacity, allocation (bytes the volumes allocate) and free space. */
  sizes(options?: SignalOptions): Promise<{ capacityBytes: number; allocationBytes: number; availableBytes: number }> {
    return this.#op("pool.info", options, () => {
      const allocationBytes = poolAllocationBytes(this.#data());
      const capacityBytes = this.#capacityBytes;
      return { capacityBytes, allocationBytes, availableBytes: Math.max(0, capacityBytes - allocationBytes) };
    });
  }

  /** Volumes sorted by name. */
  listVolumes(options?: SignalOptions): Promise<VolumeRecord[]> {
    return this.#op("volumes.list", options, () => {
      const names = [...this.#data().volumes.keys()].sort();
      return names.map((name) => this.#record(name));
    });
  }

  /** One volume. */
  lookupVolume(name: string, options?: SignalOptions): Promise<VolumeRecord> {
    return this.#op("volumes.get", options, () => this.#record(this.#volume(name).name));
  }

  /** Sizes, format and backing: physical size is the allocation of a qcow2 volume and the capacity of a raw one. */
  volumeInfo(name: string, options?: SignalOptions): Promise<VolumeInfo> {
    return this.#op("volume.info", options, () => this.describe(name).info);
  }

  /**
   * A volume's record and info, read by the `test` driver itself (for `dom.disks()` and `dom.start()`):
   * no armed failure fires here, so `failNext("volume.info")` fails only the caller's own call.
   *
   * @param name Volume name.
   * @returns Its record and info.
   * @throws {NotFoundError} When the pool has no such volume.
   */
  describe(name: string): { record: VolumeRecord; info: VolumeInfo } {
    const { store, format } = this.#volume(name);
    const allocationBytes = store.allocationBytes;
    const physicalBytes = format === "qcow2" ? allocationBytes : store.capacityBytes;
    const backing = store.backing;
    const info = { capacityBytes: store.capacityBytes, allocationBytes, physicalBytes, format, ...(backing ? { backing: { ...backing } } : {}) };
    return { record: this.#record(name), info };
  }

  /** Creates a thin volume; refused when its capacity exceeds the pool's free space (libvirt's test driver rule). */
  createVolume(spec: VolumeCreateSpec, options?: SignalOptions): Promise<VolumeRecord> {
    return this.#op("volumes.create", options, () => {
      const data = this.#data();
      if (data.volumes.has(spec.name)) {
        throw new ConflictError(`Cannot create volume "${spec.name}" in pool "${this.#name}": it exists`, { driver: DRIVER });
      }
      if (spec.backing && spec.format !== "qcow2") {
        throw new TypeError(`Invalid backing for volume "${spec.name}": only a qcow2 volume can have one`);
      }
      this.#checkSpace(data, `create volume "${spec.name}"`, spec.capacityBytes);
      const below = spec.backing && this.#host.resolve(spec.backing.path).volume;
      // The reference records the backing's canonical key and its real format label.
      const backing = below && { ref: { path: below.key, format: below.format }, store: below.store };
      const key = memoryVolumeKey(this.#name, spec.name);
      const store = createContentStore({
        name: spec.name,
        capacityBytes: spec.capacityBytes,
        resolveBacking: (ref) => this.#host.resolveStore(ref.path),
        ...(backing ? { backing } : {}),
      });
      data.volumes.set(spec.name, { name: spec.name, key, format: spec.format, store });
      return this.#record(spec.name);
    });
  }

  /** Deletes a volume; refused while another volume uses it as its backing. */
  deleteVolume(name: string, options?: SignalOptions): Promise<void> {
    return this.#op("volume.delete", options, () => {
      const volume = this.#volume(name);
      const dependents = this.#host.dependentsOf(volume.store);
      if (dependents.length > 0) {
        throw new ConflictError(`Cannot delete volume "${name}" in pool "${this.#name}": it backs "${dependents.join('", "')}"`, {
          driver: DRIVER,
        });
      }
      this.#data().volumes.delete(name);
    });
  }

  /** Changes a volume's capacity; growing needs the growth in free space. */
  resizeVolume(name: string, capacityBytes: number, options?: SignalOptions): Promise<void> {
    return this.#op("volume.resize", options, () => {
      const { store } = this.#volume(name);
      if (capacityBytes > store.capacityBytes) {
        this.#checkSpace(this.#data(), `grow volume "${name}"`, capacityBytes - store.capacityBytes);
      }
      store.resize(capacityBytes);
    });
  }

  /** Opens a volume for positional I/O. */
  openVolume(name: string, mode: { write: boolean }, options?: SignalOptions): Promise<VolumeIO> {
    return settle(() => {
      options?.signal?.throwIfAborted();
      return this.#volume(name).store.open({ write: mode.write === true });
    });
  }

  /** Nothing to release: the storage stays with the connection. */
  close(): Promise<void> {
    return Promise.resolve();
  }

  /** Checks the signal and an armed failure, then runs the synchronous body. */
  #op<T>(operation: TestOperation, options: SignalOptions | undefined, body: () => T): Promise<T> {
    return settle(() => {
      options?.signal?.throwIfAborted();
      this.#host.faults.check(operation);
      return body();
    });
  }

  #ensure(): MemoryPoolData {
    let data = this.#host.pools.get(this.#name);
    if (!data) this.#host.pools.set(this.#name, (data = { name: this.#name, capacityBytes: this.#capacityBytes, volumes: new Map() }));
    return data;
  }

  #data(): MemoryPoolData {
    const data = this.#host.pools.get(this.#name);
    if (!data) throw new StateError(`Cannot use pool "${this.#name}": its storage is not built`, { state: "unbuilt", driver: DRIVER });
    return data;
  }

  #volume(name: string): MemoryVolume {
    const volume = this.#data().volumes.get(name);
    if (!volume) throw new NotFoundError("volume", name, { driver: DRIVER, detail: `pool "${this.#name}" has no such volume` });
    return volume;
  }

  #record(name: string): VolumeRecord {
    const key = memoryVolumeKey(this.#name, name);
    return { name, key, path: key };
  }

  #checkSpace(data: MemoryPoolData, action: string, bytes: number): void {
    const available = Math.max(0, this.#capacityBytes - poolAllocationBytes(data));
    if (bytes > available) {
      throw new ConflictError(
        `Cannot ${action} in pool "${this.#name}": not enough free space in pool (${bytes} bytes asked, ${available} available)`,
        { driver: DRIVER },
      );
    }
  }
}
