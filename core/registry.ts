/**
 * The registry: which hypervisor driver serves which URI scheme, and which storage backend serves which
 * pool type. There is no global registry and importing a driver registers nothing: `createRegistry()`
 * is empty, and drivers are added explicitly (`registerBuiltins(registry)`, `registry.register(def)`,
 * `registry.use(plugin)`).
 *
 * @module
 */
import type { Connection, ConnectOptions } from "./connection.ts";
import { defineHypervisorDriver } from "./driver.ts";
import { defineStorageBackend } from "./storage_backend.ts";
import type { HypervisorDriverDefinition } from "./driver.ts";
import type { AnyStorageBackendDefinition, StorageBackendDefinition } from "./storage_backend.ts";
import { ConflictError, NotFoundError, VirtError } from "./errors.ts";
import { type ConnectListener, installPlugin, type PluginDefinition } from "./plugin.ts";

/** A hypervisor driver registered by name and schemes, loaded (imported) on first use. */
export interface LazyHypervisorDriver {
  /** Always `"hypervisor"`. */
  readonly kind: "hypervisor";
  /** Driver name; the loaded definition must have the same. */
  readonly name: string;
  /** URI schemes it serves; the loaded definition must have the same. */
  readonly schemes: readonly string[];
  /** Loads the definition, typically `() => import("./qemu/mod.ts").then((m) => m.qemuDriver)`. */
  load(): Promise<HypervisorDriverDefinition>;
}

/** A storage backend registered by name, loaded (imported) on first use. */
export interface LazyStorageBackend {
  /** Always `"storage"`. */
  readonly kind: "storage";
  /** Backend name (the pool type); the loaded definition must have the same. */
  readonly name: string;
  /** Loads the definition. */
  load(): Promise<StorageBackendDefinition>;
}

/** A driver or backend registered by name, loaded once, on first use. */
export type LazyDriver = LazyHypervisorDriver | LazyStorageBackend;

/** Kinds of registry entries. */
export type DriverKind = "hypervisor" | "storage";

/** One row of {@linkcode Registry.list}. */
export interface RegistryEntry {
  /** Hypervisor driver or storage backend. */
  readonly kind: DriverKind;
  /** Its name. */
  readonly name: string;
  /** URI schemes, for hypervisor drivers. */
  readonly schemes?: readonly string[];
  /** Whether its definition is in memory (false for a lazy entry not used yet). */
  readonly loaded: boolean;
}

/** Drivers and backends, by name and scheme. */
export interface Registry {
  /**
   * Adds a driver, a backend, or a lazy entry for one.
   *
   * @returns A function that removes it again (idempotent).
   * @throws {ConflictError} When the kind and name, or one of the schemes, is taken.
   * @throws {TypeError} For a malformed definition.
   */
  register(def: HypervisorDriverDefinition | AnyStorageBackendDefinition | LazyDriver): () => void;
  /**
   * Runs a plugin's setup. Always asynchronous, whether or not setup is.
   *
   * @returns A function that detaches the plugin from open connections (their connect-listener
   *   cleanups), runs its teardown and removes what it registered (idempotent).
   * @throws {UnsupportedError} When the plugin was written for another plugin API version.
   * @throws {ConflictError} When a plugin of that name is in use.
   */
  use(plugin: PluginDefinition): Promise<() => Promise<void>>;
  /**
   * The hypervisor driver serving a URI scheme, loading it if it is lazy.
   *
   * @throws {NotFoundError} Listing the registered schemes, when none serves it.
   */
  hypervisorFor(scheme: string): Promise<HypervisorDriverDefinition>;
  /**
   * The storage backend of a pool type, loading it if it is lazy.
   *
   * @throws {NotFoundError} Listing the registered backends, when there is none of that name.
   */
  storageBackend(type: string): Promise<StorageBackendDefinition>;
  /** What is registered, hypervisor drivers first, each kind sorted by name. */
  list(kind?: DriverKind): RegistryEntry[];
  /** Opens a connection with a driver of this registry (`options.registry` is ignored). */
  connect(uri: string, options?: ConnectOptions): Promise<Connection>;
}

type Definition = HypervisorDriverDefinition | StorageBackendDefinition;

