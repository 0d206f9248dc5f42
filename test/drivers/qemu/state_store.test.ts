/** The qemu driver's state directory: definitions and run records, written atomically. */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { StateStore } from "../../../drivers/qemu/state_store.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});
async function store(): Promise<StateStore> {
  const dir = mkdtempSync(join(tmpdir(), "vk-qemu-store-"));
  dirs.push(dir);
  const s = new StateStore(dir);
  await s.init();
  return s;
}

describe("qemu state store", () => {
  it("keeps definitions in their order, under file names any domain name can take", async () => {
    const s = await store();
    const base = { vcpus: 1, memoryBytes: 1 << 26, disks: [] };
    await s.saveDomain({ ...base, name: "..x", uuid: "u1" }, 2);
    await s.saveDomain({ ...base, name: "a b%", uuid: "u2" }, 1);
    expect((await s.loadDomains()).map((c) => c.name)).toEqual(["a b%", "..x"]);
    expect(readdirSync(join(s.dir, "domains")).every((f) => !f.startsWith(".") && f.endsWith(".json"))).toBe(true);
    await s.removeDomain("a b%");
    expect((await s.loadDomains()).map((c) => c.name)).toEqual(["..x"]);
  });

  it("updateDomain keeps the order it saved without reading the file back; a store that never saw it reads the order", async () => {
    const s = await store();
    const base = { vcpus: 1, memoryBytes: 1 << 26, disks: [] };
    await s.saveDomain({ ...base, name: "first", uuid: "u1" }, 1);
    await s.saveDomain({ ...base, name: "second", uuid: "u2" }, 2);
    const file = (name: string) => join(s.dir, "domains", readdirSync(join(s.dir, "domains")).find((f) => f.startsWith(name))!);
    // Not read back: the file it would parse is garbage now, and the update still writes the known order.
    writeFileSync(file("first"), "not json");
    await s.updateDomain({ ...base, name: "first", uuid: "u1", vcpus: 2 });
    expect(JSON.parse(readFileSync(file("first"), "utf8"))).toMatchObject({ order: 1, config: { vcpus: 2 } });
    const other = new StateStore(s.dir);
    await other.updateDomain({ ...base, name: "second", uuid: "u2", vcpus: 3 });
    expect((await other.loadDomains()).map((c) => [c.name, c.vcpus])).toEqual([["first", 2], ["second", 3]]);
    expect(JSON.parse(readFileSync(file("second"), "utf8")).order).toBe(2);
  });

  it("saves and removes run records, leaving no temporary files", async () => {
    const s = await store();
    expect(await s.loadRun("vm")).toBeUndefined();
    const record = { pid: 42, socket: s.socketPath("u"), disks: [], jobs: [{ id: "job-1", disk: "vda", endBytes: 1, bandwidth: 0 }] };
    await s.saveRun("vm", record);
    await s.saveRun("vm", { ...record, pid: 43 });
    expect(await s.loadRun("vm")).toEqual({ ...record, pid: 43 });
    expect(readdirSync(join(s.dir, "run"))).toEqual(["vm.json"]);
    await s.removeRun("vm", "u");
    expect(await s.loadRun("vm")).toBeUndefined();
  });
});
