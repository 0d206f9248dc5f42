/**
 * The built-in drivers, listed explicitly. Importing this module registers nothing; call
 * {@linkcode registerBuiltins} on a registry. Every built-in is registered lazily, so a driver's code is
 * imported only when a connection or a pool first needs it.
 *
 * @example
 * ```ts
 * import { createRegistry } from "virtkit";
 * import { registerBuiltins } from "virtkit";
 * const registry = createRegistry();
 * registerBuiltins(registry);
 * if (!registry.list("hypervisor").some((entry) => entry.name === "test")) throw new Error("unexpected");
 * ```
 *
 * @module
 */
import type { LazyDriver, Registry } from "../core/registry.ts";

/** The built-ins, in the order they are registered. */
const BUILTINS: readonly LazyDriver[] = Object.freeze([
  // Hypervisor drivers, by URI scheme.
  {
    kind: "hypervisor",
    name: "test",
    schemes: ["test"],
    load: () => import("./test/mod.ts").then((m) => m.testDriver),
  },
  {
    kind: "hypervisor",
    name: "qemu",
    schemes: ["qemu"],
    load: () => import("./qemu/mod.ts").then((m) => m.qemuDriver),
  },
  {
    // libvirt's remote protocol: core sends every URI with a transport (`qemu+unix`, `test+tcp`) here.
    kind: "hypervisor",
    name: "remote",
    schemes: ["remote"],
    load: () => import("./remote/mod.ts").then((m) => m.remoteDriver),
  },

  // Storage backends, by pool type.
  {
    kind: "storage",
    name: "memory",
    load: () => import("./test/mod.ts").then((m) => m.memoryBackend),
  },
  {
    kind: "storage",
    name: "dir",
    load: () => import("./dir/mod.ts").then((m) => m.dirBackend),
  },
  {
    kind: "storage",
    name: "logical",
    load: () => import("./lvm/mod.ts").then((m) => m.lvmBackend),
  },
  { kind: "storage", name: "iscsi", load: () => import("./iscsi/mod.ts").then((m) => m.iscsiBackend) },
]);

/**
 * Registers every built-in driver and storage backend on `registry`, lazily.
 *
 * @param registry The registry to fill (usually a fresh `createRegistry()`).
 * @returns A function that removes them all again.
 * @throws {ConflictError} When one of their names or schemes is already registered; nothing stays
 *   registered in that case.
 * @example
 * ```ts
 * import { createRegistry } from "virtkit";
 * import { registerBuiltins } from "virtkit";
 * const registry = createRegistry();
 * const remove = registerBuiltins(registry);
 * if (registry.list("storage").length === 0) throw new Error("unexpected");
 * remove();
 * if (registry.list().length !== 0) throw new Error("unexpected");
 * ```
 */
export function registerBuiltins(registry: Pick<Registry, "register">): () => void {
  const removers: Array<() => void> = [];
  const removeAll = () => {
    for (const remove of removers.splice(0).reverse()) remove();
  };
  try {
    for (const builtin of BUILTINS) removers.push(registry.register(builtin));
  } catch (error) {
    removeAll();
    throw error;
  }
  return removeAll;
}
