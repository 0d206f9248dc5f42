import { describe, expect, it } from "vitest";
import { createVirtualClock } from "../../core/clock.ts";
import { openConnection } from "../../core/connect.ts";
import { ConnectError, NotFoundError, StateError, type VirtError } from "../../core/errors.ts";
import { definePlugin } from "../../core/plugin.ts";
import { createRegistry, type Registry } from "../../core/registry.ts";
import { createFakeBackend, createFakeHypervisor, domainConfig, type FakeHypervisorOptions } from "./_fake_hypervisor.ts";

function setup(options: FakeHypervisorOptions = {}) {
  const registry = createRegistry();
  const hypervisor = createFakeHypervisor(options);
  const backend = createFakeBackend();
  registry.register(hypervisor.def);
  registry.register(backend.def);
  return { registry, sessions: hypervisor.sessions, opened: backend.opened };
}

async function failure(promise: Promise<unknown>): Promise<unknown> {
  return await promise.then(() => undefined, (error: unknown) => error);
}

describe("openConnection()", () => {
  it("opens the driver of the URI's scheme and builds the connection", async () => {
    const { registry, sessions } = setup({ seed: [domainConfig("web1")] });
    const clock = createVirtualClock();
    const conn = await openConnection("FAKE:///default?mode=x", { clock }, registry);
    expect(conn.uri).toBe("FAKE:///default?mode=x");
    expect(conn.driver).toBe("fake");
    expect(conn.clock).toBe(clock);
    expect(conn.testing).toBeUndefined();
    expect("testing" in conn).toBe(false);
    expect((await conn.domains.list()).map((d) => d.name)).toEqual(["web1"]);
    const [session] = sessions;
    expect(session!.uri).toMatchObject({ scheme: "fake", path: "/default" });
    expect(session!.uri.params.get("mode")).toBe("x");
    expect(session!.ctx.clock).toBe(clock);
    expect(session!.ctx.bus).toBe(conn.events);
    expect(session!.ctx.stateDir).toBeUndefined();
    expect(Object.isFrozen(session!.ctx)).toBe(true);
    await conn.close();
  });

  it("gives the driver's events to conn.events", async () => {
    const { registry } = setup();
    const conn = await openConnection("fake:///", undefined, registry);
    const seen: string[] = [];
    conn.events.on("domain:*", (event) => seen.push(`${event.type} ${event.domain}`));
    await conn.domains.define(domainConfig("web1"));
    expect(seen).toEqual(["domain:defined web1"]);
    await conn.close();
  });

  it("takes the state directory from the options, else from the URI", async () => {
    const { registry, sessions } = setup();
    await (await openConnection("fake:///?stateDir=%2Fvar%2Fx", {}, registry)).close();
    await (await openConnection("fake:///?stateDir=%2Fvar%2Fx", { stateDir: "/opt/y" }, registry)).close();
    expect(sessions.map((s) => s.ctx.stateDir)).toEqual(["/var/x", "/opt/y"]);
  });

  it("defines and starts the driver's initial pools through the registry's backends", async () => {
    const { registry, opened } = setup({
      initialPools: [
        { config: { name: "seed-a", type: "fake" }, active: true },
        { config: { name: "seed-b", type: "fake" }, active: false },
      ],
    });
    const conn = await openConnection("fake:///", {}, registry);
    const pools = await conn.pools.list();
    expect(pools.map((p) => p.name).sort()).toEqual(["seed-a", "seed-b"]);
    expect((await (await conn.pools.get("seed-a")).info()).state).toBe("active");
    expect((await (await conn.pools.get("seed-b")).info()).state).toBe("inactive");
    expect(opened).toContain("seed-a");
    await conn.close();
  });

  it("exposes the driver's testing controls only when it has them", async () => {
    const { registry } = setup({ testing: true });
    const conn = await openConnection("fake:///", {}, registry);
    expect(typeof conn.testing?.failNext).toBe("function");
    await conn.close();
  });

  it("exposes only list() and get() of the job manager", async () => {
    const { registry } = setup();
    const conn = await openConnection("fake:///", {}, registry);
    expect(Object.keys(conn.jobs).sort()).toEqual(["get", "list"]);
    expect(await conn.jobs.list()).toEqual([]);
    await expect(conn.jobs.get("job-404")).rejects.toBeInstanceOf(NotFoundError);
    await conn.close();
  });

  it("throws NotFoundError listing the registered schemes for an unknown scheme", async () => {
    const { registry } = setup();
    const error = await failure(openConnection("xen:///system", {}, registry));
    expect(error).toBeInstanceOf(NotFoundError);
    expect((error as Error).message).toBe('Cannot find driver "xen": registered schemes are "fake"');
  });

  it("throws TypeError for a malformed URI, before looking for a driver", async () => {
    const { registry } = setup();
    await expect(openConnection("fake:/default", {}, registry)).rejects.toBeInstanceOf(TypeError);
    await expect(openConnection("", {}, registry)).rejects.toBeInstanceOf(TypeError);
  });

  it.each([
    { what: "options that are not an object", options: 42, error: TypeError },
    { what: "a clock without sleep()", options: { clock: { now: () => 0 } }, error: TypeError },
    { what: "an empty stateDir", options: { stateDir: "" }, error: TypeError },
    { what: "a signal that is not an AbortSignal", options: { signal: {} }, error: TypeError },
    { what: "eventBufferSize 0", options: { eventBufferSize: 0 }, error: RangeError },
    { what: "progressIntervalMs -1", options: { progressIntervalMs: -1 }, error: RangeError },
    { what: "progressIntervalMs NaN", options: { progressIntervalMs: NaN }, error: RangeError },
    { what: "budgetBytesPerSecond 1.5", options: { budgetBytesPerSecond: 1.5 }, error: RangeError },
  ])("throws for $what, without opening the driver", async ({ options, error }) => {
    const { registry, sessions } = setup();
    await expect(openConnection("fake:///", options as never, registry)).rejects.toBeInstanceOf(error);
    expect(sessions).toEqual([]);
  });

  it("wraps a driver's open failure in ConnectError with the cause and the driver", async () => {
    const cause = new Error("qemu-system-x86_64: not found");
    const { registry } = setup({ openError: cause });
    const error = await failure(openConnection("fake:///system", {}, registry));
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).cause).toBe(cause);
    expect((error as ConnectError).driver).toBe("fake");
    expect((error as Error).message).toBe('Cannot connect to "fake:///system": qemu-system-x86_64: not found');
  });

  it("passes a driver's own ConnectError through unchanged", async () => {
    const own = new ConnectError("Cannot reach the QMP socket", { cause: new Error("ECONNREFUSED") });
    const { registry } = setup({ openError: own });
    expect(await failure(openConnection("fake:///", {}, registry))).toBe(own);
  });

  it("closes the driver when opening fails after it was opened", async () => {
    const { registry, sessions } = setup({ initialPoolsError: new Error("seed broken") });
    const error = await failure(openConnection("fake:///", {}, registry));
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as Error).message).toMatch(/seed broken/);
    expect(sessions[0]?.closeCount).toBe(1);
  });

  it("wraps a lazy driver that fails to load in ConnectError", async () => {
    const registry = createRegistry();
    const cause = new Error("module not found");
    registry.register({ kind: "hypervisor", name: "gone", schemes: ["gone"], load: () => Promise.reject(cause) });
    const error = await failure(openConnection("gone:///", {}, registry));
    expect(error).toBeInstanceOf(ConnectError);
    expect(((error as ConnectError).cause as VirtError).cause).toBe(cause);
  });

  it("rejects with the signal's own reason when already aborted", async () => {
    const { registry, sessions } = setup();
    const reason = new DOMException("stop", "AbortError");
    expect(await failure(openConnection("fake:///", { signal: AbortSignal.abort(reason) }, registry))).toBe(reason);
    expect(sessions).toEqual([]);
  });

  it("rejects with the signal's reason when aborted during open, and closes the late connection", async () => {
    let release!: () => void;
    const controller = new AbortController();
    const { registry, sessions } = setup({
      onOpenStart: () => controller.abort(),
      openGate: new Promise<void>((resolve) => (release = resolve)),
    });
    const opening = failure(openConnection("fake:///", { signal: controller.signal }, registry));
    expect(await opening).toBe(controller.signal.reason);
    expect(sessions).toEqual([]); // the driver has not finished opening yet
    release();
    const deadline = Date.now() + 5000;
    while (sessions[0]?.closeCount !== 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 1));
    expect(sessions[0]?.closeCount).toBe(1);
  });

  it("close() is idempotent and releases the driver once", async () => {
    const { registry, sessions } = setup();
    const conn = await openConnection("fake:///", {}, registry);
    const first = conn.close();
    expect(conn.close()).toBe(first);
    await first;
    await conn.close();
    expect(sessions[0]?.closeCount).toBe(1);
  });

  it("refuses domain operations once closed", async () => {
    const { registry } = setup({ seed: [domainConfig("web1")] });
    const conn = await openConnection("fake:///", {}, registry);
    const dom = await conn.domains.get("web1");
    await conn.close();
    await expect(conn.domains.list()).rejects.toBeInstanceOf(StateError);
    await expect(dom.start()).rejects.toThrow('Cannot start domain "web1": connection "fake:///" is closed');
  });

  it("closes through Symbol.asyncDispose (await using)", async () => {
    const { registry, sessions } = setup();
    {
      await using conn = await openConnection("fake:///", {}, registry);
      expect(conn.driver).toBe("fake");
    }
    expect(sessions[0]?.closeCount).toBe(1);
  });

  it("registry.connect() opens with that registry", async () => {
    const { registry, sessions } = setup();
    const conn = await registry.connect("fake:///", { registry: createRegistry() });
    expect(sessions.length).toBe(1);
    await conn.close();
  });
});

