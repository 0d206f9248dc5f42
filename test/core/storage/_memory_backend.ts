/**
 * A tiny storage backend over MemoryVolumeStore for the pool manager tests, and a harness that wires a
 * manager to a real bus, job manager and virtual clock. Volume data lives in the backend definition, not
 * in the object `open` returns, so it survives stop/start as it would on disk.
 */
import { createVirtualClock, type VirtualClock } from "../../../core/clock.ts";
import type { StorageBackendDefinition, StoragePoolBackend, VolumeRecord } from "../../../core/storage_backend.ts";
import { ConflictError, NotFoundError } from "../../../core/errors.ts";
import { createEventBus } from "../../../core/event_bus.ts";
import type { CoreEvent } from "../../../core/events.ts";
import { createJobManager } from "../../../core/jobs/job_manager.ts";
import type { JobManager } from "../../../core/jobs/types.ts";
import type { PoolConfig } from "../../../core/storage_pool.ts";
import { GiB } from "../../../core/units.ts";
import type { BackingRef, VolumeInfo } from "../../../core/volume.ts";
import type { VolumeIO } from "../../../core/volume_io.ts";
import { createPoolManager, type PoolManager } from "../../../core/storage/pool_manager.ts";
import type { PoolConfigStore } from "../../../core/storage/pool_config_store.ts";
import { MemoryVolumeStore } from "../../../drivers/test/memory_volume.ts";

type Op = keyof StoragePoolBackend;

interface Stored {
  store: MemoryVolumeStore;
  format: "raw" | "qcow2";
  key: string;
  path: string;
}

/** The backend's state and knobs, shared by every pool it opens. */
export interface MemoryBackend {
  definition: StorageBackendDefinition;
  /** pool -> volume name -> volume. */
  pools: Map<string, Map<string, Stored>>;
  /** Every backend call, as "pool:op". */
  calls: string[];
  /** The next call of op fails with this error. */
  failNext: Map<Op, Error>;
  /** Ops the opened backends do not have. */
  omit: Set<Op>;
  /** Volumes by path, for backing resolution. */
  byPath: Map<string, Stored>;
}

export function memoryBackend(name = "mem"): MemoryBackend {
  const state: MemoryBackend = {
    definition: undefined as unknown as StorageBackendDefinition,
    pools: new Map(),
    calls: [],
    failNext: new Map(),
    omit: new Set(),
    byPath: new Map(),
  };
  const resolveBacking = (ref: BackingRef) => {
    const found = state.byPath.get(ref.path);
    if (!found) throw new TypeError(`no volume at "${ref.path}"`);
    return found.store;
  };
  state.definition = {
    kind: "storage",
    name,
    validate(config: PoolConfig) {
      const capacity = (config as { capacityBytes?: unknown }).capacityBytes;
      if (capacity !== undefined && typeof capacity !== "number") {
        throw new TypeError(`Invalid capacityBytes for pool "${config.name}"`);
      }
    },
    open(config: PoolConfig) {
      const pool = config.name;
      const volumes = () => {
        let map = state.pools.get(pool);
        if (!map) state.pools.set(pool, (map = new Map()));
        return map;
      };
      const find = (volume: string) => {
        const found = volumes().get(volume);
        if (!found) throw new NotFoundError("volume", volume, { driver: name });
        return found;
      };
      const record = (volume: string, v: Stored): VolumeRecord => ({ name: volume, key: v.key, path: v.path });
      // Plain functions: the wrapper below makes each one async and counts and fails its calls.
      const impl: { [K in Op]-?: (...args: Parameters<NonNullable<StoragePoolBackend[K]>>) => unknown } = {
        refresh() {},
        sizes() {
          const configured = (config as { capacityBytes?: unknown }).capacityBytes;
          const capacityBytes = typeof configured === "number" ? configured : GiB(100);
          let allocationBytes = 0;
          for (const v of volumes().values()) allocationBytes += v.store.allocationBytes;
          return { capacityBytes, allocationBytes, availableBytes: capacityBytes - allocationBytes };
        },
        listVolumes() {
          return [...volumes().entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([n, v]) => record(n, v));
        },
        lookupVolume(volume) {
          return record(volume, find(volume));
        },
        volumeInfo(volume): VolumeInfo {
          const v = find(volume);
          const allocationBytes = v.store.allocationBytes;
          const backing = v.store.backing;
          return {
            capacityBytes: v.store.capacityBytes,
            allocationBytes,
            physicalBytes: allocationBytes,
            format: v.format,
            ...(backing ? { backing } : {}),
          };
        },
        build() {},
        start() {},
        stop() {},
        delete() {
          if (volumes().size > 0) throw new ConflictError(`Cannot delete pool "${pool}": it is not empty`);
          state.pools.delete(pool);
        },
        createVolume(spec) {
          if (volumes().has(spec.name)) throw new ConflictError(`Volume "${spec.name}" exists in pool "${pool}"`);
          const path = `/mem/${pool}/${spec.name}`;
          const store = new MemoryVolumeStore({
            name: spec.name,
            capacityBytes: spec.capacityBytes,
            clusterBytes: 4096,
            ...(spec.backing ? { backing: spec.backing } : {}),
            resolveBacking,
          });
          const v: Stored = { store, format: spec.format, key: `key:${path}`, path };
          volumes().set(spec.name, v);
          state.byPath.set(path, v);
          return record(spec.name, v);
        },
        deleteVolume(volume) {
          const v = find(volume);
          volumes().delete(volume);
          state.byPath.delete(v.path);
        },
        resizeVolume(volume, capacityBytes) {
          find(volume).store.resize(capacityBytes);
        },
        openVolume(volume, mode) {
          const v = find(volume);
          const io = v.store.open(mode);
          if (v.format === "qcow2") return io;
          // A raw volume has no backing file to change.
          const raw: VolumeIO = {
            get capacityBytes() {
              return io.capacityBytes;
            },
            read: (...a) => io.read(...a),
            write: (...a) => io.write(...a),
            writeZeroes: (...a) => io.writeZeroes(...a),
            extents: (...a) => io.extents(...a),
            flush: (...a) => io.flush(...a),
            close: () => io.close(),
          };
          return raw;
        },
        close() {},
      };
      const backend: Partial<StoragePoolBackend> = {};
      for (const op of Object.keys(impl) as Op[]) {
        if (state.omit.has(op)) continue;
        const method = impl[op] as (...args: unknown[]) => unknown;
        (backend as Record<string, unknown>)[op] = async (...args: unknown[]) => {
          state.calls.push(`${pool}:${op}`);
          const failure = state.failNext.get(op);
          if (failure) {
            state.failNext.delete(op);
            throw failure;
          }
          return await method(...args);
        };
      }
      return Promise.resolve(backend as StoragePoolBackend);
    },
  };
  return state;
}

