import { describe, expect, it } from "vitest";
import { defineHypervisorDriver } from "../../core/driver.ts";
import { defineStorageBackend } from "../../core/storage_backend.ts";
import type { HypervisorConnection, HypervisorDriverDefinition } from "../../core/driver.ts";
import type { StorageBackendDefinition } from "../../core/storage_backend.ts";
import { ConflictError, NotFoundError, VirtError } from "../../core/errors.ts";
import { createRegistry, type DriverKind, type LazyDriver } from "../../core/registry.ts";

const hypervisor = (name: string, schemes: string[] = [name]): HypervisorDriverDefinition =>
  defineHypervisorDriver({
    name,
    schemes,
    open: async (): Promise<HypervisorConnection> => {
      throw new Error("not opened in these tests");
    },
  });

const backend = (name: string): StorageBackendDefinition =>
  defineStorageBackend({ name, open: async () => Promise.reject(new Error("not opened in these tests")) });

/** A lazy entry that counts its loads. */
function lazy(entry: { kind: DriverKind; name: string; schemes?: string[] }, def: HypervisorDriverDefinition | StorageBackendDefinition) {
  let loads = 0;
  return {
    get loads() {
      return loads;
    },
    entry: { ...entry, load: async () => (loads++, def) } as LazyDriver,
  };
}

describe("createRegistry()", () => {
  it("starts empty", async () => {
    const registry = createRegistry();
    expect(registry.list()).toEqual([]);
    await expect(registry.hypervisorFor("test")).rejects.toThrow('Cannot find driver "test": no hypervisor drivers are registered');
    await expect(registry.storageBackend("dir")).rejects.toThrow('Cannot find backend "dir": no storage backends are registered');
  });

  it("finds a hypervisor driver by any of its schemes, case-insensitively", async () => {
    const registry = createRegistry();
    registry.register(hypervisor("qemu", ["qemu", "kvm"]));
    expect((await registry.hypervisorFor("kvm")).name).toBe("qemu");
    expect((await registry.hypervisorFor("QEMU")).name).toBe("qemu");
  });

  it("finds a storage backend by name", async () => {
    const registry = createRegistry();
    const dir = backend("dir");
    registry.register(dir);
    expect(await registry.storageBackend("dir")).toBe(dir);
  });

  it("lists hypervisors first, each kind sorted by name", () => {
    const registry = createRegistry();
    registry.register(backend("memory"));
    registry.register(hypervisor("test"));
    registry.register(backend("dir"));
    registry.register(hypervisor("qemu"));
    expect(registry.list().map((e) => `${e.kind}:${e.name}`)).toEqual([
      "hypervisor:qemu",
      "hypervisor:test",
      "storage:dir",
      "storage:memory",
    ]);
    expect(registry.list("storage").map((e) => e.name)).toEqual(["dir", "memory"]);
    expect(registry.list("hypervisor")[0]).toEqual({ kind: "hypervisor", name: "qemu", schemes: ["qemu"], loaded: true });
    expect(() => registry.list("network" as "storage")).toThrow(TypeError);
  });

  it("lists what is registered when a backend is missing", async () => {
    const registry = createRegistry();
    registry.register(backend("memory"));
    registry.register(backend("dir"));
    const error = await registry.storageBackend("zfs").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NotFoundError);
    expect((error as NotFoundError).message).toBe('Cannot find backend "zfs": registered backends are "dir", "memory"');
    expect((error as NotFoundError).objectType).toBe("backend");
  });

  it("lists the registered schemes when no driver serves a scheme", async () => {
    const registry = createRegistry();
    registry.register(hypervisor("test"));
    registry.register(hypervisor("qemu", ["qemu", "kvm"]));
    const error = await registry.hypervisorFor("xen").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NotFoundError);
    expect((error as Error).message).toBe('Cannot find driver "xen": registered schemes are "kvm", "qemu", "test"');
  });

  it("rejects a duplicate name with ConflictError", () => {
    const registry = createRegistry();
    registry.register(hypervisor("qemu"));
    expect(() => registry.register(hypervisor("qemu", ["qemu2"]))).toThrow(ConflictError);
    registry.register(backend("dir"));
    expect(() => registry.register(backend("dir"))).toThrow('Cannot register storage backend "dir"');
  });

  it("rejects a scheme another driver serves, naming that driver", () => {
    const registry = createRegistry();
    registry.register(hypervisor("qemu", ["qemu", "kvm"]));
    expect(() => registry.register(hypervisor("kvmtool", ["kvm"]))).toThrow(
      'Cannot register hypervisor driver "kvmtool": URI scheme "kvm" is served by "qemu"',
    );
    // Nothing of the rejected driver stays behind.
    expect(registry.list().map((e) => e.name)).toEqual(["qemu"]);
  });

  it("keeps hypervisor and storage names apart", () => {
    const registry = createRegistry();
    registry.register(hypervisor("test"));
    registry.register(backend("test"));
    expect(registry.list().length).toBe(2);
  });

  it("register() returns a disposer that removes the entry and its schemes, once", async () => {
    const registry = createRegistry();
    const remove = registry.register(hypervisor("qemu", ["qemu", "kvm"]));
    remove();
    expect(registry.list()).toEqual([]);
    await expect(registry.hypervisorFor("kvm")).rejects.toBeInstanceOf(NotFoundError);
    const again = hypervisor("qemu", ["qemu", "kvm"]);
    registry.register(again);
    remove(); // the old disposer must not remove the new registration
    expect(await registry.hypervisorFor("kvm")).toBe(again);
  });

  it.each([
    { what: "null", def: null },
    { what: "no kind", def: { name: "x", open: async () => ({}) } },
    { what: "an unknown kind", def: { kind: "network", name: "x", open: async () => ({}) } },
    { what: "a bad name", def: { kind: "storage", name: "Dir", open: async () => ({}) } },
    { what: "no open", def: { kind: "storage", name: "dir" } },
    { what: "a hypervisor without schemes", def: { kind: "hypervisor", name: "qemu", open: async () => ({}) } },
    { what: "a lazy entry whose load is no function", def: { kind: "storage", name: "dir", load: 1 } },
    { what: "a lazy hypervisor without schemes", def: { kind: "hypervisor", name: "qemu", load: async () => ({}) } },
  ])("register() throws TypeError for $what", ({ def }) => {
    expect(() => createRegistry().register(def as unknown as LazyDriver)).toThrow(TypeError);
  });

  it("hypervisorFor() and storageBackend() throw TypeError for a non-string", async () => {
    const registry = createRegistry();
    await expect(registry.hypervisorFor(1 as unknown as string)).rejects.toBeInstanceOf(TypeError);
    await expect(registry.storageBackend(undefined as unknown as string)).rejects.toBeInstanceOf(TypeError);
  });
});

