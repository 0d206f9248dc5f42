/**
 * The file-backed pool definition store: one JSON file per pool, definition order kept, removed pools'
 * files deleted, damaged files reported by name; definitions survive a new pool manager.
 */
import fsp from "node:fs/promises";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { VirtError } from "../../../core/errors.ts";
import type { EventBus } from "../../../core/event_bus.ts";
import type { JobManager } from "../../../core/jobs/types.ts";
import { createPoolManager } from "../../../core/storage/pool_manager.ts";
import { createVirtualClock } from "../../../mod.ts";
import { createPoolConfigFileStore, dirBackend } from "../../../drivers/dir/mod.ts";
import { removeDir, scratchDir } from "./_support.ts";

let stateDir: string;
beforeEach(async () => {
  stateDir = await scratchDir("virtkit-state-");
});
afterEach(() => removeDir(stateDir));

describe("createPoolConfigFileStore", () => {
  it("saves one file per pool and loads them back in definition order", async () => {
    const store = createPoolConfigFileStore(stateDir);
    const pools = [
      { config: { name: "zeta", type: "dir", path: "/srv/zeta" }, autostart: true, active: false },
      { config: { name: "alpha", type: "memory", capacityBytes: 1024 }, autostart: false, active: true },
    ];
    await store.save(pools);
    expect((await fsp.readdir(path.join(stateDir, "pools"))).sort()).toEqual(["alpha.json", "zeta.json"]);
    expect(await createPoolConfigFileStore(stateDir).load()).toEqual(pools);
    await store.save([pools[1]!]);
    expect(await fsp.readdir(path.join(stateDir, "pools"))).toEqual(["alpha.json"]);
    expect(await store.load()).toEqual([pools[1]]);
  });

  it("a file written before autostart and active existed loads as neither; a non-boolean flag is damage", async () => {
    const dir = path.join(stateDir, "pools");
    await fsp.mkdir(dir);
    const config = { name: "old", type: "dir", path: "/srv/old" };
    await fsp.writeFile(path.join(dir, "old.json"), JSON.stringify({ version: 1, position: 0, config }));
    expect(await createPoolConfigFileStore(stateDir).load()).toEqual([{ config, autostart: false, active: false }]);
    await fsp.writeFile(path.join(dir, "old.json"), JSON.stringify({ version: 1, position: 0, config, active: "yes" }));
    await expect(createPoolConfigFileStore(stateDir).load()).rejects.toThrow("active must be true or false");
  });

  it("loads nothing from a state directory without pools", async () => {
    expect(await createPoolConfigFileStore(stateDir).load()).toEqual([]);
  });

  it("a damaged or misnamed file fails load() naming the file", async () => {
    const store = createPoolConfigFileStore(stateDir);
    await store.save([{ config: { name: "a", type: "dir", path: "/srv/a" }, autostart: false, active: false }]);
    const file = path.join(stateDir, "pools", "a.json");
    await fsp.writeFile(file, "{ not json");
    await expect(store.load()).rejects.toThrow(file);
    await fsp.writeFile(file, JSON.stringify({ version: 1, position: 0, config: { name: "b", type: "dir", path: "/srv/b" } }));
    const error = await store.load().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(VirtError);
    expect(String(error)).toContain("a.json");
  });

  it("refuses a relative state directory and bad pool names", async () => {
    expect(() => createPoolConfigFileStore("state")).toThrow(TypeError);
    await expect(createPoolConfigFileStore(stateDir).save([{ config: { name: "../x", type: "dir", path: "/srv" }, autostart: false, active: false }])).rejects.toBeInstanceOf(TypeError);
    await expect(createPoolConfigFileStore(stateDir).save("x" as unknown as [])).rejects.toBeInstanceOf(TypeError);
  });

  it("a pool defined through one pool manager is there in the next one", async () => {
    const make = () =>
      createPoolManager({
        registry: { storageBackend: () => Promise.resolve(dirBackend) },
        bus: { emit: () => undefined } as unknown as EventBus,
        clock: createVirtualClock(),
        jobs: {} as JobManager,
        uri: { href: "test:///empty", scheme: "test", host: "", path: "/empty", params: new Map() },
        store: createPoolConfigFileStore(stateDir),
      });
    const first = make();
    await first.pools.define({ name: "images", type: "dir", path: path.join(stateDir, "images") });
    await first.close();
    const second = make();
    const pools = await second.pools.list();
    expect(pools.map((p) => [p.name, p.type])).toEqual([["images", "dir"]]);
    expect(await pools[0]!.config()).toEqual({ name: "images", type: "dir", path: path.join(stateDir, "images") });
    await pools[0]!.undefine();
    expect(await createPoolConfigFileStore(stateDir).load()).toEqual([]);
    await second.close();
  });
});
