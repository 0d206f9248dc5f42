/**
 * The `logical` backend's error paths against LVM2 output recorded from the real tools
 * (test/fixtures/lvm/record.ts): a missing volume group, no free extents, a name taken behind the
 * pool's back; plus the argv it sends on a host without device-mapper, and no shell anywhere.
 */
import { describe, expect, it } from "vitest";
import { createRegistry } from "../../../core/registry.ts";
import { CommandError, ConflictError, UnsupportedError } from "../../../core/errors.ts";
import { createLvmBackend } from "../../../drivers/lvm/mod.ts";
import { testDriver } from "../../../drivers/test/mod.ts";
import { MiB } from "../../../core/units.ts";
import { recordings, replayRunner } from "./_support.ts";

async function connectWith(calls: string[][]) {
  const registry = createRegistry();
  registry.register(testDriver);
  registry.register(createLvmBackend({ runner: replayRunner(recordings("errors"), calls) }));
  return await registry.connect("test:///empty");
}

describe("logical pool on recorded LVM2 output", () => {
  it("starting a pool on a missing volume group is a CommandError with argv, exit code and stderr", async () => {
    await using conn = await connectWith([]);
    const pool = await conn.pools.define({ name: "gone", type: "logical", volumeGroup: "vkmissing" });
    const error = await pool.start().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CommandError);
    const failure = error as CommandError;
    expect(failure.argv).toEqual(["vgs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o", "vg_name,vg_uuid,vg_size,vg_free,vg_extent_size", "vkmissing"]);
    expect(failure.exitCode).toBe(5);
    expect(failure.stderr).toContain('Volume group "vkmissing" not found');
    expect((await pool.info()).state).toBe("inactive");
  });

  it("a volume larger than the free extents fails with lvcreate's own words, and nothing is listed", async () => {
    const calls: string[][] = [];
    await using conn = await connectWith(calls);
    const pool = await conn.pools.define({ name: "vg", type: "logical", volumeGroup: "vkfixture" });
    await pool.start();
    expect(await pool.info()).toMatchObject({ state: "active", capacityBytes: MiB(60), availableBytes: MiB(60), allocationBytes: 0 });
    const error = await pool.volumes.create({ name: "huge", capacityBytes: MiB(1024) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CommandError);
    expect((error as CommandError).exitCode).toBe(5);
    // The warning LVM2 prints for our own --driverloaded n is not what the message quotes.
    expect((error as CommandError).message).toContain('Volume group "vkfixture" has insufficient free space');
    expect(calls).toContainEqual(["lvcreate", "--driverloaded", "n", "-an", "-Zn", "-y", "-n", "huge", "-L", `${MiB(1024)}b`, "vkfixture"]);
    expect(calls.every((argv) => !["sh", "bash", "/bin/sh"].includes(argv[0]!))).toBe(true);
  });

  it("a name another tool took after the pool read its volumes is a ConflictError with the CommandError as cause", async () => {
    await using conn = await connectWith([]);
    const pool = await conn.pools.define({ name: "vg", type: "logical", volumeGroup: "vkfixture" });
    await pool.start();
    expect(await pool.volumes.list()).toEqual([]);
    const error = await pool.volumes.create({ name: "taken", capacityBytes: MiB(4) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConflictError);
    expect((error as Error).message).toContain('"taken"');
    expect((error as Error).cause).toBeInstanceOf(CommandError);
    // The failed create re-read the group, so the pool now lists the volume the other tool made.
    expect((await pool.volumes.list()).map((v) => v.name)).toEqual(["taken"]);
    const volume = await pool.volumes.get("taken");
    expect(volume.path).toBe("/dev/vkfixture/taken");
    expect(await volume.info()).toEqual({ capacityBytes: MiB(4), allocationBytes: MiB(4), physicalBytes: MiB(4), format: "raw" });
    // Without device-mapper the LV has no bytes: opening it says why.
    const download = await volume.download().catch((e: unknown) => e);
    expect(download).toBeInstanceOf(UnsupportedError);
    expect((download as Error).message).toContain("device-mapper");
  });
});

describe("logical pool where device-mapper works (scripted LVM2 output: this host cannot record it)", () => {
  const vgsOut = JSON.stringify({ report: [{ vg: [{ vg_name: "vg0", vg_uuid: "u", vg_size: String(MiB(64)), vg_free: String(MiB(32)), vg_extent_size: String(MiB(4)) }] }] });
  const lv = (name: string, path: string, attr: string, pool: string, percent: string, segtype: string) =>
    ({ lv_name: name, lv_uuid: `uuid-${name}`, lv_path: path, lv_size: String(MiB(8)), lv_attr: attr, pool_lv: pool, data_percent: percent, segtype });

  it("thin volumes go into the definition's thin pool, the pool LV is not a volume, allocation follows data_percent", async () => {
    const calls: string[][] = [];
    const lvsOut = JSON.stringify({ report: [{ lv: [lv("tp", "", "twi-a-tz--", "", "25.00", "thin-pool"), lv("thin1", "/dev/vg0/thin1", "Vwi-a-tz--", "tp", "50.00", "thin")] }] });
    const runner = {
      run: (argv: readonly string[]) => {
        calls.push([...argv]);
        return Promise.resolve(argv[0] === "vgs" ? vgsOut : argv[0] === "lvs" ? lvsOut : "");
      },
    };
    const registry = createRegistry();
    registry.register(testDriver);
    registry.register(createLvmBackend({ runner }));
    await using conn = await registry.connect("test:///empty");
    const pool = await conn.pools.define({ name: "thin", type: "logical", volumeGroup: "vg0", thinPool: "tp" });
    await pool.start();
    expect(calls).toContainEqual(["vgchange", "-aay", "vg0"]);
    expect((await pool.volumes.list()).map((v) => v.name)).toEqual(["thin1"]);
    expect(await (await pool.volumes.get("thin1")).info()).toMatchObject({ capacityBytes: MiB(8), allocationBytes: MiB(4) });
    await expect(pool.volumes.create({ name: "tp", capacityBytes: MiB(4) })).rejects.toBeInstanceOf(ConflictError);
    await pool.volumes.create({ name: "thin2", capacityBytes: MiB(8) }).catch(() => {});
    expect(calls).toContainEqual(["lvcreate", "-y", "-n", "thin2", "--thin", "-V", `${MiB(8)}b`, "vg0/tp"]);
    await pool.stop();
    expect(calls).toContainEqual(["vgchange", "-an", "vg0"]);
  });

  it("a volume's bytes are read and written through its device", async () => {
    const { mkdtempSync, rmSync, writeFileSync, readFileSync } = await import("node:fs");
    const { join } = await import("node:path");
    const { tmpdir } = await import("node:os");
    const dir = mkdtempSync(join(tmpdir(), "vk-lvdev-"));
    try {
      const device = join(dir, "lv");
      writeFileSync(device, new Uint8Array(MiB(8)).fill(7));
      const lvsOut = JSON.stringify({ report: [{ lv: [lv("lv", device, "-wi-a-----", "", "", "linear")] }] });
      const runner = { run: (argv: readonly string[]) => Promise.resolve(argv[0] === "vgs" ? vgsOut : argv[0] === "lvs" ? lvsOut : "") };
      const registry = createRegistry();
      registry.register(testDriver);
      registry.register(createLvmBackend({ runner }));
      await using conn = await registry.connect("test:///empty");
      const pool = await conn.pools.define({ name: "dm", type: "logical", volumeGroup: "vg0" });
      await pool.start();
      const volume = await pool.volumes.get("lv");
      const upload = await volume.upload({ offset: MiB(1), length: 4 });
      const writer = upload.writable.getWriter();
      await writer.write(new Uint8Array([1, 2, 3, 4]));
      await writer.close();
      await upload.wait();
      const bytes = readFileSync(device);
      expect([...bytes.subarray(MiB(1) - 1, MiB(1) + 5)]).toEqual([7, 1, 2, 3, 4, 7]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