/** The store behind a volume, for checking content directly. */
export function storeOf(backend: MemoryBackend, pool: string, volume: string): MemoryVolumeStore {
  const v = backend.pools.get(pool)?.get(volume);
  if (!v) throw new Error(`no volume ${pool}/${volume}`);
  return v.store;
}

export interface Harness {
  clock: VirtualClock;
  jobs: JobManager;
  manager: PoolManager;
  backend: MemoryBackend;
  events: CoreEvent[];
  /** Event types (with pool/volume) seen so far, e.g. "pool:started images". */
  seen(prefix?: string): string[];
}

export function harness(options: { store?: PoolConfigStore; backend?: MemoryBackend } = {}): Harness {
  const clock = createVirtualClock();
  const bus = createEventBus({ clock });
  const events: CoreEvent[] = [];
  bus.on("*", (event) => events.push(event));
  const jobs = createJobManager({ bus, clock });
  const backend = options.backend ?? memoryBackend();
  const manager = createPoolManager({
    registry: {
      storageBackend(type) {
        if (type !== backend.definition.name) {
          return Promise.reject(new NotFoundError("backend", type, { detail: `known: ${backend.definition.name}` }));
        }
        return Promise.resolve(backend.definition);
      },
    },
    bus,
    clock,
    jobs,
    uri: { href: "test:///empty", scheme: "test", host: "", path: "/empty", params: new Map() },
    ...(options.store ? { store: options.store } : {}),
  });
  return {
    clock,
    jobs,
    manager,
    backend,
    events,
    seen(prefix = "") {
      return events
        .filter((e) => e.type.startsWith(prefix))
        .map((e) => {
          const extra = "volume" in e ? ` ${e.pool}/${e.volume}` : "pool" in e ? ` ${e.pool}` : "";
          return `${e.type}${extra}`;
        });
    },
  };
}

/** Fills a store range with a byte value (written into the store's own layer). */
export function fill(store: MemoryVolumeStore, offset: number, length: number, byte: number): void {
  store.writeAt(offset, new Uint8Array(length).fill(byte));
}

/** Reads a whole store. */
export function contents(store: MemoryVolumeStore): Uint8Array {
  const bytes = new Uint8Array(store.capacityBytes);
  store.readAt(0, bytes);
  return bytes;
}

/** Runs the virtual clock until `promise` settles (a bounded number of turns), then returns its outcome. */
export async function settle<T>(clock: VirtualClock, promise: Promise<T>): Promise<T> {
  let done = false;
  const tracked = promise.finally(() => {
    done = true;
  });
  tracked.catch(() => {});
  for (let turn = 0; turn < 200 && !done; turn++) await clock.runUntilIdle();
  if (!done) throw new Error("the promise did not settle: is the job paused or waiting for a stream?");
  return tracked;
}

/** The first offset where two byte arrays differ, or -1 (deep equality of megabytes is slow in expect). */
export function firstDifference(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.byteLength, b.byteLength);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.byteLength === b.byteLength ? -1 : n;
}
