import { describe, expect, it } from "vitest";
import * as virtkit from "../mod.ts";
import {
  API_VERSION,
  connect,
  ConnectError,
  createDefaultRegistry,
  createRegistry,
  createVirtualClock,
  defineHypervisorDriver,
  MiB,
  NotFoundError,
  registerBuiltins,
} from "../mod.ts";
import type { Connection, Domain, HypervisorConnection, Registry } from "../mod.ts";
import { ConflictError } from "../core/errors.ts";

describe("mod.ts", () => {
  it("exports the public functions, constants and errors", () => {
    for (const name of [
      "connect",
      "createRegistry",
      "createDefaultRegistry",
      "registerBuiltins",
      "defineHypervisorDriver",
      "defineStorageBackend",
      "definePlugin",
      "createVirtualClock",
      "createRealClock",
      "parseUri",
      "KiB",
      "MiB",
      "GiB",
      "TiB",
      "parseBytes",
      "formatBytes",
      "VirtError",
      "NotFoundError",
      "UnsupportedError",
      "StateError",
      "ConflictError",
      "ConnectError",
      "CommandError",
      "JobError",
      "QmpError",
    ]) {
      expect(typeof (virtkit as Record<string, unknown>)[name], name).toBe("function");
    }
    expect(API_VERSION).toBe(1);
    expect(virtkit.TERMINAL_JOB_STATES).toEqual(["completed", "failed", "aborted"]);
    expect(virtkit.UNFINISHED_JOB_STATES).toEqual(["created", "running", "paused", "ready"]);
  });

  it("has no side effects at import: a new registry is empty", () => {
    expect(createRegistry().list()).toEqual([]);
  });
});

describe("createDefaultRegistry()", () => {
  it("holds the built-ins, not loaded until used", async () => {
    const registry = createDefaultRegistry();
    expect(registry.list()).toEqual([
      { kind: "hypervisor", name: "qemu", schemes: ["qemu"], loaded: false },
      { kind: "hypervisor", name: "remote", schemes: ["remote"], loaded: false },
      { kind: "hypervisor", name: "test", schemes: ["test"], loaded: false },
      { kind: "storage", name: "dir", loaded: false },
      { kind: "storage", name: "iscsi", loaded: false },
      { kind: "storage", name: "logical", loaded: false },
      { kind: "storage", name: "memory", loaded: false },
    ]);
    expect((await registry.hypervisorFor("test")).name).toBe("test");
    expect((await registry.storageBackend("memory")).name).toBe("memory");
    expect(registry.list().filter((entry) => entry.loaded).map((entry) => entry.name)).toEqual(["test", "memory"]);
    expect((await registry.hypervisorFor("qemu")).name).toBe("qemu");
    expect((await registry.hypervisorFor("remote")).name).toBe("remote");
    expect((await registry.storageBackend("dir")).name).toBe("dir");
    expect((await registry.storageBackend("logical")).name).toBe("logical");
    expect((await registry.storageBackend("iscsi")).name).toBe("iscsi");
    expect(registry.list().every((entry) => entry.loaded)).toBe(true);
  });

  it("returns a new registry each time", () => {
    expect(createDefaultRegistry()).not.toBe(createDefaultRegistry());
  });
});

describe("registerBuiltins()", () => {
  it("returns a function that removes the built-ins again", () => {
    const registry = createRegistry();
    const remove = registerBuiltins(registry);
    expect(registry.list().length).toBe(7);
    remove();
    expect(registry.list()).toEqual([]);
  });

  it("leaves nothing behind when a built-in's name is taken", () => {
    const registry = createRegistry();
    registry.register({ kind: "storage", name: "memory", load: () => Promise.reject(new Error("unused")) });
    expect(() => registerBuiltins(registry)).toThrow(ConflictError);
    expect(registry.list().map((e) => `${e.kind}:${e.name}`)).toEqual(["storage:memory"]);
  });
});

describe("connect()", () => {
  it("opens test:///default from the default registry", async () => {
    await using conn = await connect("test:///default", { clock: createVirtualClock() });
    expect(conn.driver).toBe("test");
    expect(conn.uri).toBe("test:///default");
    expect((await conn.domains.list()).map((d: Domain) => d.name)).toContain("test");
    expect(conn.testing).toBeDefined();
  });

  it("pulls the seeded thin disk on a virtual clock", async () => {
    const clock = createVirtualClock();
    await using conn = await connect("test:///default", { clock });
    const dom = await conn.domains.get("test");
    const completed = conn.events.next("job:completed");
    const job = await dom.blockPull("vda", { bandwidth: MiB(100) });
    expect((await dom.blockJob("vda"))?.id).toBe(job.id);
    await clock.runUntilIdle();
    await job.wait();
    expect((await completed).job.id).toBe(job.id);
    expect(await dom.blockJob("vda")).toBeUndefined();
  });

  it("throws NotFoundError for a scheme no built-in serves", async () => {
    const error = await connect("xen:///system").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NotFoundError);
    expect((error as Error).message).toBe('Cannot find driver "xen": registered schemes are "qemu", "remote", "test"');
  });

  it("uses options.registry instead of the built-ins", async () => {
    const registry: Registry = createRegistry();
    const opened: string[] = [];
    registry.register(defineHypervisorDriver({
      name: "mine",
      schemes: ["mine"],
      async open(uri): Promise<HypervisorConnection> {
        opened.push(uri.href);
        return {
          listDomains: async () => [],
          domainInfo: async (name) => Promise.reject(new NotFoundError("domain", name)),
          domainConfig: async (name) => Promise.reject(new NotFoundError("domain", name)),
          close: async () => {},
        };
      },
    }));
    const conn: Connection = await connect("mine:///x", { registry });
    expect(opened).toEqual(["mine:///x"]);
    await conn.close();
    await expect(connect("test:///default", { registry })).rejects.toBeInstanceOf(NotFoundError);
  });

  it("wraps a driver's failure to open in ConnectError", async () => {
    const registry = createRegistry();
    registry.register(defineHypervisorDriver({
      name: "broken",
      schemes: ["broken"],
      open: () => Promise.reject(new Error("socket gone")),
    }));
    const error = await connect("broken:///", { registry }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectError);
    expect(((error as ConnectError).cause as Error).message).toBe("socket gone");
  });
});
