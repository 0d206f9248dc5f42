/**
 * Where pool definitions persist between connections. The pool manager loads them once, before its first
 * operation, and saves the whole list after every define and undefine.
 *
 * @module
 */
import type { PoolConfig } from "../storage_pool.ts";

/** Persistence of pool definitions (libvirt keeps them as XML files in its config directory). */
export interface PoolConfigStore {
  /** The definitions saved last, in definition order. */
  load(): Promise<PoolConfig[]>;
  /** Replaces every saved definition with `configs`. */
  save(configs: PoolConfig[]): Promise<void>;
}

/**
 * A store that keeps definitions in memory only: they live as long as the store object, so a connection
 * that creates its own store forgets its pools when it closes.
 *
 * @param initial Definitions the store starts with.
 * @returns A store holding deep copies of what it is given.
 * @example
 * ```ts
 * import { createMemoryPoolConfigStore } from "./pool_config_store.ts";
 * const store = createMemoryPoolConfigStore();
 * await store.save([{ name: "images", type: "memory" }]);
 * const configs = await store.load();
 * if (configs.length !== 1 || configs[0]!.name !== "images") throw new Error("unexpected");
 * ```
 */
export function createMemoryPoolConfigStore(initial: readonly PoolConfig[] = []): PoolConfigStore {
  // Copies on both sides, so neither the caller nor the manager can change what is stored behind its back.
  let saved: PoolConfig[] = structuredClone([...initial]);
  return {
    load: () => Promise.resolve(structuredClone(saved)),
    save(configs) {
      saved = structuredClone(configs);
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
 * deferred.resolve(createMemoryPoolConfigStore([{ name: "images", type: "memory" }]));
 * if ((await loading)[0]?.name !== "images") throw new Error("unexpected");
 * ```
 */
export function createDeferredPoolConfigStore(): DeferredPoolConfigStore {
  let choose!: (store: PoolConfigStore) => void;
  const chosen = new Promise<PoolConfigStore>((resolve) => (choose = resolve));
  return {
    store: {
      load: () => chosen.then((store) => store.load()),
      save: (configs) => chosen.then((store) => store.save(configs)),
    },
    resolve: (target) => choose(target ?? createMemoryPoolConfigStore()),
  };
}