describe("createRegistry() with lazy entries", () => {
  it("loads a lazy driver once, on first use, even for concurrent look-ups", async () => {
    const registry = createRegistry();
    const def = hypervisor("qemu", ["qemu", "kvm"]);
    const counter = lazy({ kind: "hypervisor", name: "qemu", schemes: ["qemu", "kvm"] }, def);
    registry.register(counter.entry);
    expect(counter.loads).toBe(0);
    expect(registry.list()).toEqual([{ kind: "hypervisor", name: "qemu", schemes: ["qemu", "kvm"], loaded: false }]);
    const [a, b] = await Promise.all([registry.hypervisorFor("qemu"), registry.hypervisorFor("kvm")]);
    expect(await registry.hypervisorFor("qemu")).toBe(a);
    expect(a).toBe(b);
    expect(a.name).toBe("qemu");
    expect(counter.loads).toBe(1);
    expect(registry.list()[0]?.loaded).toBe(true);
  });

  it("loads a lazy storage backend once", async () => {
    const registry = createRegistry();
    const counter = lazy({ kind: "storage", name: "lvm" }, backend("lvm"));
    registry.register(counter.entry);
    await registry.storageBackend("lvm");
    await registry.storageBackend("lvm");
    expect(counter.loads).toBe(1);
  });

  it("rejects a loaded definition with another name or kind", async () => {
    const registry = createRegistry();
    registry.register({ kind: "storage", name: "lvm", load: async () => backend("logical") });
    registry.register({ kind: "hypervisor", name: "qemu", schemes: ["qemu"], load: async () => backend("qemu") as never });
    const wrongName = await registry.storageBackend("lvm").catch((e: unknown) => e);
    expect(wrongName).toBeInstanceOf(VirtError);
    expect((wrongName as Error).message).toBe('Cannot load storage backend "lvm": it loaded storage "logical" instead');
    await expect(registry.hypervisorFor("qemu")).rejects.toThrow('it loaded storage "qemu" instead');
  });

  it("rejects a loaded hypervisor driver whose schemes differ from the registered ones", async () => {
    const registry = createRegistry();
    registry.register({ kind: "hypervisor", name: "qemu", schemes: ["qemu"], load: async () => hypervisor("qemu", ["kvm"]) });
    await expect(registry.hypervisorFor("qemu")).rejects.toThrow('it serves schemes "kvm", but was registered for "qemu"');
  });

  it("reports a failed load with the cause, and tries again next time", async () => {
    const registry = createRegistry();
    const cause = new Error("Cannot find module ./iscsi/mod.ts");
    let attempts = 0;
    registry.register({
      kind: "storage",
      name: "iscsi",
      load: async () => {
        attempts++;
        if (attempts === 1) throw cause;
        return backend("iscsi");
      },
    });
    const error = await registry.storageBackend("iscsi").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(VirtError);
    expect((error as VirtError).code).toBe("internal");
    expect((error as VirtError).cause).toBe(cause);
    expect((error as Error).message).toBe('Cannot load storage backend "iscsi": Cannot find module ./iscsi/mod.ts');
    expect(registry.list()[0]?.loaded).toBe(false);
    expect((await registry.storageBackend("iscsi")).name).toBe("iscsi");
    expect(attempts).toBe(2);
  });

  it("counts a lazy entry's name and schemes for conflicts before it is loaded", () => {
    const registry = createRegistry();
    registry.register({ kind: "hypervisor", name: "qemu", schemes: ["qemu"], load: async () => hypervisor("qemu") });
    expect(() => registry.register(hypervisor("other", ["qemu"]))).toThrow(ConflictError);
    expect(() => registry.register({ kind: "hypervisor", name: "qemu", schemes: ["q"], load: async () => hypervisor("qemu") }))
      .toThrow(ConflictError);
  });
});
