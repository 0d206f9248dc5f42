import { describe, expect, it } from "vitest";
import { ConflictError, NotFoundError, StateError, UnsupportedError } from "../../../core/errors.ts";
import { createMemoryPoolConfigStore, type SavedPool } from "../../../core/storage/pool_config_store.ts";
import type { PoolConfig } from "../../../core/storage_pool.ts";
import { MiB } from "../../../core/units.ts";
import { harness, memoryBackend } from "./_memory_backend.ts";

const images: PoolConfig = { name: "images", type: "mem" };

describe("pools: define and lifecycle", () => {
  it("define leaves the pool inactive with zero sizes and emits pool:defined", async () => {
    const h = harness();
    const pool = await h.manager.pools.define(images);
    expect(pool.name).toBe("images");
    expect(pool.type).toBe("mem");
    expect(await pool.info()).toEqual({ state: "inactive", capacityBytes: 0, allocationBytes: 0, availableBytes: 0, autostart: false });
    expect(h.seen("pool:")).toEqual(["pool:defined images"]);
    // Nothing is opened before build, delete or start needs the backend.
    expect(h.backend.calls).toEqual([]);
  });

  it("build, start, refresh, stop, delete, undefine follow libvirt's states and emit one event each", async () => {
    const h = harness();
    const pool = await h.manager.pools.define({ name: "images", type: "mem", capacityBytes: MiB(64) } as PoolConfig);
    await pool.build();
    await pool.start();
    expect(await pool.info()).toEqual({ state: "active", capacityBytes: MiB(64), allocationBytes: 0, availableBytes: MiB(64), autostart: false });
    await pool.refresh();
    await pool.stop();
    await pool.delete();
    await pool.undefine();
    expect(h.seen("pool:")).toEqual([
      "pool:defined images",
      "pool:built images",
      "pool:started images",
      "pool:refreshed images",
      "pool:stopped images",
      "pool:deleted images",
      "pool:undefined images",
    ]);
    expect(h.backend.calls).toEqual([
      "images:build", "images:start", "images:refresh", "images:sizes", "images:refresh", "images:stop", "images:close", "images:delete", "images:close",
    ]);
    await expect(h.manager.pools.get("images")).rejects.toBeInstanceOf(NotFoundError);
    await expect(pool.info()).rejects.toBeInstanceOf(NotFoundError);
  });

  it("refuses verbs in the wrong state with StateError naming the pool", async () => {
    const h = harness();
    const pool = await h.manager.pools.define(images);
    await expect(pool.stop()).rejects.toThrow('Cannot stop pool "images": it is not active');
    await expect(pool.refresh()).rejects.toBeInstanceOf(StateError);
    await pool.start();
    const again = await pool.start().catch((e: unknown) => e);
    expect(again).toBeInstanceOf(StateError);
    expect((again as StateError).message).toBe('Cannot start pool "images": it is already active');
    expect((again as StateError).state).toBe("active");
    await expect(pool.build()).rejects.toThrow('Cannot build pool "images": it is active');
    await expect(pool.delete()).rejects.toThrow('Cannot delete pool "images": it is active');
    await expect(pool.undefine()).rejects.toThrow('Cannot undefine pool "images": it is active');
    expect((await pool.info()).state).toBe("active");
  });

  it("volume calls on an inactive pool throw StateError", async () => {
    const h = harness();
    const pool = await h.manager.pools.define(images);
    await expect(pool.volumes.list()).rejects.toThrow('Cannot list volumes: pool "images" is inactive');
    await expect(pool.volumes.create({ name: "a", capacityBytes: MiB(1) })).rejects.toBeInstanceOf(StateError);
    await expect(pool.volumes.get("a")).rejects.toBeInstanceOf(StateError);
    await expect(h.manager.access.openVolume("images", "a", { write: false })).rejects.toBeInstanceOf(StateError);
  });

  it("data survives stop and start (the backend is re-opened)", async () => {
    const h = harness();
    const pool = await h.manager.pools.create(images);
    await pool.volumes.create({ name: "a", capacityBytes: MiB(1) });
    await pool.stop();
    await pool.start();
    expect((await pool.volumes.list()).map((v) => v.name)).toEqual(["a"]);
  });

  it("config returns a copy", async () => {
    const h = harness();
    const pool = await h.manager.pools.define(images);
    const config = await pool.config();
    expect(config).toEqual(images);
    (config as { name: string }).name = "changed";
    expect((await pool.config()).name).toBe("images");
  });

  it("lists pools in definition order and gets them by name", async () => {
    const h = harness();
    await h.manager.pools.define({ name: "zeta", type: "mem" });
    await h.manager.pools.define({ name: "alpha", type: "mem" });
    expect((await h.manager.pools.list()).map((p) => p.name)).toEqual(["zeta", "alpha"]);
    expect((await h.manager.pools.get("alpha")).name).toBe("alpha");
    await expect(h.manager.pools.get("nope")).rejects.toThrow('Cannot find pool "nope"');
  });
});

