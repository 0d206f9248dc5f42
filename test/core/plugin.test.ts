import { describe, expect, it } from "vitest";
import { defineStorageBackend } from "../../core/storage_backend.ts";
import { ConflictError, StateError, UnsupportedError } from "../../core/errors.ts";
import { API_VERSION, definePlugin, type PluginHost } from "../../core/plugin.ts";
import { connectListenersOf, createRegistry } from "../../core/registry.ts";

const backend = (name: string) => defineStorageBackend({ name, open: async () => Promise.reject(new Error("unused")) });

describe("API_VERSION", () => {
  it("is the integer 1", () => {
    expect(API_VERSION).toBe(1);
  });
});

describe("definePlugin()", () => {
  it("freezes the definition", () => {
    const setup = () => {};
    const plugin = definePlugin({ name: "acme-san", apiVersion: 1, setup });
    expect(plugin).toEqual({ name: "acme-san", apiVersion: 1, setup });
    expect(Object.isFrozen(plugin)).toBe(true);
  });

  it.each([
    { what: "a bad name", def: { name: "Acme", apiVersion: 1, setup() {} }, error: TypeError },
    { what: "no name", def: { apiVersion: 1, setup() {} }, error: TypeError },
    { what: "no setup", def: { name: "acme", apiVersion: 1 }, error: TypeError },
    { what: "apiVersion 0", def: { name: "acme", apiVersion: 0, setup() {} }, error: RangeError },
    { what: "apiVersion 1.5", def: { name: "acme", apiVersion: 1.5, setup() {} }, error: RangeError },
    { what: 'apiVersion "1"', def: { name: "acme", apiVersion: "1", setup() {} }, error: RangeError },
  ])("throws for $what", ({ def, error }) => {
    expect(() => definePlugin(def as never)).toThrow(error);
  });
});

describe("Registry.use()", () => {
  it("runs setup with a host that registers into the registry", async () => {
    const registry = createRegistry();
    let seen: PluginHost | undefined;
    await registry.use(definePlugin({
      name: "acme",
      apiVersion: 1,
      setup(host) {
        seen = host;
        host.registry.register(backend("acme-san"));
      },
    }));
    expect(seen?.apiVersion).toBe(API_VERSION);
    expect(Object.keys(seen!).sort()).toEqual(["apiVersion", "onConnect", "registry"]);
    expect((await registry.storageBackend("acme-san")).name).toBe("acme-san");
  });

  it("rejects a plugin written for another API version, naming both versions, without running it", async () => {
    const registry = createRegistry();
    let ran = false;
    const plugin = definePlugin({ name: "future", apiVersion: 2, setup: () => void (ran = true) });
    const error = await registry.use(plugin).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnsupportedError);
    expect((error as Error).message).toMatch(/plugin "future" was written for plugin API version 2, this virtkit implements version 1/);
    expect(ran).toBe(false);
    // The name is free again: a fixed version of the plugin can be used.
    await registry.use(definePlugin({ name: "future", apiVersion: 1, setup() {} }));
  });

  it("returns a disposer that tears down, then removes what the plugin registered, once", async () => {
    const registry = createRegistry();
    const log: string[] = [];
    const dispose = await registry.use(definePlugin({
      name: "acme",
      apiVersion: 1,
      async setup(host) {
        host.registry.register(backend("acme-a"));
        host.registry.register(backend("acme-b"));
        host.onConnect(() => {});
        return async () => {
          log.push(`teardown sees ${registry.list().length} backends`);
        };
      },
    }));
    registry.register(backend("dir")); // not the plugin's: stays
    expect(connectListenersOf(registry).size).toBe(1);
    await Promise.all([dispose(), dispose()]);
    await dispose();
    expect(log).toEqual(["teardown sees 3 backends"]);
    expect(registry.list().map((e) => e.name)).toEqual(["dir"]);
    expect(connectListenersOf(registry).size).toBe(0);
  });

  it("removes the registrations even when teardown throws, and reports the error", async () => {
    const registry = createRegistry();
    const dispose = await registry.use(definePlugin({
      name: "acme",
      apiVersion: 1,
      setup(host) {
        host.registry.register(backend("acme"));
        return () => {
          throw new Error("teardown failed");
        };
      },
    }));
    await expect(dispose()).rejects.toThrow("teardown failed");
    expect(registry.list()).toEqual([]);
    await registry.use(definePlugin({ name: "acme", apiVersion: 1, setup() {} })); // name freed
  });

  it("rejects a second plugin of the same name with ConflictError", async () => {
    const registry = createRegistry();
    const dispose = await registry.use(definePlugin({ name: "acme", apiVersion: 1, setup() {} }));
    const error = await registry.use(definePlugin({ name: "acme", apiVersion: 1, setup() {} })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConflictError);
    expect((error as Error).message).toBe('Cannot use plugin "acme": a plugin of that name is in use');
    await dispose();
    await registry.use(definePlugin({ name: "acme", apiVersion: 1, setup() {} }));
  });

  it("undoes a failed setup: its registrations go, its error propagates, its name is free", async () => {
    const registry = createRegistry();
    registry.register(backend("dir"));
    const plugin = definePlugin({
      name: "acme",
      apiVersion: 1,
      setup(host) {
        host.registry.register(backend("acme"));
        host.onConnect(() => {});
        host.registry.register(backend("dir")); // conflicts with the built-in
      },
    });
    await expect(registry.use(plugin)).rejects.toBeInstanceOf(ConflictError);
    expect(registry.list().map((e) => e.name)).toEqual(["dir"]);
    expect(connectListenersOf(registry).size).toBe(0);
    await registry.use(definePlugin({ name: "acme", apiVersion: 1, setup() {} }));
  });

  it("rejects a setup that returns something other than a teardown function", async () => {
    const registry = createRegistry();
    const plugin = definePlugin({
      name: "acme",
      apiVersion: 1,
      setup: ((host: PluginHost) => {
        host.registry.register(backend("acme"));
        return 42;
      }) as never,
    });
    await expect(registry.use(plugin)).rejects.toThrow('Invalid plugin "acme": setup must return nothing or a teardown function');
    expect(registry.list()).toEqual([]);
  });

  it("refuses registrations through the host once the plugin is removed", async () => {
    const registry = createRegistry();
    let host: PluginHost | undefined;
    const dispose = await registry.use(definePlugin({ name: "acme", apiVersion: 1, setup: (h) => void (host = h) }));
    await dispose();
    expect(() => host!.registry.register(backend("late"))).toThrow(StateError);
    expect(() => host!.onConnect(() => {})).toThrow(StateError);
    expect(registry.list()).toEqual([]);
  });

  it("checks plugins that were not made with definePlugin()", async () => {
    const registry = createRegistry();
    await expect(registry.use({ name: "Bad Name", apiVersion: 1, setup() {} })).rejects.toBeInstanceOf(TypeError);
    await expect(registry.use(null as never)).rejects.toBeInstanceOf(TypeError);
  });

  it("onConnect() rejects a listener that is not a function", async () => {
    const registry = createRegistry();
    const plugin = definePlugin({ name: "acme", apiVersion: 1, setup: (host) => void host.onConnect(42 as never) });
    await expect(registry.use(plugin)).rejects.toBeInstanceOf(TypeError);
  });
});