describe("openConnection() with plugins", () => {
  async function withPlugin(registry: Registry, listener: Parameters<Parameters<typeof definePlugin>[0]["setup"]>[0]["onConnect"] extends (l: infer L) => unknown ? L : never) {
    return await registry.use(definePlugin({ name: "probe", apiVersion: 1, setup: (host) => void host.onConnect(listener) }));
  }

  it("calls connect listeners with the connection and runs their cleanup on close, before the driver closes", async () => {
    const { registry, sessions } = setup();
    const log: string[] = [];
    await withPlugin(registry, (conn) => {
      log.push(`attached to ${conn.uri}`);
      return () => void log.push(`detached, driver closed ${sessions[0]!.closeCount} times`);
    });
    const conn = await openConnection("fake:///", {}, registry);
    expect(log).toEqual(["attached to fake:///"]);
    await conn.close();
    expect(log).toEqual(["attached to fake:///", "detached, driver closed 0 times"]);
  });

  it("fails the opening with ConnectError when a listener throws, and closes the driver", async () => {
    const { registry, sessions } = setup();
    await withPlugin(registry, () => {
      throw new Error("audit log unavailable");
    });
    const error = await failure(openConnection("fake:///", {}, registry));
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as Error).message).toMatch(/audit log unavailable/);
    expect(sessions[0]?.closeCount).toBe(1);
  });

  it("detaches a removed plugin from open connections, running each cleanup once", async () => {
    const { registry } = setup();
    const log: string[] = [];
    const dispose = await withPlugin(registry, (conn) => {
      const off = conn.events.on("domain:*", (event) => log.push(`${conn.uri} ${event.type}`));
      return () => {
        off();
        log.push(`detached ${conn.uri}`);
      };
    });
    const a = await openConnection("fake:///a", {}, registry);
    const b = await openConnection("fake:///b", {}, registry);
    await a.domains.define(domainConfig("web1"));
    await b.close();
    await dispose();
    await a.domains.define(domainConfig("web2"));
    await a.close();
    expect(log).toEqual(["fake:///a domain:defined", "detached fake:///b", "detached fake:///a"]);
  });

  it("stops calling a plugin's listener once the plugin is removed", async () => {
    const { registry } = setup();
    let calls = 0;
    const dispose = await withPlugin(registry, () => void calls++);
    await (await openConnection("fake:///", {}, registry)).close();
    await dispose();
    await (await openConnection("fake:///", {}, registry)).close();
    expect(calls).toBe(1);
  });
});