describe("pools: bad input", () => {
  it.each([
    { what: "null", config: null },
    { what: "no name", config: { type: "mem" } },
    { what: "an empty name", config: { name: "", type: "mem" } },
    { what: "a slash in the name", config: { name: "a/b", type: "mem" } },
    { what: "the name ..", config: { name: "..", type: "mem" } },
    { what: "a 256-character name", config: { name: "x".repeat(256), type: "mem" } },
    { what: "an empty type", config: { name: "ok", type: "" } },
    { what: "no type", config: { name: "ok" } },
    { what: "a field the backend rejects", config: { name: "ok", type: "mem", capacityBytes: "big" } },
  ])("define with $what throws TypeError", async ({ config }) => {
    const h = harness();
    await expect(h.manager.pools.define(config as PoolConfig)).rejects.toBeInstanceOf(TypeError);
    expect(await h.manager.pools.list()).toEqual([]);
    expect(h.events).toEqual([]);
  });

  it("an unknown type is the registry's NotFoundError", async () => {
    const h = harness();
    await expect(h.manager.pools.define({ name: "x", type: "ceph" })).rejects.toBeInstanceOf(NotFoundError);
  });

  it("a taken name is a ConflictError", async () => {
    const h = harness();
    await h.manager.pools.define(images);
    await expect(h.manager.pools.define(images)).rejects.toBeInstanceOf(ConflictError);
    expect(h.seen("pool:")).toEqual(["pool:defined images"]);
  });

  it("get checks the name", async () => {
    const h = harness();
    await expect(h.manager.pools.get("../x")).rejects.toBeInstanceOf(TypeError);
    await expect(h.manager.pools.get(42 as unknown as string)).rejects.toBeInstanceOf(TypeError);
  });

  it("an aborted signal rejects with its own reason", async () => {
    const h = harness();
    const pool = await h.manager.pools.define(images);
    const controller = new AbortController();
    const reason = new Error("stop it");
    controller.abort(reason);
    await expect(pool.start({ signal: controller.signal })).rejects.toBe(reason);
    expect((await pool.info()).state).toBe("inactive");
  });
});

