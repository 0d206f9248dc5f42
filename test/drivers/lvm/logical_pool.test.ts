/**
 * The `logical` backend on the real LVM2 tools, on a loop device this suite makes and removes. This
 * kernel has no device-mapper, so LVs are metadata only (`--driverloaded n`): everything but their bytes.
 */
import { execFileSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, ConflictError, MiB, UnsupportedError, type Connection, type StoragePool } from "../../../mod.ts";
import { CommandError } from "../../../core/errors.ts";
import { LoopDevice, skipReal, uniqueVgName } from "./_support.ts";

const EXTENT = MiB(4);
const vg = uniqueVgName("vkt");
let loop: LoopDevice | undefined;
let conn: Connection;

function lvNames(): string[] {
  const out = execFileSync("lvs", ["--reportformat", "json", "-o", "lv_name", vg], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
  return (JSON.parse(out) as { report: Array<{ lv: Array<{ lv_name: string }> }> }).report[0]!.lv.map((lv) => lv.lv_name);
}

describe.skipIf(skipReal)("logical pool on a loop device (real LVM2)", () => {
  beforeAll(async () => {
    loop = new LoopDevice(128);
    conn = await connect("test:///empty");
  });
  afterAll(async () => {
    await conn?.close();
    loop?.cleanup(vg);
  });

  let pool: StoragePool;
  it("create runs pvcreate and vgcreate on the devices; info comes from vgs", async () => {
    pool = await conn.pools.create({ name: "lvm", type: "logical", volumeGroup: vg, devices: [loop!.device] });
    const info = await pool.info();
    // 128 MiB less LVM2's metadata area: 31 extents of 4 MiB.
    expect(info).toEqual({ state: "active", capacityBytes: 31 * EXTENT, allocationBytes: 0, availableBytes: 31 * EXTENT, autostart: false });
    const pv = execFileSync("pvs", ["--reportformat", "json", "-o", "pv_name,vg_name", loop!.device], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
    expect(pv).toContain(`"vg_name":"${vg}"`);
  });

  it("volumes are linear LVs: create rounds up to extents, key is the LV UUID, path /dev/VG/LV", async () => {
    const volume = await pool.volumes.create({ name: "disk1", capacityBytes: MiB(10) });
    expect(volume.path).toBe(`/dev/${vg}/disk1`);
    expect(volume.key).toMatch(/^[A-Za-z0-9]{6}(-[A-Za-z0-9]{4}){5}-[A-Za-z0-9]{6}$/);
    expect(await volume.info()).toEqual({ capacityBytes: MiB(12), allocationBytes: MiB(12), physicalBytes: MiB(12), format: "raw" });
    expect(lvNames()).toEqual(["disk1"]);
    expect(await pool.info()).toMatchObject({ allocationBytes: MiB(12), availableBytes: 28 * EXTENT });
    expect((await conn.volumes.lookup({ key: volume.key })).name).toBe("disk1");
    await expect(pool.volumes.create({ name: "disk1", capacityBytes: MiB(4) })).rejects.toBeInstanceOf(ConflictError);
    await expect(pool.volumes.create({ name: "q", capacityBytes: MiB(4), format: "qcow2" })).rejects.toBeInstanceOf(UnsupportedError);
    await expect(pool.volumes.create({ name: "-bad", capacityBytes: MiB(4) })).rejects.toBeInstanceOf(TypeError);
    await expect(pool.volumes.create({ name: "x_tmeta", capacityBytes: MiB(4) })).rejects.toBeInstanceOf(TypeError);
  });

  it("resize grows; shrinking needs { shrink: true }", async () => {
    const volume = await pool.volumes.get("disk1");
    await volume.resize(MiB(20));
    expect((await volume.info()).capacityBytes).toBe(MiB(20));
    await expect(volume.resize(MiB(8))).rejects.toBeInstanceOf(RangeError);
    expect((await volume.info()).capacityBytes).toBe(MiB(20));
    await volume.resize(MiB(8), { shrink: true });
    expect((await volume.info()).capacityBytes).toBe(MiB(8));
  });

  it("a volume bigger than the free extents is lvcreate's CommandError, and nothing is made", async () => {
    const error = await pool.volumes.create({ name: "huge", capacityBytes: MiB(1024) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CommandError);
    expect((error as CommandError).argv[0]).toBe("lvcreate");
    expect((error as CommandError).stderr).toContain("insufficient free space");
    expect(lvNames()).toEqual(["disk1"]);
  });

  it("without device-mapper, the bytes of a volume are UnsupportedError saying why", async () => {
    const volume = await pool.volumes.get("disk1");
    const error = await volume.download().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnsupportedError);
    expect((error as Error).message).toContain("device-mapper");
  });

  it("a pool defined on the existing group sees its volumes; refresh sees what other tools did", async () => {
    // An existing group needs no build (libvirt's logical pool-start on a host's VG).
    const other = await conn.pools.define({ name: "same-vg", type: "logical", volumeGroup: vg });
    await other.start();
    expect((await other.volumes.list()).map((v) => v.name)).toEqual(["disk1"]);
    execFileSync("lvcreate", ["--driverloaded", "n", "-an", "-Zn", "-y", "-n", "outside", "-L", "4m", vg], { stdio: "ignore" });
    await other.refresh();
    expect((await other.volumes.list()).map((v) => v.name)).toEqual(["disk1", "outside"]);
    await other.stop();
    await other.undefine();
  });

  it("volume delete is lvremove; pool delete removes the VG and the PV label", async () => {
    await pool.refresh();
    for (const volume of await pool.volumes.list()) await volume.delete();
    expect(lvNames()).toEqual([]);
    await pool.volumes.create({ name: "left", capacityBytes: MiB(4) });
    await pool.stop();
    await pool.delete();
    await pool.undefine();
    expect(() => execFileSync("vgs", [vg], { stdio: "ignore" })).toThrow();
    expect(() => execFileSync("pvs", [loop!.device], { stdio: "ignore" })).toThrow();
  });

  it("building on a device that is not there fails and leaves no PV label", async () => {
    const missing = `/dev/vk-missing-${vg}`;
    const bad = await conn.pools.define({ name: "bad", type: "logical", volumeGroup: `${vg}b`, devices: [loop!.device, missing] });
    const error = await bad.build().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CommandError);
    expect((error as CommandError).argv).toEqual(["pvcreate", missing]);
    expect(() => execFileSync("pvs", [loop!.device], { stdio: "ignore" })).toThrow();
    await bad.undefine();
  });
});

describe("logical pool definitions", () => {
  it("a malformed definition is a TypeError naming the field", async () => {
    await using c = await connect("test:///empty");
    await expect(c.pools.define({ name: "p", type: "logical", volumeGroup: "bad name" })).rejects.toThrow(/volumeGroup/);
    await expect(c.pools.define({ name: "p", type: "logical", volumeGroup: "vg", devices: ["loop0"] })).rejects.toThrow(/devices/);
    await expect(c.pools.define({ name: "p", type: "logical", volumeGroup: "vg", devices: ["/dev/a", "/dev/a"] })).rejects.toThrow(/twice/);
    await expect(c.pools.define({ name: "p", type: "logical", volumeGroup: "vg", volumegroup: "x" } as never)).rejects.toBeInstanceOf(TypeError);
    const noDevices = await c.pools.define({ name: "p", type: "logical", volumeGroup: "vg" });
    await expect(noDevices.build()).rejects.toThrow(/lists no devices/);
  });
});
