import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConflictError, connect, createVirtualClock, JobError, MiB, NotFoundError } from "../../../mod.ts";
import type { Connection } from "../../../core/connection.ts";
import type { Job } from "../../../core/job.ts";
import { CAPACITY, chainFixture, contentOf, whenReady } from "./_chain_fixture.ts";
import { qemu, qemuCheck, skipWithoutQemu, tempDir } from "../image/_qemu.ts";

/**
 * `dom.blockCopy()` of a shut-off domain's disk to a bare host path no pool holds (libvirt's blockcopy
 * to a file): made with the disk's size in the asked format, `ready` when copied, `finalize()` points
 * the definition at the path, an abort before `ready` removes the half-made file unless `reuseExisting`.
 * The files are checked with `qemu-img check` and `qemu-img compare`.
 */
let root: { dir: string; cleanup(): void };
beforeAll(() => {
  root = tempDir("copy-path");
});
afterAll(() => root.cleanup());

/** Runs a job to ready and pivots. */
async function copyAndPivot(conn: Connection, job: Job): Promise<void> {
  await whenReady(conn, job);
  await job.finalize();
  await job.wait();
}

/** A raw file holding what `bytes` says, to compare an image against. */
function rawOf(path: string, bytes: Uint8Array): string {
  writeFileSync(path, bytes);
  return path;
}

describe.skipIf(skipWithoutQemu)("dom.blockCopy() to a host path on the test driver's shut-off domain", () => {
  it("creates the file as qcow2 with the disk's size, is ready when copied, and finalize() switches the disk to the path", async () => {
    await using conn = await connect("test:///empty", { clock: createVirtualClock() });
    await conn.testing!.load(chainFixture("shutoff"));
    const dom = await conn.domains.get("web1");
    const expected = await contentOf(await (await conn.pools.get("p")).volumes.get("top.qcow2"));
    const dest = join(root.dir, "test-flat.qcow2");
    const job = await dom.blockCopy("vda", { destination: { path: dest } });
    expect(job.type).toBe("block-copy");
    await copyAndPivot(conn, job);
    const [vda] = await dom.disks();
    expect(vda?.path).toBe(dest);
    expect(vda?.format).toBe("qcow2");
    expect(vda?.backingChain).toEqual([]);
    expect((await dom.config()).disks[0]).toMatchObject({ target: "vda", path: dest, format: "qcow2" });
    expect(qemuCheck(dest).status).toBe(0);
    const info = JSON.parse(qemu("qemu-img", "info", "--output=json", dest)) as { "virtual-size": number; format: string };
    expect([info.format, info["virtual-size"]]).toEqual(["qcow2", CAPACITY]);
    expect(qemu("qemu-img", "compare", "-F", "raw", dest, rawOf(join(root.dir, "test-expected.raw"), expected))).toContain("identical");
  });

  it("abort() before ready removes the file it made; with reuseExisting it keeps the file", async () => {
    await using conn = await connect("test:///empty", { clock: createVirtualClock() });
    await conn.testing!.load(chainFixture("shutoff"));
    const dom = await conn.domains.get("web1");
    const dest = join(root.dir, "test-aborted.raw");
    const job = await dom.blockCopy("vda", { destination: { path: dest }, format: "raw", bandwidth: MiB(1) });
    expect(existsSync(dest)).toBe(true);
    await job.abort();
    await expect(job.wait()).rejects.toBeInstanceOf(JobError);
    expect(existsSync(dest)).toBe(false);
    expect((await dom.disks())[0]?.volume?.name).toBe("top.qcow2");
    const kept = join(root.dir, "test-kept.qcow2");
    qemu("qemu-img", "create", "-q", "-f", "qcow2", kept, String(CAPACITY));
    const again = await dom.blockCopy("vda", { destination: { path: kept }, reuseExisting: true, bandwidth: MiB(1) });
    await again.abort();
    await expect(again.wait()).rejects.toBeInstanceOf(JobError);
    expect(existsSync(kept)).toBe(true);
    expect(qemuCheck(kept).status).toBe(0);
  });

  it("refuses an existing file without reuseExisting, a missing one with it, and a relative path, before making anything", async () => {
    await using conn = await connect("test:///empty", { clock: createVirtualClock() });
    await conn.testing!.load(chainFixture("shutoff"));
    const dom = await conn.domains.get("web1");
    const existing = join(root.dir, "test-existing.raw");
    writeFileSync(existing, new Uint8Array(CAPACITY));
    await expect(dom.blockCopy("vda", { destination: { path: existing } })).rejects.toBeInstanceOf(ConflictError);
    await expect(dom.blockCopy("vda", { destination: { path: join(root.dir, "none.qcow2") }, reuseExisting: true })).rejects.toBeInstanceOf(NotFoundError);
    await expect(dom.blockCopy("vda", { destination: { path: "relative.qcow2" } })).rejects.toBeInstanceOf(TypeError);
    await expect(dom.blockCopy("vda", { destination: { path: join(root.dir, "no-such-dir", "x.qcow2") } })).rejects.toBeInstanceOf(NotFoundError);
    expect(await conn.jobs.list()).toEqual([]);
    expect(existsSync(join(root.dir, "none.qcow2"))).toBe(false);
  });
});

describe.skipIf(skipWithoutQemu)("dom.blockCopy() to a host path on the qemu driver's shut-off domain", () => {
  it("copies a dir pool's qcow2 chain flattened into a new file; qemu-img check and compare agree; the definition persists", async () => {
    const pool = join(root.dir, "pool");
    mkdirSync(pool);
    const base = join(pool, "base.qcow2");
    const top = join(pool, "top.qcow2");
    qemu("qemu-img", "create", "-q", "-f", "qcow2", base, "64M");
    qemu("qemu-io", "-c", "write -P 0x41 0 8M", "-c", "write -P 0x42 40M 1M", base);
    qemu("qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", top);
    qemu("qemu-io", "-c", "write -P 0x43 4M 8M", "-c", "write -z 40M 64K", top);
    const stateDir = join(root.dir, "state");
    const dest = join(root.dir, "qemu-copy.qcow2");
    {
      await using conn = await connect("qemu:///session", { stateDir });
      await conn.pools.create({ name: "images", type: "dir", path: pool });
      const dom = await conn.domains.define({ name: "off", vcpus: 1, memoryBytes: MiB(64), disks: [{ target: "vda", volume: { pool: "images", name: "top.qcow2" }, format: "qcow2" }] });
      const job = await dom.blockCopy("vda", { destination: { path: dest } });
      await copyAndPivot(conn, job);
      expect((await dom.disks())[0]).toMatchObject({ path: dest, format: "qcow2", backingChain: [] });
    }
    expect(qemuCheck(dest).status).toBe(0);
    expect(qemu("qemu-img", "compare", dest, top)).toContain("identical");
    await using again = await connect("qemu:///session", { stateDir });
    expect((await (await again.domains.get("off")).config()).disks[0]).toMatchObject({ path: dest, format: "qcow2" });
  });
});