describe("pools: backend capabilities and failures", () => {
  it("build without a backend build step succeeds (libvirt: nothing to build)", async () => {
    const backend = memoryBackend();
    backend.omit.add("build");
    const h = harness({ backend });
    const pool = await h.manager.pools.define(images);
    await pool.build();
    expect(h.seen("pool:built")).toEqual(["pool:built images"]);
  });

  it("delete without a backend delete is UnsupportedError naming the driver", async () => {
    const backend = memoryBackend();
    backend.omit.add("delete");
    const h = harness({ backend });
    const pool = await h.manager.pools.define(images);
    const error = await pool.delete().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnsupportedError);
    expect((error as UnsupportedError).driver).toBe("mem");
    expect((error as UnsupportedError).operation).toBe("delete");
  });

  it("a failing start or first refresh leaves the pool inactive with its backend closed", async () => {
    const h = harness();
    const pool = await h.manager.pools.define(images);
    h.backend.failNext.set("refresh", new Error("disk gone"));
    await expect(pool.start()).rejects.toThrow("disk gone");
    expect((await pool.info()).state).toBe("inactive");
    expect(h.backend.calls).toEqual(["images:start", "images:refresh", "images:stop", "images:close"]);
    expect(h.seen("pool:started")).toEqual([]);
    await pool.start();
    expect((await pool.info()).state).toBe("active");
  });

  it("a failing stop keeps the pool active", async () => {
    const h = harness();
    const pool = await h.manager.pools.create(images);
    h.backend.failNext.set("stop", new Error("busy device"));
    await expect(pool.stop()).rejects.toThrow("busy device");
    expect((await pool.info()).state).toBe("active");
  });

  it("create undoes the define when build or start fails", async () => {
    const h = harness();
    h.backend.failNext.set("build", new Error("mkdir failed"));
    await expect(h.manager.pools.create(images)).rejects.toThrow("mkdir failed");
    await expect(h.manager.pools.get("images")).rejects.toBeInstanceOf(NotFoundError);
    expect(h.seen("pool:")).toEqual(["pool:defined images", "pool:undefined images"]);
    h.backend.failNext.set("start", new Error("no such vg"));
    await expect(h.manager.pools.create(images)).rejects.toThrow("no such vg");
    expect(await h.manager.pools.list()).toEqual([]);
    const pool = await h.manager.pools.create(images);
    expect((await pool.info()).state).toBe("active");
  });

  it("lifecycle calls on one pool run one at a time", async () => {
    const h = harness();
    const pool = await h.manager.pools.define(images);
    const results = await Promise.allSettled([pool.start(), pool.start(), pool.stop()]);
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect((await pool.info()).state).toBe("inactive");
  });
});

