/**
 * Thin volumes of a `logical` pool on the real LVM2 tools, on a loop device, on a host without
 * device-mapper. What the tools do there (tried, and asserted below so a newer LVM2 that does more is
 * noticed): `lvcreate --type thin-pool` and `lvcreate --thin -V` refuse ("Can't create thin-pool / thin
 * without using device-mapper kernel driver"), so the thin pool and its thin volumes are written into the
 * VG's metadata with `vgcfgrestore --force` (test/drivers/lvm/_support.ts). On that genuine layout the
 * backend lists, reports and resizes thin volumes with the real `lvs` and `lvresize`, and refuses to
 * create or delete one with an `UnsupportedError` that says why, before any tool half-does it. Thin
 * create on the tools' recorded output where device-mapper works stays in replay.test.ts.
 */
import { execFileSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type Connection, MiB, type StoragePool, UnsupportedError } from "../../../mod.ts";
import { deviceMapperWorks, LoopDevice, restoreThinPool, skipReal, uniqueVgName } from "./_support.ts";

const vg = uniqueVgName("vkthin");
let loop: LoopDevice | undefined;
let conn: Connection;
const noDm = !skipReal && !deviceMapperWorks();

/** Runs an LVM2 tool; its exit code and stderr, without throwing. */
function tool(argv: string[]): { code: number; stderr: string } {
  try {
    execFileSync(argv[0]!, argv.slice(1), { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, LVM_SUPPRESS_FD_WARNINGS: "1" } });
    return { code: 0, stderr: "" };
  } catch (error) {
    const e = error as { status: number; stderr: Buffer };
    return { code: e.status, stderr: e.stderr.toString() };
  }
}

function lvs(): Array<{ lv_name: string; segtype: string; pool_lv: string; lv_size: string }> {
  const out = execFileSync("lvs", ["--reportformat", "json", "--units", "b", "--nosuffix", "-o", "lv_name,segtype,pool_lv,lv_size", vg], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "ignore"],
  });
  return (JSON.parse(out) as { report: Array<{ lv: Array<{ lv_name: string; segtype: string; pool_lv: string; lv_size: string }> }> }).report[0]!.lv;
}

// On a host where device-mapper works, thin volumes are made by the tools themselves; this suite is the
// metadata-only host's (this machine's; machine-facts §5.2).
describe.skipIf(skipReal || !noDm)("thin volumes of a logical pool, real LVM2 without device-mapper", () => {
  let pool: StoragePool;
  beforeAll(async () => {
    loop = new LoopDevice(128);
    conn = await connect("test:///empty");
    pool = await conn.pools.create({ name: "thin", type: "logical", volumeGroup: vg, devices: [loop.device], thinPool: "tp" });
  });
  afterAll(async () => {
    await conn?.close();
    loop?.cleanup(vg);
  });

  it("the real tools cannot make a thin pool or a thin volume here: what each says", () => {
    const pool = tool(["lvcreate", "--driverloaded", "n", "-an", "-Zn", "-y", "--type", "thin-pool", "-L", "16m", "-n", "tp", vg]);
    expect(pool.code).not.toBe(0);
    expect(pool.stderr).toContain("Can't create thin-pool without using device-mapper kernel driver");
    restoreThinPool(vg, loop!.dir, "tp", 32, [{ name: "thin1", sizeMiB: 64 }]);
    const thin = tool(["lvcreate", "--driverloaded", "n", "-an", "-y", "--thin", "-V", "8m", "-n", "thin2", `${vg}/tp`]);
    expect(thin.code).not.toBe(0);
    expect(thin.stderr).toContain("Can't create thin without using device-mapper kernel driver");
    expect(lvs().map((lv) => [lv.lv_name, lv.segtype, lv.pool_lv])).toEqual([["thin1", "thin", "tp"], ["tp", "thin-pool", ""]]);
  });

  it("lists and reports thin volumes from the real lvs: the pool LV is not a volume, nothing known allocated", async () => {
    await pool.refresh();
    expect((await pool.volumes.list()).map((v) => v.name)).toEqual(["thin1"]);
    const thin1 = await pool.volumes.get("thin1");
    expect(thin1.path).toBe(`/dev/${vg}/thin1`);
    // Without device-mapper LVM cannot read the pool's usage (data_percent is empty): 0 allocated.
    expect(await thin1.info()).toEqual({ capacityBytes: MiB(64), allocationBytes: 0, physicalBytes: MiB(64), format: "raw" });
  });

  it("resizes a thin volume with the real lvresize (metadata only)", async () => {
    const thin1 = await pool.volumes.get("thin1");
    await thin1.resize(MiB(96));
    expect((await thin1.info()).capacityBytes).toBe(MiB(96));
    expect(lvs().find((lv) => lv.lv_name === "thin1")?.lv_size).toBe(String(MiB(96)));
  });

  it("creating or deleting a thin volume is an UnsupportedError naming device-mapper; the VG is untouched", async () => {
    const before = lvs();
    const created = await pool.volumes.create({ name: "thin2", capacityBytes: MiB(8) }).catch((e: unknown) => e);
    expect(created).toBeInstanceOf(UnsupportedError);
    expect((created as Error).message).toContain('create thin volume "thin2"');
    expect((created as Error).message).toContain("device-mapper");
    const deleted = await (await pool.volumes.get("thin1")).delete().catch((e: unknown) => e);
    expect(deleted).toBeInstanceOf(UnsupportedError);
    expect((deleted as Error).message).toContain('delete thin volume "thin1"');
    expect(lvs()).toEqual(before);
    expect((await pool.volumes.list()).map((v) => v.name)).toEqual(["thin1"]);
  });

  it("the pool's delete still removes the whole VG with its thin pool (vgremove works metadata-only)", async () => {
    await pool.stop();
    await pool.delete();
    await pool.undefine();
    expect(() => execFileSync("vgs", [vg], { stdio: "ignore" })).toThrow();
  });
});