interface Entry {
  readonly kind: DriverKind;
  readonly name: string;
  readonly schemes?: readonly string[];
  definition?: Definition;
  loading?: Promise<Definition>;
  readonly load?: () => Promise<Definition>;
}

const KIND_TEXT = { hypervisor: "hypervisor driver", storage: "storage backend" } as const;

/**
 * Creates an empty registry.
 *
 * @returns A registry with no drivers.
 * @example
 * ```ts
 * import { createRegistry } from "virtkit";
 * import { defineStorageBackend } from "virtkit";
 * const registry = createRegistry();
 * const remove = registry.register(defineStorageBackend({ name: "scratch", open: async () => { throw new Error("demo"); } }));
 * if (registry.list("storage")[0]?.name !== "scratch") throw new Error("unexpected");
 * remove();
 * if (registry.list().length !== 0) throw new Error("unexpected");
 * ```
 */
export function createRegistry(): Registry {
  const entries = new Map<string, Entry>(); // by `${kind}:${name}`
  const schemes = new Map<string, Entry>();
  const plugins = new Set<string>();
  const connectListeners = new Set<ConnectListener>();

  const register = (def: Definition | LazyDriver): (() => void) => {
    const entry = toEntry(def);
    const key = `${entry.kind}:${entry.name}`;
    const what = `${KIND_TEXT[entry.kind]} "${entry.name}"`;
    if (entries.has(key)) throw new ConflictError(`Cannot register ${what}: a ${KIND_TEXT[entry.kind]} of that name is registered`);
    for (const scheme of entry.schemes ?? []) {
      const holder = schemes.get(scheme);
      if (holder) throw new ConflictError(`Cannot register ${what}: URI scheme "${scheme}" is served by "${holder.name}"`);
    }
    entries.set(key, entry);
    for (const scheme of entry.schemes ?? []) schemes.set(scheme, entry);
    return () => {
      // Only this registration: after removal the same name may be registered again by someone else.
      if (entries.get(key) !== entry) return;
      entries.delete(key);
      for (const scheme of entry.schemes ?? []) schemes.delete(scheme);
    };
  };

  const sorted = (kind: DriverKind) =>
    [...entries.values()].filter((e) => e.kind === kind).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

  const registry: Registry = {
    register,
    async use(plugin) {
      const name = (plugin as { name?: unknown } | null)?.name;
      if (typeof name === "string" && plugins.has(name)) {
        throw new ConflictError(`Cannot use plugin "${name}": a plugin of that name is in use`);
      }
      if (typeof name === "string") plugins.add(name);
      try {
        const dispose = await installPlugin(plugin, { register, connectListeners });
        let disposing: Promise<void> | undefined;
        return () =>
          disposing ??= dispose().finally(() => {
            plugins.delete(name as string);
          });
      } catch (error) {
        if (typeof name === "string") plugins.delete(name);
        throw error;
      }
    },
    async hypervisorFor(scheme) {
      if (typeof scheme !== "string") throw new TypeError(`Invalid URI scheme: expected a string, got ${typeof scheme}`);
      const entry = schemes.get(scheme.toLowerCase());
      if (!entry) {
        const known = [...schemes.keys()].sort();
        throw new NotFoundError("driver", scheme, {
          detail: known.length ? `registered schemes are ${quoteList(known)}` : "no hypervisor drivers are registered",
        });
      }
      return (await loadEntry(entry)) as HypervisorDriverDefinition;
    },
    async storageBackend(type) {
      if (typeof type !== "string") throw new TypeError(`Invalid pool type: expected a string, got ${typeof type}`);
      const entry = entries.get(`storage:${type}`);
      if (!entry) {
        const known = sorted("storage").map((e) => e.name);
        throw new NotFoundError("backend", type, {
          detail: known.length ? `registered backends are ${quoteList(known)}` : "no storage backends are registered",
        });
      }
      return (await loadEntry(entry)) as StorageBackendDefinition;
    },
    list(kind) {
      if (kind !== undefined && kind !== "hypervisor" && kind !== "storage") {
        throw new TypeError(`Invalid registry kind ${JSON.stringify(kind)}: expected "hypervisor" or "storage"`);
      }
      const kinds: DriverKind[] = kind ? [kind] : ["hypervisor", "storage"];
      return kinds.flatMap((k) =>
        sorted(k).map((e) =>
          Object.freeze({
            kind: e.kind,
            name: e.name,
            ...(e.schemes ? { schemes: e.schemes } : {}),
            loaded: e.definition !== undefined,
          })
        )
      );
    },
    async connect(uri, options) {
      // Imported on demand: the registry stays light for code that only registers drivers, and the
      // registry <-> connection modules do not import each other at load time.
      const { openConnection } = await import("./connect.ts");
      return openConnection(uri, options, registry);
    },
  };
  connectListenersByRegistry.set(registry, connectListeners);
  return registry;
}

