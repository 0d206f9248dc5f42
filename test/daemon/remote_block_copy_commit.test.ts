/**
 * virtkit's remote driver against virtkitd on qemu:///session with real QEMU: block copy and commit go
 * over libvirt's procedures both ways (the driver's BLOCK_COPY with destination XML and typed
 * parameters, BLOCK_COMMIT with ACTIVE, BLOCK_JOB_ABORT with PIVOT; the daemon's mapping onto core):
 * a copy ready then pivoted, a copy aborted in ready, an active commit ready then pivoted, and the same
 * commit and copy of a shut-off domain, run offline by the daemon's core; each image checked with qemu-img.
 */
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, MiB } from "../../mod.ts";
import type { Connection } from "../../core/connection.ts";
import type { Job } from "../../core/job.ts";
import { backingOf, domainConfig, killAll, Scratch, skipReal, verifyImage } from "../drivers/qemu/_support.ts";
import { skipDaemon, startVirtkitd, type VirtkitdProcess } from "./_support/virtkitd.ts";

describe.skipIf(skipDaemon || skipReal)("remote driver -> virtkitd (qemu:///session, real QEMU): block copy and commit", () => {
  const scratch = new Scratch();
  const sets: Scratch[] = [];
  const stateDir = join(scratch.dir, "daemon-state");
  let daemon: VirtkitdProcess;
  let conn: Connection;
  const running = async (name: string) => {
    const set = new Scratch();
    sets.push(set);
    const images = set.images(32);
    const dom = await conn.domains.define(domainConfig(name, [{ target: "vda", path: images.overlay, format: "qcow2" }]));
    await dom.start();
    return { dom, ...images, dir: set.dir };
  };
  const ready = async (job: Job) => {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const { state } = await job.info();
      if (state === "ready") return;
      if (state !== "running" && state !== "created") throw new Error(`job ${job.id} is ${state}, not ready`);
      if (Date.now() > deadline) throw new Error(`job ${job.id} not ready within 60 s`);
      await new Promise<void>((resolve) => {
        const off = conn.events.on("job:state", (e) => e.job.id === job.id && (off(), resolve()));
        setTimeout(() => (off(), resolve()), 500);
      });
    }
  };
  beforeAll(async () => {
    daemon = await startVirtkitd(["--allow", "qemu:///session", "--state-dir", stateDir], { dir: scratch.dir });
    conn = await connect(daemon.uri("qemu:///session"));
  });
  afterAll(async () => {
    await conn?.close().catch(() => {});
    await daemon?.stop();
    killAll(stateDir);
    await scratch.cleanup();
    for (const set of sets) await set.cleanup();
  });

  it("copies to a path: ready, finalize() pivots the domain onto the copy, which reads as the disk did", async () => {
    const { dom, ref, dir } = await running("rc1");
    const dest = join(dir, "copy.qcow2");
    const job = await dom.blockCopy("vda", { destination: { path: dest }, bandwidth: MiB(512), granularityBytes: 65536 });
    expect(job.type).toBe("block-copy");
    await ready(job);
    // The daemon's job, mirrored, is the one returned: listed once, no local twin beside it.
    expect((await conn.jobs.list()).filter((j) => j.target.domain === "rc1").map((j) => j.id)).toEqual([job.id]);
    expect((await job.info()).bandwidth).toBe(MiB(512));
    await job.finalize();
    await job.wait();
    expect((await job.info()).state).toBe("completed");
    const [after] = await dom.disks();
    expect([after?.path, after?.backingChain]).toEqual([dest, []]);
    expect((await dom.config()).disks[0]?.path).toBe(dest);
    await dom.destroy();
    expect(backingOf(dest)).toBeUndefined();
    const verdict = verifyImage(dest, ref);
    expect(verdict.check, verdict.output).toBe(0);
    expect(verdict.compare, verdict.output).toBe(0);
  }, 120_000);

  it("aborts a copy in ready: the domain stays on its source, the copy is consistent", async () => {
    const { dom, overlay, ref, dir } = await running("rc2");
    const dest = join(dir, "point.raw");
    const job = await dom.blockCopy("vda", { destination: { path: dest }, format: "raw" });
    await ready(job);
    await expect(job.pause()).rejects.toMatchObject({ name: "StateError" });
    await job.abort();
    await expect(job.wait()).rejects.toMatchObject({ name: "JobError" });
    expect((await job.info()).state).toBe("aborted");
    expect((await dom.disks())[0]?.path).toBe(overlay);
    await dom.destroy();
    execFileSync("qemu-img", ["compare", "-f", "raw", "-F", "raw", dest, ref]);
  }, 120_000);

  it("commits the active image: ready, finalize() pivots onto the base, which holds what the disk read", async () => {
    const { dom, base, ref, overlay } = await running("rc3");
    // The daemon's live XML carries the chain, which core reads to resolve the commit's top and base.
    expect((await dom.disks())[0]?.backingChain).toEqual([{ path: base, format: "raw" }]);
    expect((await dom.config()).disks[0]?.path).toBe(overlay);
    const job = await dom.blockCommit("vda");
    expect(job.type).toBe("block-commit");
    await ready(job);
    expect((await conn.jobs.list()).filter((j) => j.target.domain === "rc3").map((j) => j.id)).toEqual([job.id]);
    await job.finalize();
    await job.wait();
    const [after] = await dom.disks();
    expect([after?.path, after?.backingChain]).toEqual([base, []]);
    await dom.destroy();
    execFileSync("qemu-img", ["compare", "-f", "raw", "-F", "raw", base, ref]);
  }, 120_000);

  it("runs jobs of a shut-off domain in the daemon: its XML shows the chain, an active commit pivots onto the base, a copy onto its destination", async () => {
    const set = new Scratch();
    sets.push(set);
    const { base, overlay, ref } = set.images(32);
    // Offline jobs work on images of an active pool (core's image engine reaches them through it).
    const pool = await conn.pools.define({ name: "rc5-pool", type: "dir", path: set.dir });
    await pool.start();
    const dom = await conn.domains.define(domainConfig("rc5", [{ target: "vda", path: overlay, format: "qcow2" }]));
    // virtkitd writes a shut-off domain's chains too (libvirt would not), so core resolves top and base.
    expect((await dom.disks())[0]?.backingChain).toEqual([{ path: base, format: "raw" }]);
    const commit = await dom.blockCommit("vda", { top: "vda[0]", base: "vda[1]" });
    expect(commit.type).toBe("block-commit");
    await ready(commit);
    // The daemon's offline job, mirrored: one job, under the daemon's id.
    expect((await conn.jobs.list()).filter((j) => j.target.domain === "rc5").map((j) => j.id)).toEqual([commit.id]);
    await commit.finalize();
    await commit.wait();
    expect((await dom.info()).state).toBe("shutoff");
    expect((await dom.config()).disks[0]?.path).toBe(base);
    execFileSync("qemu-img", ["compare", "-f", "raw", "-F", "raw", base, ref]);
    const dest = join(set.dir, "offline-copy.qcow2");
    // The disk is the raw base now: the copy is asked as qcow2, which qemu-img check can verify.
    const copy = await dom.blockCopy("vda", { destination: { path: dest }, format: "qcow2" });
    await ready(copy);
    await copy.finalize();
    await copy.wait();
    const [after] = await dom.disks();
    expect([after?.path, after?.backingChain]).toEqual([dest, []]);
    const verdict = verifyImage(dest, ref);
    expect(verdict.check, verdict.output).toBe(0);
    expect(verdict.compare, verdict.output).toBe(0);
  }, 120_000);

  it("copies into a pool volume the daemon creates, and an abort before ready leaves no volume behind", async () => {
    const { dom, dir } = await running("rc4");
    const pool = await conn.pools.define({ name: "rc4-pool", type: "dir", path: join(dir, "pool") });
    await pool.build();
    await pool.start();
    // A low cap keeps the copy from reaching ready before the abort.
    const job = await dom.blockCopy("vda", { destination: { pool: "rc4-pool", name: "copy.qcow2" }, bandwidth: MiB(1) });
    expect((await pool.volumes.list()).map((v) => v.name)).toEqual(["copy.qcow2"]);
    await job.abort();
    await expect(job.wait()).rejects.toMatchObject({ name: "JobError" });
    expect((await job.info()).state).toBe("aborted");
    await pool.refresh();
    expect((await pool.volumes.list()).map((v) => v.name)).toEqual([]);
    await dom.destroy();
  }, 120_000);
});
