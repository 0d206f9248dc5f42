/**
 * Block copy and block commit through the remote driver against a real libvirtd 9.0 driving real QEMU
 * (libvirt's BLOCK_COPY and BLOCK_COMMIT, READY from the BLOCK_JOB_2 event, pivot as BLOCK_JOB_ABORT
 * with PIVOT): a copy into a volume the driver creates in a libvirt `dir` pool, ready then pivoted, the
 * copy compared with `qemu-img compare`; a copy to a path aborted in ready (the domain stays on its
 * source, the copy is consistent); an active commit ready then pivoted onto the base; an intermediate
 * commit that completes in one phase and re-links the top onto the base; a copy of a shut-off domain
 * refused with UnsupportedError (no offline block jobs on a libvirtd).
 */
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, MiB } from "../../../mod.ts";
import type { Connection } from "../../../core/connection.ts";
import type { Job } from "../../../core/job.ts";
import type { StoragePool } from "../../../core/storage_pool.ts";
import { type RunningLibvirtd, skipLibvirtd, startLibvirtd } from "../../_support/libvirtd.ts";
import { missingTools } from "../qemu/_support.ts";
import { giveToLibvirtd, patternedBase, removeDomainsAndClose } from "./_libvirtd_images.ts";

const skip = skipLibvirtd || (missingTools.length > 0 && process.env.CI !== "true");
const BASE_MIB = 32;

const qemuImgInfo = (path: string) =>
  JSON.parse(execFileSync("qemu-img", ["info", "-U", "--output=json", path], { encoding: "utf8" })) as Record<string, unknown>;

