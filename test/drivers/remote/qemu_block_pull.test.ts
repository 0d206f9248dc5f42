/**
 * Block pull through the remote driver against a real libvirtd 9.0 driving real QEMU: a domain defined
 * through virtkit on a qcow2 overlay over a raw template, started, pulled with a cap that is raised
 * mid-way; the job is in `conn.jobs` with progress events, its completion comes from libvirt's
 * BLOCK_JOB_2 event; afterwards the overlay has no backing file (`qemu-img info`) and the guest sees the
 * same bytes (`qemu-img compare` against the template). Also: abort, and an unknown disk.
 */
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, MiB } from "../../../mod.ts";
import type { Connection } from "../../../core/connection.ts";
import { type RunningLibvirtd, skipLibvirtd, startLibvirtd } from "../../_support/libvirtd.ts";
import { missingTools } from "../qemu/_support.ts";
import { giveToLibvirtd, patternedBase, removeDomainsAndClose } from "./_libvirtd_images.ts";

const skip = skipLibvirtd || (missingTools.length > 0 && process.env.CI !== "true");
const BASE_MIB = 48;

describe.skipIf(skip)("remote driver -> libvirtd qemu driver: block pull", () => {
  let daemon: RunningLibvirtd;
  let conn: Connection;
  let images: string;
  const overlay = (name: string) => {
    const path = join(images, `${name}.qcow2`);
    execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", "-b", join(images, "base.raw"), "-F", "raw", path]);
    return giveToLibvirtd(path);
  };
  const define = async (name: string) => {
    const path = overlay(name);
    const dom = await conn.domains.define({ name, vcpus: 1, memoryBytes: MiB(64), machine: "q35", disks: [{ target: "vda", path, format: "qcow2" }] });
    await dom.start();
    return { dom, path };
  };

  beforeAll(async () => {
    daemon = await startLibvirtd({ driver: "qemu" });
    images = daemon.mkdir("images");
    patternedBase(join(images, "base.raw"), BASE_MIB);
    conn = await connect(daemon.uri("qemu"));
  }, 60_000);
  afterAll(async () => {
    await removeDomainsAndClose(conn);
    await daemon?.stop();
  }, 60_000);

  it("pulls with a cap raised mid-way, completes from the event, and leaves the same guest bytes with no backing", async () => {
    const { dom, path } = await define("pull1");
    const disks = await dom.disks();
    expect(disks[0]).toMatchObject({ target: "vda", path, format: "qcow2", backingChain: [{ path: join(images, "base.raw"), format: "raw" }] });
    const progress: number[] = [];
    const off = conn.events.on("job:progress", (e) => void progress.push(e.job.cur));
    const job = await dom.blockPull("vda", { bandwidth: MiB(8) });
    expect((await conn.jobs.list({ domain: "pull1" })).map((j) => j.id)).toEqual([job.id]);
    expect((await dom.blockJob("vda"))?.id).toBe(job.id);
    // Raise the cap once libvirt reports progress: the rest goes at the new speed.
    const deadline = Date.now() + 30_000;
    while ((await job.info()).cur === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    // libvirt holds the cap in bytes/s as sent (BANDWIDTH_BYTES), virsh reads it back.
    expect(daemon.virsh(["blockjob", "pull1", "vda", "--info"])).toContain(`Bandwidth limit: ${MiB(8)} bytes/s`);
    await job.setSpeed(MiB(512));
    expect((await job.info()).bandwidth).toBe(MiB(512));
    let completedAt = 0;
    conn.events.once("job:completed", () => void (completedAt = performance.now()));
    await job.wait();
    const waitedAt = performance.now();
    off();
    const info = await job.info();
    expect(info.state).toBe("completed");
    expect(info.cur).toBe(info.end);
    expect(info.end).toBe(MiB(BASE_MIB));
    expect(progress.length).toBeGreaterThan(0);
    expect(waitedAt - completedAt).toBeLessThan(50);
    // Finished jobs stay listed until dismissed.
    const listed = await conn.jobs.list({ domain: "pull1" });
    expect(await Promise.all(listed.map(async (j) => (await j.info()).state))).toEqual(["completed"]);
    await job.dismiss();
    expect(await conn.jobs.list({ domain: "pull1" })).toEqual([]);
    expect((await dom.disks())[0]?.backingChain).toEqual([]);
    await dom.destroy();
    const qemuInfo = JSON.parse(execFileSync("qemu-img", ["info", "--output=json", path], { encoding: "utf8" })) as Record<string, unknown>;
    expect(qemuInfo["backing-filename"]).toBeUndefined();
    execFileSync("qemu-img", ["compare", "-f", "qcow2", "-F", "raw", path, join(images, "base.raw")]);
  }, 90_000);

  it("aborts a capped pull: the job ends aborted and the backing stays", async () => {
    const { dom, path } = await define("pull2");
    const job = await dom.blockPull("vda", { bandwidth: MiB(1) });
    await job.abort();
    await expect(job.wait()).rejects.toThrow();
    expect((await job.info()).state).toBe("aborted");
    await expect(job.pause()).rejects.toMatchObject({ code: expect.stringMatching(/unsupported|invalid-state/) });
    expect((await dom.disks())[0]?.backingChain).toHaveLength(1);
    await dom.destroy();
    expect(JSON.parse(execFileSync("qemu-img", ["info", "--output=json", path], { encoding: "utf8" }))["backing-filename"]).toBe(join(images, "base.raw"));
  }, 60_000);

  it("refuses pause and resume of a running pull with UnsupportedError", async () => {
    const { dom } = await define("pull3");
    const job = await dom.blockPull("vda", { bandwidth: MiB(1) });
    try {
      await expect(job.pause()).rejects.toMatchObject({ name: "UnsupportedError" });
    } finally {
      await job.abort();
      await dom.destroy();
    }
  }, 60_000);

  it("rejects a pull of a disk the domain does not have", async () => {
    const dom = (await conn.domains.list()).find((d) => d.name === "pull3")!;
    await dom.start();
    const error = await dom.blockPull("vdz").catch((e: unknown) => e);
    expect(error).toMatchObject({ name: "NotFoundError", objectType: "disk", objectName: "vdz" });
    await expect(dom.blockPull("vda", { base: "/not/in/chain.raw" })).rejects.toMatchObject({ name: "NotFoundError", objectName: "/not/in/chain.raw" });
    expect(await conn.jobs.list({ domain: "pull3", state: ["running", "created"] })).toEqual([]);
    await dom.destroy();
  }, 60_000);
});
