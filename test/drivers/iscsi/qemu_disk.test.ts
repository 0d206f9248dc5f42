/**
 * An `iscsi` pool volume in a real QEMU domain (QEMU's iscsi driver from qemu-block-extra, the target a
 * private tgtd): as the disk itself, and as the backing of a qcow2 overlay in a `dir` pool, pulled
 * online into the overlay. The result is checked with `qemu-img check` and `qemu-img compare`.
 */
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { NotFoundError } from "../../../core/errors.ts";
import { skipIscsi, Tgtd } from "../../_support/tgtd.ts";
import { backingOf, domainConfig, MiB, type Scratch, skipReal, verifyImage } from "../qemu/_support.ts";
import { sanConnection, writeTemplate } from "./_qemu_san.ts";

const skip = skipIscsi || skipReal;
const scratches: Scratch[] = [];
afterEach(async () => {
  for (const s of scratches.splice(0)) await s.cleanup();
});

async function errorOf(promise: Promise<unknown>): Promise<unknown> {
  return await promise.then(() => undefined, (e: unknown) => e);
}

describe.skipIf(skip)("qemu domains on iSCSI LUNs", () => {
  let tgtd: Tgtd;
  beforeAll(async () => {
    tgtd = await Tgtd.start({ luns: [{ lun: 1, sizeBytes: 32 * MiB }, { lun: 2, sizeBytes: 8 * MiB }] });
    writeTemplate(tgtd, 1, 32, 1); // the template: data in every other MiB
  });
  afterAll(() => tgtd?.stop());

  const connection = () => sanConnection(scratches, tgtd);

  it("runs a domain whose disk is a LUN volume, named by its iscsi:// key", async () => {
    const { conn, san } = await connection();
    const lun = await san.volumes.get("unit:0:0:2");
    const dom = await conn.domains.define(domainConfig("on-lun", [{ target: "vda", volume: { pool: "san", name: "unit:0:0:2" } }]));
    await dom.start();
    expect((await dom.info()).state).toBe("running");
    expect((await dom.disks())[0]).toMatchObject({ target: "vda", path: lun.key, format: "raw", backingChain: [] });
    await dom.destroy();
  });

  it("pulls an iSCSI template into a qcow2 overlay online: no backing afterwards, identical content", async () => {
    const { s, conn, san, images } = await connection();
    const template = await san.volumes.get("unit:0:0:1");
    const overlay = await images.volumes.create({ name: "web.qcow2", format: "qcow2", capacityBytes: 32 * MiB, backing: { path: template.path, format: "raw" } });
    expect((await overlay.info()).backing).toEqual({ path: template.path, format: "raw" });
    expect(backingOf(overlay.path)).toBe(template.path);
    // The overlay's own writes, made through QEMU with the LUN as backing.
    execFileSync("qemu-io", ["-f", "qcow2", "-c", "write -q -P 0xab 0 4M", "-c", "write -q -P 0xcd 17M 1M", overlay.path]);
    const ref = join(s.dir, "ref.raw");
    execFileSync("qemu-img", ["convert", "-O", "raw", overlay.path, ref]);
    const dom = await conn.domains.define(domainConfig("pull-lun", [{ target: "vda", volume: { pool: "images", name: "web.qcow2" } }]));
    await dom.start();
    expect((await dom.disks())[0]?.backingChain).toEqual([{ path: template.path, format: "raw" }]);
    const job = await dom.blockPull("vda");
    await job.wait();
    expect((await job.info()).cur).toBe(32 * MiB);
    expect((await dom.disks())[0]?.backingChain).toEqual([]);
    await dom.destroy();
    expect(backingOf(overlay.path)).toBeUndefined();
    expect(verifyImage(overlay.path, ref)).toMatchObject({ check: 0, compare: 0 });
    expect((await overlay.info()).backing).toBeUndefined();
  });

  it("reads an iSCSI template offline too: a clone of the overlay, and a pull on a shut-off domain, through the iscsi pool", async () => {
    const { s, conn, san, images } = await connection();
    const template = await san.volumes.get("unit:0:0:1");
    const overlay = await images.volumes.create({ name: "db.qcow2", format: "qcow2", capacityBytes: 32 * MiB, backing: { path: template.path, format: "raw" } });
    execFileSync("qemu-io", ["-f", "qcow2", "-c", "write -q -P 0x5a 1M 2M", overlay.path]);
    const ref = join(s.dir, "ref.raw");
    execFileSync("qemu-img", ["convert", "-O", "raw", overlay.path, ref]);
    // The clone reads the overlay's chain with the image engine, the LUN through the initiator.
    const copy = await (await images.volumes.clone(overlay, { name: "flat.raw", format: "raw" })).wait();
    expect(execFileSync("qemu-img", ["compare", "-f", "raw", "-F", "raw", copy.path, ref], { encoding: "utf8" })).toContain("identical");
    // With the iscsi pool stopped, nothing can read the template: a NotFoundError that says what to start.
    await san.stop();
    const error = await errorOf(overlay.pull());
    expect(error).toBeInstanceOf(NotFoundError);
    expect((error as Error).message).toContain("start the iscsi pool");
    expect(backingOf(overlay.path)).toBe(template.path);
    await san.start();
    const dom = await conn.domains.define(domainConfig("offline", [{ target: "vda", volume: { pool: "images", name: "db.qcow2" } }]));
    await (await dom.blockPull("vda")).wait(); // shut off: the image engine does it
    expect(backingOf(overlay.path)).toBeUndefined();
    expect(verifyImage(overlay.path, ref)).toMatchObject({ check: 0, compare: 0 });
  });
});