describe.skipIf(skip)("remote driver -> libvirtd qemu driver: block copy and commit", () => {
  let daemon: RunningLibvirtd;
  let conn: Connection;
  let images: string;
  let pool: StoragePool;
  let base: string;
  const chown = giveToLibvirtd;
  /** A qcow2 image over `backing` (raw or qcow2). */
  const overlay = (name: string, backing: string, backingFormat: "raw" | "qcow2") => {
    const path = join(images, name);
    execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", "-b", backing, "-F", backingFormat, path]);
    return chown(path);
  };
  const define = async (name: string, path: string) => {
    const dom = await conn.domains.define({ name, vcpus: 1, memoryBytes: MiB(64), machine: "q35", disks: [{ target: "vda", path, format: "qcow2" }] });
    await dom.start();
    return dom;
  };
  const ready = (job: Job) =>
    new Promise<void>((resolve, reject) => {
      const off = conn.events.on("job:state", (e) => {
        if (e.job.id !== job.id) return;
        if (e.job.state === "ready") resolve();
        else if (e.job.state !== "running") reject(new Error(`job ${job.id} went ${e.job.state} before ready`));
        else return;
        off();
      });
      void job.info().then((info) => info.state === "ready" && (off(), resolve()));
    });

  beforeAll(async () => {
    daemon = await startLibvirtd({ driver: "qemu" });
    images = daemon.mkdir("images");
    base = patternedBase(join(images, "base.raw"), BASE_MIB);
    conn = await connect(daemon.uri("qemu"));
    pool = await conn.pools.create({ name: "copies", type: "dir", path: join(daemon.mkdir("pools"), "copies") });
  }, 60_000);
  afterAll(async () => {
    await removeDomainsAndClose(conn);
    await daemon?.stop();
  }, 60_000);

  it("copies into a volume it creates in a libvirt pool: ready from the event, finalize() pivots, the copy reads as the disk", async () => {
    const top = overlay("copy1.qcow2", base, "raw");
    const dom = await define("copy1", top);
    const job = await dom.blockCopy("vda", { destination: { pool: "copies", name: "copy1-dest.qcow2" }, bandwidth: MiB(512) });
    expect(job.type).toBe("block-copy");
    expect((await conn.jobs.list({ domain: "copy1" })).map((j) => j.id)).toEqual([job.id]);
    // The destination was made through libvirt's storage API before the copy started.
    const dest = await pool.volumes.get("copy1-dest.qcow2");
    expect(await dest.info()).toMatchObject({ capacityBytes: MiB(BASE_MIB), format: "qcow2" });
    await ready(job);
    const inReady = await job.info();
    expect(inReady.state).toBe("ready");
    expect(inReady.cur).toBe(inReady.end);
    // The cap went as the typed parameter `bandwidth`, in bytes/s.
    expect(daemon.virsh(["blockjob", "copy1", "vda", "--info"])).toContain(`Bandwidth limit: ${MiB(512)} bytes/s`);
    await expect(job.setSpeed(MiB(256))).resolves.toBeUndefined();
    await job.finalize();
    await job.wait();
    expect((await job.info()).state).toBe("completed");
    const [after] = await dom.disks();
    expect([after?.path, after?.format, after?.backingChain]).toEqual([dest.path, "qcow2", []]);
    expect(daemon.virsh(["domblklist", "copy1"])).toContain(dest.path);
    // libvirt rewrites the persistent definition on the pivot too.
    expect((await dom.config()).disks[0]?.path).toBe(dest.path);
    await dom.destroy();
    expect(qemuImgInfo(dest.path)["backing-filename"]).toBeUndefined();
    execFileSync("qemu-img", ["compare", "-f", "qcow2", "-F", "raw", dest.path, base]);
    execFileSync("qemu-img", ["check", dest.path]);
  }, 120_000);

  it("copies shallow into a created volume: only the top is copied, the copy keeps the disk's backing after the pivot", async () => {
    const top = overlay("copy4.qcow2", base, "raw");
    execFileSync("qemu-io", ["-f", "qcow2", "-c", "write -q -P 0xee 2M 1M", top]);
    const dom = await define("copy4", top);
    const job = await dom.blockCopy("vda", { destination: { pool: "copies", name: "copy4-dest.qcow2" }, shallow: true });
    const dest = await pool.volumes.get("copy4-dest.qcow2");
    expect(await dest.info()).toMatchObject({ format: "qcow2", backing: { path: base, format: "raw" } });
    await ready(job);
    await job.finalize();
    await job.wait();
    const [after] = await dom.disks();
    expect([after?.path, after?.backingChain]).toEqual([dest.path, [{ path: base, format: "raw" }]]);
    await dom.destroy();
    // Only what the top held was copied: the copy allocates about 1 MiB, not the base's data.
    const map = JSON.parse(execFileSync("qemu-img", ["map", "--output=json", dest.path], { encoding: "utf8" })) as Array<{ length: number; depth: number; data: boolean }>;
    const own = map.filter((e) => e.depth === 0 && e.data).reduce((sum, e) => sum + e.length, 0);
    expect(own).toBe(MiB(1));
    execFileSync("qemu-img", ["compare", "-f", "qcow2", "-F", "qcow2", dest.path, top]);
  }, 120_000);

  it("aborts a copy in ready: the domain stays on its source, the copy is a consistent image", async () => {
    const top = overlay("copy2.qcow2", base, "raw");
    const dom = await define("copy2", top);
    const destPath = join(images, "copy2-dest.raw");
    const job = await dom.blockCopy("vda", { destination: { path: destPath }, format: "raw" });
    await ready(job);
    await expect(dom.blockCommit("vda", { top: "vda[0]" })).rejects.toMatchObject({ name: "ConflictError", jobId: job.id });
    await job.abort();
    await expect(job.wait()).rejects.toMatchObject({ name: "JobError" });
    expect((await job.info()).state).toBe("aborted");
    expect((await dom.disks())[0]?.path).toBe(top);
    expect(await dom.blockJob("vda")).toBeUndefined();
    await dom.destroy();
    expect(qemuImgInfo(destPath).format).toBe("raw");
    execFileSync("qemu-img", ["compare", "-f", "raw", "-F", "raw", destPath, base]);
  }, 120_000);

  it("commits the active image: ready, finalize() pivots the domain onto the base, which then holds the data", async () => {
    const mid = join(images, "commit1-base.qcow2");
    execFileSync("qemu-img", ["convert", "-q", "-f", "raw", "-O", "qcow2", base, mid]);
    chown(mid);
    const top = overlay("commit1-top.qcow2", mid, "qcow2");
    // A change only the top holds, so the commit has something to move.
    execFileSync("qemu-io", ["-f", "qcow2", "-c", "write -q -P 0xab 1M 512k", top]);
    const dom = await define("commit1", top);
    const job = await dom.blockCommit("vda", { bandwidth: MiB(512) });
    expect(job.type).toBe("block-commit");
    await ready(job);
    // The cap went in bytes/s (BANDWIDTH_BYTES, 1 << 4 for a commit).
    expect(daemon.virsh(["blockjob", "commit1", "vda", "--info"])).toContain(`Bandwidth limit: ${MiB(512)} bytes/s`);
    await job.finalize();
    await job.wait();
    expect((await job.info()).state).toBe("completed");
    const [after] = await dom.disks();
    expect([after?.path, after?.backingChain]).toEqual([mid, []]);
    expect((await dom.config()).disks[0]?.path).toBe(mid);
    await dom.destroy();
    execFileSync("qemu-img", ["compare", "-f", "qcow2", "-F", "qcow2", mid, top]);
    execFileSync("qemu-img", ["check", mid]);
  }, 120_000);

  it("commits an intermediate image in one phase: completed without ready, the top now backed by the base", async () => {
    const mid = overlay("commit2-mid.qcow2", base, "raw");
    execFileSync("qemu-io", ["-f", "qcow2", "-c", "write -q -P 0xcd 0 256k", mid]);
    const top = overlay("commit2-top.qcow2", mid, "qcow2");
    const copyOfBase = join(images, "commit2-base.raw");
    execFileSync("cp", ["--sparse=always", base, copyOfBase]);
    chown(copyOfBase);
    execFileSync("qemu-img", ["rebase", "-u", "-f", "qcow2", "-b", copyOfBase, "-F", "raw", mid]);
    const dom = await define("commit2", top);
    const states: string[] = [];
    const off = conn.events.on("job:state", (e) => void states.push(e.job.state));
    const job = await dom.blockCommit("vda", { top: "vda[1]", base: copyOfBase });
    await job.wait();
    off();
    expect(states).not.toContain("ready");
    expect((await job.info()).state).toBe("completed");
    const [after] = await dom.disks();
    expect([after?.path, after?.backingChain.map((l) => l.path)]).toEqual([top, [copyOfBase]]);
    await dom.destroy();
    expect(qemuImgInfo(top)["backing-filename"]).toBe(copyOfBase);
    // The base now holds what the intermediate image had: the top reads the same over it as over mid.
    execFileSync("qemu-img", ["compare", "-f", "raw", "-F", "qcow2", copyOfBase, mid]);
  }, 120_000);

  it("refuses a copy of a shut-off domain with UnsupportedError (libvirt runs no offline block jobs; core's offline path needs setDiskSource)", async () => {
    const top = overlay("offline1.qcow2", base, "raw");
    const dom = await conn.domains.define({ name: "offline1", vcpus: 1, memoryBytes: MiB(64), machine: "q35", disks: [{ target: "vda", path: top, format: "qcow2" }] });
    const error = await dom.blockCopy("vda", { destination: { path: join(images, "offline1-dest.qcow2") } }).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: "UnsupportedError", driver: "remote" });
    expect((error as Error).message).toMatch(/setDiskSource/);
    expect(await conn.jobs.list({ domain: "offline1" })).toEqual([]);
  }, 60_000);

  it("removes the destination volume it created when libvirt refuses the copy (another client's job holds the disk)", async () => {
    const top = overlay("copy3.qcow2", base, "raw");
    const dom = await define("copy3", top);
    // A job this connection does not know about: libvirt refuses the copy, after the volume was made.
    daemon.virsh(["blockpull", "copy3", "vda", "--bandwidth", "1"]);
    try {
      const error = await dom.blockCopy("vda", { destination: { pool: "copies", name: "copy3-dest.qcow2" } }).catch((e: unknown) => e);
      // libvirt says VIR_ERR_OPERATION_UNSUPPORTED here; the driver reads that refusal as the conflict it is.
      expect(error).toMatchObject({ name: "ConflictError" });
      expect((error as Error).message).toMatch(/disk 'vda' already in active block job/);
      await expect(pool.volumes.get("copy3-dest.qcow2")).rejects.toMatchObject({ name: "NotFoundError" });
      expect(await conn.jobs.list({ domain: "copy3" })).toEqual([]);
    } finally {
      daemon.virsh(["blockjob", "copy3", "vda", "--abort"]);
      await dom.destroy();
    }
  }, 120_000);
});
