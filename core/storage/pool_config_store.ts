/**
 * Where pool definitions and their run state persist between connections. The pool manager loads them
 * once, before its first operation, and saves the whole list after every define, undefine, start, stop
 * and `setAutostart`, so the next connection on the same state directory finds each pool as the last one
 * left it (libvirt keeps definitions in its config directory, the active pools' state under /run, and
 * autostart links, so a daemon restart keeps active pools active).
 *
 * @module
 */
import type { PoolConfig } from "../storage_pool.ts";

/** One saved pool. */
export interface SavedPool {
  /** Its definition. */
  config: PoolConfig;
  /** Whether a new connection starts it even when it was inactive (libvirt's autostart). */
  autostart: boolean;
  /** Whether it was active when last saved: a new connection starts it again. */
  active: boolean;
  /**
   * Set by a store that knows the host booted since this was saved: whether it was active no longer
   * holds, and only `autostart` starts it (libvirt's autostart is for host boots; a daemon restart
   * keeps active pools active). A store that cannot tell leaves it out.
   */
  hostRestarted?: boolean;
}

/** Persistence of pool definitions and state. */
export interface PoolConfigStore {
  /** The pools saved last, in definition order. */
  load(): Promise<SavedPool[]>;
  /** Replaces every saved pool with `pools`. */
  save(pools: SavedPool[]): Promise<void>;
}

/**
 * A store that keeps definitions in memory only: they live as long as the store object, so a connection
 * that creates its own store forgets its pools when it closes.
 *
 * @param initial Pools the store starts with.
 * @returns A store holding deep copies of what it is given.
 * @example
 * ```ts
 * import { createMemoryPoolConfigStore } from "./pool_config_store.ts";
 * const store = createMemoryPoolConfigStore();
 * await store.save([{ config: { name: "images", type: "memory" }, autostart: true, active: false }]);
 * const saved = await store.load();
 * if (saved.length !== 1 || saved[0]!.config.name !== "images" || !saved[0]!.autostart) throw new Error("unexpected");
 * ```
 */
export function createMemoryPoolConfigStore(initial: readonly SavedPool[] = []): PoolConfigStore {
  // Copies on both sides, so neither the caller nor the manager can change what is stored behind its back.
  let saved: SavedPool[] = structuredClone([...initial]);
  return {
    load: () => Promise.resolve(structuredClone(saved)),
    save(pools) {
      saved = structuredClone(pools);
      return Promise.resolve();
    },
  };
}

/** A store whose backing store is chosen later; see {@linkcode createDeferredPoolConfigStore}. */
export interface DeferredPoolConfigStore {
  /** The store to hand out now. */
  readonly store: PoolConfigStore;
  /** Chooses the real store (absent: in memory). Calls made before this wait for it. */
  resolve(target: PoolConfigStore | undefined): void;
}

/**
 * A store that forwards to one chosen later: the connection hands it to the pool manager before the
 * driver that knows where definitions persist has opened. Loads and saves wait until `resolve()`.
 *
 * @returns The store and its `resolve`.
 * @example
 * ```ts
 * import { createDeferredPoolConfigStore, createMemoryPoolConfigStore } from "./pool_config_store.ts";
 * const deferred = createDeferredPoolConfigStore();
 * const loading = deferred.store.load();
 * deferred.resolve(createMemoryPoolConfigStore([{ config: { name: "images", type: "memory" }, autostart: false, active: true }]));
 * if ((await loading)[0]?.config.name !== "images") throw new Error("unexpected");
 * ```
 */
export function createDeferredPoolConfigStore(): DeferredPoolConfigStore {
  let choose!: (store: PoolConfigStore) => void;
  const chosen = new Promise<PoolConfigStore>((resolve) => (choose = resolve));
  return {
    store: {
      load: () => chosen.then((store) => store.load()),
      save: (pools) => chosen.then((store) => store.save(pools)),
    },
    resolve: (target) => choose(target ?? createMemoryPoolConfigStore()),
  };
}