describe("pools: persistence and seeds", () => {
  it("define and undefine save through the store; a new manager loads defined pools inactive", async () => {
    const store = createMemoryPoolConfigStore();
    const first = harness({ store });
    await first.manager.pools.define(images);
    await first.manager.pools.define({ name: "scratch", type: "mem" });
    expect((await store.load()).map((s) => s.config.name)).toEqual(["images", "scratch"]);
    await (await first.manager.pools.get("scratch")).undefine();
    expect(await store.load()).toEqual([{ config: images, autostart: false, active: false }]);
    await first.manager.close();
    const second = harness({ store, backend: first.backend });
    const pools = await second.manager.pools.list();
    expect(pools.map((p) => p.name)).toEqual(["images"]);
    expect(await pools[0]!.info()).toMatchObject({ state: "inactive", autostart: false });
    expect(second.seen("pool:")).toEqual([]);
  });

  it("a pool active when the manager closed is active in the next one; a stopped one is not", async () => {
    const store = createMemoryPoolConfigStore();
    const first = harness({ store });
    await first.manager.pools.create(images);
    await (await first.manager.pools.create({ name: "idle", type: "mem" })).stop();
    expect((await store.load()).map((s) => [s.config.name, s.active])).toEqual([["images", true], ["idle", false]]);
    await first.manager.close();
    // Closing the connection is not stopping the pool.
    expect((await store.load()).map((s) => s.active)).toEqual([true, false]);
    const second = harness({ store, backend: first.backend });
    const [restored, idle] = await second.manager.pools.list();
    expect((await restored!.info()).state).toBe("active");
    expect((await idle!.info()).state).toBe("inactive");
    expect(second.seen("pool:")).toEqual(["pool:started images"]);
    expect(second.events.find((e) => e.type === "pool:started")).toMatchObject({ pool: "images", reason: "restored" });
  });

  it("setAutostart is saved; a stopped autostart pool stays stopped until the host has booted", async () => {
    const store = createMemoryPoolConfigStore();
    const first = harness({ store });
    const pool = await first.manager.pools.create(images);
    await pool.setAutostart(true);
    expect((await pool.info()).autostart).toBe(true);
    await pool.stop();
    expect(await store.load()).toEqual([{ config: images, autostart: true, active: false }]);
    await first.manager.close();
    const sameBoot = harness({ store, backend: first.backend });
    expect((await (await sameBoot.manager.pools.get("images")).info()).state).toBe("inactive");
    await sameBoot.manager.close();
    // What a store that knows the boot id reports after a reboot.
    const rebooted = { load: async () => (await store.load()).map((p) => ({ ...p, hostRestarted: true })), save: store.save };
    const second = harness({ store: rebooted, backend: first.backend });
    const again = await second.manager.pools.get("images");
    expect(await again.info()).toMatchObject({ state: "active", autostart: true });
    expect(second.events.find((e) => e.type === "pool:started")).toMatchObject({ reason: "autostart" });
    await again.setAutostart(false);
    expect((await store.load())[0]!.autostart).toBe(false);
    await expect(again.setAutostart("yes" as unknown as boolean)).rejects.toBeInstanceOf(TypeError);
  });

  it("a pool whose backend cannot start it again comes back inactive with a start-failed event, saved so", async () => {
    const store = createMemoryPoolConfigStore();
    const first = harness({ store });
    await first.manager.pools.create(images);
    await first.manager.close();
    first.backend.failNext.set("start", new Error("directory is gone"));
    const second = harness({ store, backend: first.backend });
    const pool = await second.manager.pools.get("images");
    expect((await pool.info()).state).toBe("inactive");
    expect(second.events.find((e) => e.type === "pool:stopped")).toMatchObject({ pool: "images", reason: "start-failed", error: "directory is gone" });
    expect((await store.load())[0]!.active).toBe(false);
  });

  it("a failing save on start leaves the pool inactive; setAutostart keeps its old value", async () => {
    const inner = createMemoryPoolConfigStore();
    let failSave = false;
    const h = harness({
      store: {
        load: () => inner.load(),
        save: async (pools) => {
          if (failSave) throw new Error("read-only state dir");
          await inner.save(pools);
        },
      },
    });
    const pool = await h.manager.pools.define(images);
    failSave = true;
    await expect(pool.start()).rejects.toThrow("read-only state dir");
    expect((await pool.info()).state).toBe("inactive");
    await expect(pool.setAutostart(true)).rejects.toThrow("read-only state dir");
    expect((await pool.info()).autostart).toBe(false);
  });

  it("a failing save undoes the define or the undefine", async () => {
    const inner = createMemoryPoolConfigStore();
    let failSave = false;
    const store = {
      load: () => inner.load(),
      save: async (pools: SavedPool[]) => {
        if (failSave) throw new Error("read-only state dir");
        await inner.save(pools);
      },
    };
    const h = harness({ store });
    const pool = await h.manager.pools.define(images);
    failSave = true;
    await expect(pool.undefine()).rejects.toThrow("read-only state dir");
    expect((await pool.config()).name).toBe("images");
    await expect(h.manager.pools.define({ name: "b", type: "mem" })).rejects.toThrow("read-only state dir");
    expect((await h.manager.pools.list()).map((p) => p.name)).toEqual(["images"]);
  });

  it("addInitialPools defines seeds quietly, starts the active ones, does not save them", async () => {
    const store = createMemoryPoolConfigStore([{ config: { name: "default-pool", type: "mem", capacityBytes: 5 }, autostart: false, active: false }]);
    const h = harness({ store });
    await h.manager.addInitialPools([
      { config: { name: "default-pool", type: "mem" }, active: true },
      { config: { name: "seeded", type: "mem" }, active: true },
      { config: { name: "idle", type: "mem" }, active: false },
    ]);
    expect(h.events).toEqual([]);
    const pools = await h.manager.pools.list();
    expect(pools.map((p) => p.name)).toEqual(["default-pool", "seeded", "idle"]);
    // The saved definition wins over the seed of the same name.
    expect(await pools[0]!.config()).toEqual({ name: "default-pool", type: "mem", capacityBytes: 5 });
    expect((await pools[1]!.info()).state).toBe("active");
    expect((await pools[2]!.info()).state).toBe("inactive");
    await h.manager.pools.define({ name: "mine", type: "mem" });
    expect((await store.load()).map((s) => s.config.name)).toEqual(["default-pool", "mine"]);
  });

  it("access.addPools adds driver pools later, quietly; a taken name adds none of them", async () => {
    const h = harness();
    await h.manager.pools.define(images);
    const addPools = h.manager.access.addPools!;
    await expect(addPools([
      { config: { name: "fresh", type: "mem" }, active: true },
      { config: { name: "images", type: "mem" }, active: true },
    ])).rejects.toBeInstanceOf(ConflictError);
    await expect(addPools([
      { config: { name: "twice", type: "mem" }, active: false },
      { config: { name: "twice", type: "mem" }, active: false },
    ])).rejects.toBeInstanceOf(ConflictError);
    expect((await h.manager.pools.list()).map((p) => p.name)).toEqual(["images"]);
    await addPools([{ config: { name: "fixture", type: "mem" }, active: true }]);
    expect((await (await h.manager.pools.get("fixture")).info()).state).toBe("active");
    expect(h.seen("pool:")).toEqual(["pool:defined images"]);
  });

  it("access.addPools is all or nothing when a start fails", async () => {
    const h = harness();
    h.backend.failNext.set("refresh", new Error("no such target"));
    await expect(h.manager.access.addPools!([
      { config: { name: "a", type: "mem" }, active: false },
      { config: { name: "b", type: "mem" }, active: true },
    ])).rejects.toThrow("no such target");
    expect(await h.manager.pools.list()).toEqual([]);
    await expect(h.manager.access.addPools!("nope" as never)).rejects.toBeInstanceOf(TypeError);
  });

  it("close closes every backend and refuses later calls", async () => {
    const h = harness();
    const pool = await h.manager.pools.create(images);
    await h.manager.close();
    expect(h.backend.calls.at(-1)).toBe("images:close");
    await expect(pool.info()).rejects.toBeInstanceOf(StateError);
    await expect(h.manager.pools.list()).rejects.toBeInstanceOf(StateError);
    await h.manager.close();
  });
});

