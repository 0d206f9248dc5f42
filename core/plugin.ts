/**
 * Plugins: packages that add drivers, storage backends or per-connection behaviour. A plugin acts only
 * through the host it is given in `setup()`: the registry (to register definitions) and, for each
 * connection opened through that registry, the connection itself (its event bus).
 *
 * @module
 */
import type { Connection } from "./connection.ts";
import type { HypervisorDriverDefinition } from "./driver.ts";
import type { AnyStorageBackendDefinition, StorageBackendDefinition } from "./storage_backend.ts";
import { StateError, UnsupportedError } from "./errors.ts";
import type { LazyDriver } from "./registry.ts";

/**
 * The plugin API version this virtkit implements. It changes only when the plugin contract breaks; a
 * plugin declares the version it was written for as a literal (`apiVersion: 1`), not by importing this.
 */
export const API_VERSION = 1;

/** Undoes what a per-connection listener did; runs when the connection closes or the plugin is removed. */
export type ConnectCleanup = () => void | Promise<void>;

/** Called with each connection opened through the registry, before `connect()` returns it. */
export type ConnectListener = (conn: Connection) => void | ConnectCleanup | Promise<void | ConnectCleanup>;

/** Undoes a plugin's setup; runs when its disposer is called, before its registrations are removed. */
export type PluginTeardown = () => void | Promise<void>;

/** What a plugin's `setup()` receives: all it may touch. */
export interface PluginHost {
  /** The API version of the virtkit running the plugin ({@linkcode API_VERSION}). */
  readonly apiVersion: number;
  /** Registration into the registry the plugin is used in; everything registered is removed with the plugin. */
  readonly registry: {
    /**
     * Registers a driver, a backend or a lazy entry, as `Registry.register` does.
     *
     * @returns A function that removes it again.
     */
    register(def: HypervisorDriverDefinition | AnyStorageBackendDefinition | LazyDriver): () => void;
  };
  /**
   * Adds a listener called with every connection opened through the registry from now on; if it
   * returns a function, that runs when the connection closes or when the plugin is removed, whichever
   * comes first (so removing a plugin detaches it from open connections too). A listener that throws
   * makes the connection fail to open (with a `ConnectError`), so a plugin is never silently missing.
   *
   * @returns A function that stops calling the listener for new connections.
   */
  onConnect(listener: ConnectListener): () => void;
}

/** A plugin, as {@linkcode definePlugin} returns it. */
export interface PluginDefinition {
  /** Unique name among the plugins of a registry: lower-case letters, digits and `-`. */
  readonly name: string;
  /** The plugin API version it was written for; a registry rejects any other. */
  readonly apiVersion: number;
  /** Registers what the plugin brings; may return a teardown function. */
  setup(host: PluginHost): void | PluginTeardown | Promise<void | PluginTeardown>;
}

const PLUGIN_NAME = /^[a-z][a-z0-9-]*$/;

/**
 * Defines a plugin: checks the name, the API version and `setup`, and freezes the result. Defining a
 * plugin does nothing else; `registry.use(plugin)` runs it.
 *
 * @param def The name, the plugin API version it was written for, and `setup(host)`.
 * @returns The frozen definition.
 * @throws {TypeError} For a malformed name or a missing `setup`.
 * @throws {RangeError} When `apiVersion` is not a whole number from 1.
 * @example
 * ```ts
 * import { definePlugin } from "virtkit";
 * import { createRegistry } from "virtkit";
 * const audit = definePlugin({
 *   name: "audit",
 *   apiVersion: 1,
 *   setup(host) {
 *     host.onConnect((conn) => conn.events.on("domain:*", (event) => console.log(event.type)));
 *   },
 * });
 * const registry = createRegistry();
 * const dispose = await registry.use(audit);
 * await dispose();
 * ```
 */
export function definePlugin(def: PluginDefinition): PluginDefinition {
  if (typeof def !== "object" || def === null) throw new TypeError("Invalid plugin definition: expected an object");
  if (typeof def.name !== "string" || !PLUGIN_NAME.test(def.name)) {
    throw new TypeError(`Invalid plugin name ${JSON.stringify(def.name)}: expected lower-case letters, digits and "-", starting with a letter`);
  }
  if (typeof def.apiVersion !== "number" || !Number.isInteger(def.apiVersion) || def.apiVersion < 1) {
    throw new RangeError(`Invalid plugin "${def.name}": apiVersion must be a whole number from 1, got ${String(def.apiVersion)}`);
  }
  if (typeof def.setup !== "function") throw new TypeError(`Invalid plugin "${def.name}": setup must be a function`);
  return Object.freeze({ name: def.name, apiVersion: def.apiVersion, setup: def.setup });
}

