/**
 * Block pull on real QEMU: every job verb on a capped stream, the image afterwards checked by
 * `qemu-img check` and `qemu-img compare`, abort and a second pull, `base`, conflicts, QEMU killed
 * mid-pull, and re-attaching to a running pull from a new connection.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { afterEach, describe, expect, it } from "vitest";
import { ConflictError, JobError, NotFoundError, StateError, UnsupportedError } from "../../../core/errors.ts";
import type { Connection } from "../../../core/connection.ts";
import type { Domain } from "../../../core/domain.ts";
import type { Job } from "../../../core/job.ts";
import { backingOf, domainConfig, MiB, Scratch, skipReal, until, verifyImage } from "./_support.ts";
import { execFileSync } from "node:child_process";

const scratches: Scratch[] = [];
afterEach(async () => {
  for (const s of scratches.splice(0)) await s.cleanup();
});

async function running(sizeMiB = 64): Promise<{ s: Scratch; conn: Connection; dom: Domain; overlay: string; ref: string; base: string }> {
  const s = new Scratch();
  scratches.push(s);
  const { overlay, ref, base } = s.images(sizeMiB);
  const conn = await s.connect();
  const dom = await conn.domains.define(domainConfig("pull", [{ target: "vda", path: overlay, format: "qcow2" }]));
  await dom.start();
  return { s, conn, dom, overlay, ref, base };
}

async function progressed(job: Job, atLeast: number): Promise<void> {
  await until(async () => (await job.info()).cur >= atLeast, `job ${job.id} to pass ${atLeast} bytes`);
}

describe("qemu driver: block pull on real QEMU", () => {
  it.skipIf(skipReal)("pulls the backing data in: the disk has no backing, the image checks clean and reads as before", async () => {
    const { conn, dom, overlay, ref, base } = await running();
    expect((await dom.disks())[0]).toMatchObject({ target: "vda", path: overlay, format: "qcow2", backingChain: [{ path: base, format: "raw" }] });
    const events: string[] = [];
    conn.events.on("job:*", (e) => events.push(`${e.type}:${e.job.state}`));
    const job = await dom.blockPull("vda");
    expect(job.type).toBe("block-pull");
    expect(job.target).toEqual({ domain: "pull", disk: "vda" });
    await job.wait();
    const info = await job.info();
    expect([info.state, info.cur, info.end]).toEqual(["completed", 64 * MiB, 64 * MiB]);
    expect(events[0]).toBe("job:created:created");
    expect(events.slice(-2)).toEqual(["job:state:completed", "job:completed:completed"]);
    expect((await dom.disks())[0]?.backingChain).toEqual([]);
    expect(backingOf(overlay)).toBeUndefined();
    expect(await dom.blockJob("vda")).toBeUndefined();
    await dom.destroy();
    expect(verifyImage(overlay, ref)).toMatchObject({ check: 0, compare: 0 });
    // The shut-off domain reads its chain from the image header, which agrees.
    expect((await dom.disks())[0]?.backingChain).toEqual([]);
  });

  it.skipIf(skipReal)("setSpeed, pause, resume on a capped pull; a second pull on the disk is a ConflictError", async () => {
    const { dom, overlay, ref } = await running();
    const job = await dom.blockPull("vda", { bandwidth: 8 * MiB });
    expect((await job.info()).bandwidth).toBe(8 * MiB);
    expect((await dom.blockJob("vda"))?.id).toBe(job.id);
    const conflict = await dom.blockPull("vda").catch((e: unknown) => e);
    expect(conflict).toBeInstanceOf(ConflictError);
    expect((conflict as Error).message).toContain(job.id);
    await expect(dom.blockPull("vdz")).rejects.toBeInstanceOf(NotFoundError);
    await progressed(job, 5 * MiB);
    await job.setSpeed(4 * MiB);
    expect((await job.info()).bandwidth).toBe(4 * MiB);
    await job.pause();
    expect((await job.info()).state).toBe("paused");
    await expect(job.pause()).rejects.toBeInstanceOf(StateError);
    const held = (await job.info()).cur;
    // QEMU stops at its next pause point; allow it one in-flight chunk (512 KiB), then it must stand still.
    const settled = held;
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await job.info()).cur - settled).toBeLessThanOrEqual(MiB);
    await job.resume();
    expect((await job.info()).state).toBe("running");
    await job.setSpeed(0);
    await job.wait();
    await expect(job.setSpeed(1)).rejects.toBeInstanceOf(StateError);
    await job.dismiss();
    await expect(job.dismiss()).rejects.toBeInstanceOf(NotFoundError);
    await dom.destroy();
    expect(verifyImage(overlay, ref)).toMatchObject({ check: 0, compare: 0 });
  });

  it.skipIf(skipReal)("abort() ends the pull aborted and leaves a valid image, which a new pull finishes", async () => {
    const { dom, overlay, ref, base } = await running();
    const job = await dom.blockPull("vda", { bandwidth: 8 * MiB });
    await progressed(job, 6 * MiB);
    await job.abort();
    expect((await job.info()).state).toBe("aborted");
    await expect(job.wait()).rejects.toBeInstanceOf(JobError);
    expect((await dom.disks())[0]?.backingChain).toEqual([{ path: base, format: "raw" }]);
    expect(backingOf(overlay)).toBe(base);
    const again = await dom.blockPull("vda");
    await again.wait();
    await dom.destroy();
    expect(backingOf(overlay)).toBeUndefined();
    expect(verifyImage(overlay, ref)).toMatchObject({ check: 0, compare: 0 });
  });

  it.skipIf(skipReal)("aborting a paused pull ends it aborted", async () => {
    const { dom } = await running();
    const job = await dom.blockPull("vda", { bandwidth: 4 * MiB });
    await job.pause();
    await job.abort();
    expect((await job.info()).state).toBe("aborted");
    await dom.destroy();
  });

  it.skipIf(skipReal)("base keeps the named layer: only the layers above it are pulled", async () => {
    const s = new Scratch();
    scratches.push(s);
    const { overlay } = s.images(16);
    const top = join(s.dir, "top.qcow2");
    execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", "-b", overlay, "-F", "qcow2", top]);
    execFileSync("qemu-io", ["-f", "qcow2", "-c", "write -q -P 0x77 8M 1M", top]);
    const ref = join(s.dir, "top-ref.raw");
    execFileSync("qemu-img", ["convert", "-O", "raw", top, ref]);
    const conn = await s.connect();
    const dom = await conn.domains.define(domainConfig("three", [{ target: "vdb", path: top }]));
    await dom.start();
    expect((await dom.disks())[0]?.backingChain.length).toBe(2);
    const base = (await dom.disks())[0]!.backingChain[1]!.path;
    await expect(dom.blockPull("vdb", { base: "/not/in/chain" })).rejects.toBeInstanceOf(NotFoundError);
    const job = await dom.blockPull("vdb", { base });
    await job.wait();
    expect((await dom.disks())[0]?.backingChain).toEqual([{ path: base, format: "raw" }]);
    await dom.destroy();
    expect(backingOf(top)).toBe(base);
    expect(verifyImage(top, ref)).toMatchObject({ check: 0, compare: 0 });
  });

  it.skipIf(skipReal)("destroy() during a pull: QEMU cancels it, the job ends aborted before domain:stopped", async () => {
    const { conn, dom, overlay } = await running();
    const job = await dom.blockPull("vda", { bandwidth: 4 * MiB });
    await progressed(job, MiB);
    const events: string[] = [];
    conn.events.on("*", (e) => {
      if (e.type === "job:state" || e.type === "job:aborted" || e.type === "domain:stopped") events.push(`${e.type}${"job" in e ? `:${e.job.state}` : ""}`);
    });
    await dom.destroy();
    expect((await job.info()).state).toBe("aborted");
    expect(events).toEqual(["job:state:aborted", "job:aborted:aborted", "domain:stopped"]);
    expect(execFileSync("qemu-img", ["check", "-q", overlay]).length).toBe(0);
  });

  it.skipIf(skipReal)("QEMU killed mid-pull: the job fails within a second with a message, the domain is crashed", async () => {
    const { s, conn, dom, overlay } = await running();
    const job = await dom.blockPull("vda", { bandwidth: 4 * MiB });
    await progressed(job, MiB);
    const events: string[] = [];
    conn.events.on("*", (e) => events.push(e.type));
    const { pid } = JSON.parse(readFileSync(join(s.stateDir, "run", "pull.json"), "utf8")) as { pid: number };
    const killedAt = Date.now();
    process.kill(pid, "SIGKILL");
    const error = await job.wait().catch((e: unknown) => e);
    expect(Date.now() - killedAt).toBeLessThan(1000);
    expect(error).toBeInstanceOf(JobError);
    const info = await job.info();
    expect(info.state).toBe("failed");
    expect(info.error).toMatch(/Block pull of disk "vda" of domain "pull" failed: QEMU \(pid \d+\) was killed by SIGKILL/);
    expect(events).toContain("job:failed");
    expect(events).toContain("domain:crashed");
    expect((await dom.info()).state).toBe("crashed");
    // The half-pulled image is still consistent.
    expect(execFileSync("qemu-img", ["check", "-q", overlay]).length).toBe(0);
  });

  it.skipIf(skipReal)("a new connection re-attaches a running pull under its id and finishes it", async () => {
    const { s, conn, dom, overlay, ref } = await running();
    const job = await dom.blockPull("vda", { bandwidth: 8 * MiB });
    await progressed(job, 2 * MiB);
    await conn.close();
    const second = await s.connect();
    const [again] = await second.jobs.list();
    expect(again?.id).toBe(job.id);
    expect(again?.target).toEqual({ domain: "pull", disk: "vda" });
    const info = await again!.info();
    expect(info.state).toBe("running");
    expect(info.bandwidth).toBe(8 * MiB);
    expect(info.cur).toBeGreaterThan(0);
    const dom2 = await second.domains.get("pull");
    await expect(dom2.blockPull("vda")).rejects.toBeInstanceOf(ConflictError);
    await again!.setSpeed(0);
    await again!.wait();
    expect((await dom2.disks())[0]?.backingChain).toEqual([]);
    await again!.dismiss();
    await dom2.destroy();
    expect(verifyImage(overlay, ref)).toMatchObject({ check: 0, compare: 0 });
    void dom;
  });

  it.skipIf(skipReal)("disks on dir pool volumes: offline pull through the storage layer, online through QEMU", async () => {
    const s = new Scratch();
    scratches.push(s);
    const { base: baseFile, ref } = s.images(16);
    const conn = await s.connect();
    const pool = await conn.pools.create({ name: "images", type: "dir", path: join(s.dir, "pool") });
    const base = await pool.volumes.create({ name: "base.raw", capacityBytes: 16 * MiB, format: "raw" });
    execFileSync("qemu-img", ["convert", "-n", "-O", "raw", baseFile, base.path]);
    const tops = [];
    for (const name of ["offline.qcow2", "online.qcow2"]) {
      const top = await pool.volumes.create({ name, capacityBytes: 16 * MiB, format: "qcow2", backing: { path: base.path, format: "raw" } });
      execFileSync("qemu-io", ["-f", "qcow2", "-c", "write -q -P 0xab 0 4M", "-c", "write -q -P 0xcd 8M 1M", top.path]);
      tops.push(top);
    }
    const [offline, online] = tops as [typeof tops[0], typeof tops[0]];
    const dom = await conn.domains.define(domainConfig("pooled", [
      { target: "vda", volume: { pool: "images", name: "offline.qcow2" }, format: "qcow2" },
      { target: "vdb", volume: { pool: "images", name: "online.qcow2" }, format: "qcow2" },
    ]));
    const cold = await dom.blockPull("vda");
    expect(cold.target).toEqual({ domain: "pooled", disk: "vda", pool: "images", volume: "offline.qcow2" });
    await expect(dom.start()).rejects.toBeInstanceOf(ConflictError);
    await cold.wait();
    expect((await offline.info()).backing).toBeUndefined();
    expect(verifyImage(offline.path, ref)).toMatchObject({ check: 0, compare: 0 });
    await dom.start();
    const disks = await dom.disks();
    expect(disks.map((d) => d.backingChain.length)).toEqual([0, 1]);
    expect(disks[1]).toMatchObject({ path: online.path, volume: { pool: "images", name: "online.qcow2" } });
    const hot = await dom.blockPull("vdb");
    expect(hot.target).toEqual({ domain: "pooled", disk: "vdb", pool: "images", volume: "online.qcow2" });
    await hot.wait();
    await dom.destroy();
    expect((await online.info()).backing).toBeUndefined();
    expect(verifyImage(online.path, ref)).toMatchObject({ check: 0, compare: 0 });
  });

  it.skipIf(skipReal)("a pull on a shut-off domain's host-path disk is unsupported; a running domain keeps no job", async () => {
    const s = new Scratch();
    scratches.push(s);
    const { overlay } = s.images(8);
    const conn = await s.connect();
    const dom = await conn.domains.define(domainConfig("off", [{ target: "vda", path: overlay }]));
    await expect(dom.blockPull("vda")).rejects.toBeInstanceOf(UnsupportedError);
    expect(await conn.jobs.list()).toEqual([]);
  });
});