const connectListenersByRegistry = new WeakMap<Registry, ReadonlySet<ConnectListener>>();

/**
 * The plugin connect listeners of a registry made by {@linkcode createRegistry} (none for others).
 *
 * @internal Used by `openConnection`.
 */
export function connectListenersOf(registry: Registry): ReadonlySet<ConnectListener> {
  return connectListenersByRegistry.get(registry) ?? new Set();
}

function toEntry(def: Definition | LazyDriver): Entry {
  if (typeof def !== "object" || def === null) throw new TypeError("Invalid registration: expected a definition or a lazy entry");
  const kind = (def as { kind?: unknown }).kind;
  if (kind !== "hypervisor" && kind !== "storage") {
    throw new TypeError(`Invalid registration: kind must be "hypervisor" or "storage", got ${JSON.stringify(kind)}`);
  }
  if ("load" in def && def.load !== undefined) {
    if (typeof def.load !== "function") throw new TypeError(`Invalid lazy ${KIND_TEXT[kind]}: load must be a function`);
    // Check the name and schemes now, with a stand-in open, so a bad lazy entry fails at registration.
    const probe = check({ ...def, open: () => Promise.reject(new Error("unreachable")) } as unknown as Definition);
    const load = def.load.bind(def) as () => Promise<Definition>;
    return { kind, name: probe.name, ...(probe.kind === "hypervisor" ? { schemes: probe.schemes } : {}), load };
  }
  const definition = check(def as Definition);
  return {
    kind,
    name: definition.name,
    ...(definition.kind === "hypervisor" ? { schemes: definition.schemes } : {}),
    definition,
  };
}

/** Validates a definition; keeps it as it is when already frozen (as `define*()` make them), else a frozen copy. */
function check(def: Definition): Definition {
  const checked = def.kind === "hypervisor" ? defineHypervisorDriver(def) : defineStorageBackend(def);
  const frozen = Object.isFrozen(def) && (def.kind !== "hypervisor" || Object.isFrozen(def.schemes));
  return frozen ? def : checked;
}

function loadEntry(entry: Entry): Promise<Definition> {
  if (entry.definition) return Promise.resolve(entry.definition);
  entry.loading ??= loadOnce(entry).then(
    (definition) => (entry.definition = definition),
    (error) => {
      entry.loading = undefined; // a failed import may succeed later (a file being written, a flaky disk)
      throw error;
    },
  );
  return entry.loading;
}

async function loadOnce(entry: Entry): Promise<Definition> {
  const what = `${KIND_TEXT[entry.kind]} "${entry.name}"`;
  let loaded: unknown;
  try {
    loaded = await entry.load!();
  } catch (error) {
    throw new VirtError("internal", `Cannot load ${what}: ${error instanceof Error ? error.message : String(error)}`, {
      driver: entry.name,
      cause: error,
    });
  }
  const got = loaded as Partial<Definition> | undefined;
  if (got?.kind !== entry.kind || got.name !== entry.name) {
    throw new VirtError(
      "internal",
      `Cannot load ${what}: it loaded ${got?.kind ?? "nothing"} "${got?.name ?? ""}" instead`,
      { driver: entry.name },
    );
  }
  const definition = check(got as Definition);
  if (definition.kind === "hypervisor" && !sameSet(definition.schemes, entry.schemes ?? [])) {
    throw new VirtError(
      "internal",
      `Cannot load ${what}: it serves schemes ${quoteList(definition.schemes)}, but was registered for ${quoteList(entry.schemes ?? [])}`,
      { driver: entry.name },
    );
  }
  return definition;
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x) => b.includes(x));
}

function quoteList(names: readonly string[]): string {
  return names.map((n) => `"${n}"`).join(", ");
}
