/**
 * A connection's storage side with only the `dir` backend registered, as drivers and core jobs see it
 * (`StorageAccess`): a copy to a bare host path reaches its directory through `openHostDirectory`, the
 * real pool table's. Every `createVolume` the host directories get is recorded, and a hook runs just
 * before each one (to put a file in the way between a caller's check and its create).
 */
import { createVirtualClock } from "../../core/clock.ts";
import { createEventBus, type EventBus } from "../../core/event_bus.ts";
import { createJobManager } from "../../core/jobs/job_manager.ts";
import type { StorageAccess, StorageBackendDefinition, VolumeCreateSpec } from "../../core/storage_backend.ts";
import type { SignalOptions } from "../../core/options.ts";
import { createPoolManager } from "../../core/storage/pool_manager.ts";
import { dirBackend } from "../../drivers/dir/mod.ts";

/** What {@linkcode hostDirectoryStorage} returns; `await using` closes it. */
export interface HostDirectoryStorage extends AsyncDisposable {
  /** What a driver gets as `ctx.storage`. */
  readonly storage: StorageAccess;
  /** The bus `volume:*` events go to. */
  readonly bus: EventBus;
  /** Every `createVolume` a host directory got, in order. */
  readonly creates: VolumeCreateSpec[];
}

/**
 * @param options `backend`: the `dir` definition (default the real one; `createDirBackend({ fs })` to
 *   watch its file system); `beforeCreate`: runs before each `createVolume` with the directory and spec.
 */
export function hostDirectoryStorage(options: {
  backend?: StorageBackendDefinition;
  beforeCreate?: (directory: string, spec: VolumeCreateSpec) => void;
} = {}): HostDirectoryStorage {
  const clock = createVirtualClock();
  const bus = createEventBus({ clock });
  const jobs = createJobManager({ bus, clock });
  const creates: VolumeCreateSpec[] = [];
  const real = options.backend ?? dirBackend;
  const watched: StorageBackendDefinition = {
    ...real,
    async open(config, ctx) {
      const backend = await real.open(config, ctx);
      const directory = (config as { path: string }).path;
      // The backend is a class instance (private fields): its methods stay bound to it.
      return new Proxy(backend, {
        get(target, key) {
          if (key === "createVolume") {
            return (spec: VolumeCreateSpec, opts?: SignalOptions) => {
              creates.push(spec);
              options.beforeCreate?.(directory, spec);
              return target.createVolume!(spec, opts);
            };
          }
          const value = Reflect.get(target, key, target);
          return typeof value === "function" ? value.bind(target) : value;
        },
      });
    },
  };
  const manager = createPoolManager({
    registry: { storageBackend: (type) => (type === "dir" ? Promise.resolve(watched) : Promise.reject(new Error(`no ${type} backend here`))) },
    bus,
    clock,
    jobs,
    uri: { href: "test:///empty", scheme: "test", host: "", path: "/empty", params: new Map() },
  });
  return {
    storage: manager.access,
    bus,
    creates,
    async [Symbol.asyncDispose]() {
      await jobs.close();
      await manager.close();
    },
  };
}