describe("storage access", () => {
  it("opens volumes, gives backends of active pools and finds volumes by key or path", async () => {
    const h = harness();
    const pool = await h.manager.pools.create(images);
    const volume = await pool.volumes.create({ name: "a", capacityBytes: MiB(1) });
    const io = await h.manager.access.openVolume("images", "a", { write: true });
    await io.write(0, new Uint8Array([1, 2, 3]));
    await io.close();
    const backend = await h.manager.access.backend("images");
    expect((await backend.volumeInfo("a")).allocationBytes).toBeGreaterThan(0);
    expect(await h.manager.access.findVolume({ key: volume.key })).toEqual({ pool: "images", volume: { name: "a", key: volume.key, path: volume.path } });
    expect((await h.manager.access.findVolume({ path: volume.path }))?.pool).toBe("images");
    expect(await h.manager.access.findVolume({ path: "/nowhere" })).toBeUndefined();
    await expect(h.manager.access.backend("nope")).rejects.toBeInstanceOf(NotFoundError);
    await expect(h.manager.access.findVolume({} as { key: string })).rejects.toBeInstanceOf(TypeError);
  });

  it("openVolume without backend support is UnsupportedError", async () => {
    const backend = memoryBackend();
    backend.omit.add("openVolume");
    const h = harness({ backend });
    const pool = await h.manager.pools.create(images);
    await pool.volumes.create({ name: "a", capacityBytes: MiB(1) });
    await expect(h.manager.access.openVolume("images", "a", { write: false })).rejects.toBeInstanceOf(UnsupportedError);
  });
});

describe("pools: declared capabilities", () => {
  it("a pool object that does not match its backend's declared operations fails to open, naming them", async () => {
    const backend = memoryBackend();
    backend.omit.add("resizeVolume");
    backend.definition = { ...backend.definition, capabilities: ["build", "start", "stop", "delete", "createVolume", "deleteVolume", "resizeVolume", "openVolume"] };
    const h = harness({ backend });
    const pool = await h.manager.pools.define(images);
    await expect(pool.start()).rejects.toThrow('Storage backend "mem" declares resizeVolume but its pool object lacks it');
    expect((await pool.info()).state).toBe("inactive");
    expect(backend.calls).toContain("images:close");
    backend.definition = { ...backend.definition, capabilities: ["build", "start", "stop", "delete", "createVolume", "deleteVolume", "openVolume"] };
    const matching = await harness({ backend }).manager.pools.create(images);
    expect((await matching.info()).state).toBe("active");
  });
});