/** What {@linkcode installPlugin} needs from a registry. @internal */
export interface PluginTarget {
  /** The registry's own `register`. */
  register(def: HypervisorDriverDefinition | AnyStorageBackendDefinition | LazyDriver): () => void;
  /** The registry's per-connection listeners. */
  readonly connectListeners: Set<ConnectListener>;
}

/**
 * Checks a plugin's API version, runs its setup against `target`, and returns the function that
 * detaches it from open connections, tears it down and removes what it registered. If setup throws,
 * what it registered is removed first.
 *
 * @internal Used by `Registry.use`.
 */
export async function installPlugin(plugin: PluginDefinition, target: PluginTarget): Promise<() => Promise<void>> {
  const { name, apiVersion, setup } = definePlugin(plugin);
  if (apiVersion !== API_VERSION) {
    throw new UnsupportedError(`plugin API version ${apiVersion}`, {
      detail: `plugin "${name}" was written for plugin API version ${apiVersion}, this virtkit implements version ${API_VERSION}`,
    });
  }
  const undo: Array<() => void> = [];
  const attached = new Set<ConnectCleanup>(); // cleanups of connections still open
  let active = true;
  const assertActive = (what: string) => {
    if (!active) throw new StateError(`Cannot ${what} for plugin "${name}": it has been removed`, { state: "removed" });
  };
  const host: PluginHost = Object.freeze({
    apiVersion: API_VERSION,
    registry: Object.freeze({
      register(def: HypervisorDriverDefinition | AnyStorageBackendDefinition | LazyDriver) {
        assertActive("register a driver");
        const off = target.register(def);
        undo.push(off);
        return off;
      },
    }),
    onConnect(listener: ConnectListener) {
      if (typeof listener !== "function") throw new TypeError(`Invalid onConnect listener of plugin "${name}": expected a function`);
      assertActive("add a connect listener");
      // A wrapper (so the same function added twice is two listeners, each removed on its own) that
      // records each connection's cleanup, so removing the plugin can detach it from open connections.
      const entry: ConnectListener = async (conn) => {
        const cleanup = await listener(conn);
        if (typeof cleanup !== "function") return undefined;
        if (!active) {
          await cleanup(); // the plugin was removed while this listener ran
          return undefined;
        }
        let done = false;
        const once: ConnectCleanup = async () => {
          if (done) return;
          done = true;
          attached.delete(once);
          await cleanup();
        };
        attached.add(once);
        return once;
      };
      target.connectListeners.add(entry);
      const off = () => void target.connectListeners.delete(entry);
      undo.push(off);
      return off;
    },
  });
  const removeAll = () => {
    active = false;
    for (const off of undo.reverse()) off();
  };
  let teardown: unknown;
  try {
    teardown = await setup(host);
    if (teardown !== undefined && typeof teardown !== "function") {
      throw new TypeError(`Invalid plugin "${name}": setup must return nothing or a teardown function`);
    }
  } catch (error) {
    removeAll();
    throw error;
  }
  return async () => {
    if (!active) return;
    active = false;
    let failure: unknown;
    try {
      failure = await runCleanups([...attached]);
      if (typeof teardown === "function") await teardown();
    } finally {
      removeAll();
    }
    if (failure !== undefined) throw failure;
  };
}

/**
 * Runs the connect listeners of a registry on a fresh connection.
 *
 * @returns The cleanups they returned, to run when the connection closes.
 * @throws What a listener throws, after running the cleanups of the listeners before it.
 * @internal Used by `openConnection`.
 */
export async function runConnectListeners(
  listeners: Iterable<ConnectListener>,
  conn: Connection,
): Promise<ConnectCleanup[]> {
  const cleanups: ConnectCleanup[] = [];
  try {
    for (const listener of [...listeners]) {
      const cleanup = await listener(conn);
      if (typeof cleanup === "function") cleanups.push(cleanup);
    }
  } catch (error) {
    await runCleanups(cleanups);
    throw error;
  }
  return cleanups;
}

/**
 * Runs cleanups newest first; every one runs even if an earlier one throws.
 *
 * @returns The first error thrown, if any.
 * @internal
 */
export async function runCleanups(cleanups: readonly ConnectCleanup[]): Promise<unknown> {
  let first: unknown;
  for (const cleanup of [...cleanups].reverse()) {
    try {
      await cleanup();
    } catch (error) {
      first ??= error;
    }
  }
  return first;
}
