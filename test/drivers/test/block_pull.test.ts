import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  ConflictError,
  connect,
  createVirtualClock,
  GiB,
  JobError,
  MiB,
  NotFoundError,
  UnsupportedError,
  type VirtualClock,
} from "../../../mod.ts";
import type { Connection } from "../../../core/connection.ts";
import type { Volume } from "../../../core/volume.ts";

const fixturePath = (name: string) => new URL(`../../fixtures/test_driver/${name}`, import.meta.url).pathname;
const fixtureUri = (name: string) => `test://${fixturePath(name)}`;

async function readRange(volume: Volume, offset: number, length: number): Promise<Uint8Array> {
  const job = await volume.download({ offset, length });
  const out = new Uint8Array(length);
  let at = 0;
  const reader = job.readable.getReader();
  for (let r = await reader.read(); !r.done; r = await reader.read()) {
    out.set(r.value, at);
    at += r.value.byteLength;
  }
  await job.wait();
  return out;
}

/** SHA-256 of the whole volume as the guest sees it, streamed through a download job. */
async function hashOf(volume: Volume): Promise<string> {
  const job = await volume.download();
  const hash = createHash("sha256");
  const reader = job.readable.getReader();
  for (let r = await reader.read(); !r.done; r = await reader.read()) hash.update(r.value);
  await job.wait();
  return hash.digest("hex");
}

/** A few ranges spread over the volume, read as hex so a mismatch prints short. */
async function samples(volume: Volume, capacityBytes: number): Promise<string[]> {
  const offsets = [0, MiB(1) - 512, capacityBytes / 2 - 100, capacityBytes / 3, capacityBytes - 4096];
  const out: string[] = [];
  for (const offset of offsets) {
    const bytes = await readRange(volume, Math.floor(offset), 4096);
    out.push(Array.from(bytes.subarray(0, 64), (b) => b.toString(16).padStart(2, "0")).join(""));
  }
  return out;
}

describe("blockPull on a 1 GiB all-data template (virtual clock)", () => {
  it("at 100 MiB/s: half at 5120 ms, not done at 10239 ms, done at 10240 ms, no backing after, same content", async () => {
    const clock = createVirtualClock();
    await using conn = await connect("test:///empty", { clock });
    await conn.testing!.load(JSON.parse(await readFile(fixturePath("pull_1gib.json"), "utf8")));
    const dom = await conn.domains.get("web1");
    const volume = await (await conn.pools.get("images")).volumes.get("web1.qcow2");
    expect((await volume.info()).allocationBytes).toBe(0);
    const before = await samples(volume, GiB(1));
    const hashBefore = await hashOf(volume);
    const start = clock.now();

    const job = await dom.blockPull("vda", { bandwidth: MiB(100) });
    expect(job.type).toBe("block-pull");
    expect(job.target).toEqual({ domain: "web1", disk: "vda", pool: "images", volume: "web1.qcow2" });
    await clock.advance(5120);
    const half = await job.info();
    expect(Math.abs(half.cur - MiB(512))).toBeLessThanOrEqual(MiB(1));
    expect(half.end).toBe(GiB(1));
    await clock.advance(10239 - 5120);
    expect((await job.info()).state).toBe("running");
    expect((await job.info()).cur).toBeLessThan(GiB(1));
    await clock.advance(1);
    const done = await job.info();
    expect(done.state).toBe("completed");
    expect(done.finishedAt! - start).toBe(10240);
    expect(done.cur).toBe(GiB(1));
    await job.wait();

    expect((await volume.info()).backing).toBeUndefined();
    expect((await volume.info()).allocationBytes).toBe(GiB(1));
    expect((await dom.disks())[0]!.backingChain).toEqual([]);
    expect(await samples(volume, GiB(1))).toEqual(before);
    expect(await hashOf(volume)).toBe(hashBefore);
  });
});

describe("blockPull controls (64 MiB template, virtual clock)", () => {
  let clock: VirtualClock;
  let conn: Connection;
  let volume: (name: string) => Promise<Volume>;
  beforeEach(async () => {
    clock = createVirtualClock();
    conn = await connect(fixtureUri("pull_small.json"), { clock });
    volume = async (name) => (await conn.pools.get("small")).volumes.get(name);
  });
  afterEach(() => conn.close());

  it("setSpeed() mid-pull changes the finish time", async () => {
    const job = await (await conn.domains.get("run1")).blockPull("vda", { bandwidth: MiB(16) });
    await clock.advance(1000);
    expect((await job.info()).cur).toBe(MiB(16));
    await job.setSpeed(MiB(48));
    expect((await job.info()).bandwidth).toBe(MiB(48));
    // 48 MiB left at 48 MiB/s: one more second, where 16 MiB/s would have needed three.
    await clock.advance(999);
    expect((await job.info()).state).toBe("running");
    await clock.advance(1);
    expect((await job.info()).state).toBe("completed");
    expect((await job.info()).finishedAt).toBeCloseTo(2000, 6);
  });

  it("pause() freezes cur; resume() carries on from there", async () => {
    const job = await (await conn.domains.get("run1")).blockPull("vda", { bandwidth: MiB(16) });
    await clock.advance(1000);
    await job.pause();
    const held = (await job.info()).cur;
    expect(held).toBeGreaterThanOrEqual(MiB(16));
    await clock.advance(3000);
    expect(await job.info()).toMatchObject({ state: "paused", cur: held });
    await job.resume();
    await clock.runUntilIdle();
    await job.wait();
    expect((await job.info()).cur).toBe(MiB(64));
    expect(await (await volume("run1.qcow2")).info()).not.toHaveProperty("backing");
  });

  it("abort() leaves the backing and the content; a new pull then finishes", async () => {
    const dom = await conn.domains.get("run1");
    const vol = await volume("run1.qcow2");
    const hashBefore = await hashOf(vol);
    const job = await dom.blockPull("vda", { bandwidth: MiB(16) });
    await clock.advance(1500);
    await job.abort();
    await clock.runUntilIdle();
    const error = await job.wait().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(JobError);
    expect((await job.info()).state).toBe("aborted");
    expect((await dom.disks())[0]!.backingChain).toEqual([{ path: "/small/base.img", format: "raw" }]);
    expect(await hashOf(vol)).toBe(hashBefore);
    expect(await dom.blockJob("vda")).toBeUndefined();

    const again = await dom.blockPull("vda");
    await again.wait();
    expect((await dom.disks())[0]!.backingChain).toEqual([]);
    expect(await hashOf(vol)).toBe(hashBefore);
  });

  it("failJob() at atBytes fails the pull there with the message; the data still reads the same through the backing", async () => {
    const dom = await conn.domains.get("run1");
    const vol = await volume("run1.qcow2");
    const hashBefore = await hashOf(vol);
    const failed = conn.events.next("job:failed");
    const job = await dom.blockPull("vda", { bandwidth: MiB(16) });
    conn.testing!.failJob(job.id, new Error("injected: disk on fire"), { atBytes: MiB(20) });
    await clock.runUntilIdle();
    const error = await job.wait().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(JobError);
    const info = await job.info();
    expect(info.state).toBe("failed");
    expect(info.error).toContain("injected: disk on fire");
    expect(info.cur).toBeGreaterThanOrEqual(MiB(20));
    expect(info.cur).toBeLessThanOrEqual(MiB(21));
    expect(clock.now()).toBeLessThan(2000);
    const event = await failed;
    expect([event.job.id, event.error]).toEqual([job.id, info.error]);
    expect((await vol.info()).backing).toEqual({ path: "/small/base.img", format: "raw" });
    expect(await hashOf(vol)).toBe(hashBefore);
  });

  it("works on a shut-off domain, which stays shut off", async () => {
    const dom = await conn.domains.get("off1");
    const vol = await volume("off1.qcow2");
    const before = await samples(vol, MiB(64));
    const job = await dom.blockPull("vda", { bandwidth: MiB(32) });
    await clock.advance(2000);
    await job.wait();
    expect((await dom.info()).state).toBe("shutoff");
    expect((await dom.disks())[0]!.backingChain).toEqual([]);
    expect(await samples(vol, MiB(64))).toEqual(before);
  });

  it("a second pull on the same disk, or another job on its volume, throws ConflictError naming the first", async () => {
    const dom = await conn.domains.get("run1");
    const job = await dom.blockPull("vda", { bandwidth: MiB(1) });
    const second = await dom.blockPull("vda").catch((e: unknown) => e);
    expect(second).toBeInstanceOf(ConflictError);
    expect((second as ConflictError).jobId).toBe(job.id);
    expect((second as Error).message).toContain(job.id);
    const wipe = await (await volume("run1.qcow2")).wipe().catch((e: unknown) => e);
    expect(wipe).toBeInstanceOf(ConflictError);
    expect((await dom.blockJob("vda"))?.id).toBe(job.id);
    await job.abort();
  });

  it("undefine() of a shut-off domain whose disk is being pulled is refused until the job ends", async () => {
    const dom = await conn.domains.get("off1");
    const job = await dom.blockPull("vda", { bandwidth: MiB(64) });
    const error = await dom.undefine().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConflictError);
    expect((error as ConflictError).jobId).toBe(job.id);
    await clock.advance(1000);
    await job.wait();
    await dom.undefine();
    expect((await conn.domains.list()).map((d) => d.name)).not.toContain("off1");
  });

  it("base keeps the named layer: top is pulled from mid only, and reads the same", async () => {
    const dom = await conn.domains.get("chain");
    const top = await volume("top.qcow2");
    expect((await dom.disks())[0]!.backingChain.map((l) => l.path)).toEqual(["/small/mid.qcow2", "/small/base.img"]);
    const hashBefore = await hashOf(top);
    const job = await dom.blockPull("vda", { base: "/small/base.img" });
    await job.wait();
    expect((await dom.disks())[0]!.backingChain).toEqual([{ path: "/small/base.img", format: "raw" }]);
    expect((await top.info()).backing).toEqual({ path: "/small/base.img", format: "raw" });
    // Only mid's own 8 MiB came up (top already had its first MiB of its own).
    expect((await top.info()).allocationBytes).toBe(MiB(9));
    expect(await hashOf(top)).toBe(hashBefore);
  });

  it("a base that is not in the chain is a NotFoundError", async () => {
    const error = await (await conn.domains.get("chain")).blockPull("vda", { base: "/small/run1.qcow2" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NotFoundError);
    expect(await conn.jobs.list()).toEqual([]);
  });

  it("an unknown disk is a NotFoundError for the disk; a host-path disk is unsupported", async () => {
    const dom = await conn.domains.get("run1");
    const unknown = await dom.blockPull("vdz").catch((e: unknown) => e);
    expect(unknown).toBeInstanceOf(NotFoundError);
    expect(unknown).toMatchObject({ objectType: "disk", objectName: "vdz" });
    expect((unknown as Error).message).toContain('domain "run1"');
    const hostPath = await dom.blockPull("vdb").catch((e: unknown) => e);
    expect(hostPath).toBeInstanceOf(UnsupportedError);
    expect((hostPath as Error).message).toContain("/srv/iso/install.iso");
    await expect(conn.domains.get("nope").then((d) => d.blockPull("vda"))).rejects.toBeInstanceOf(NotFoundError);
  });

  it("the job is listed with its domain and emits job:completed", async () => {
    const completed = conn.events.next("job:completed");
    const job = await (await conn.domains.get("run1")).blockPull("vda", { bandwidth: MiB(64) });
    expect((await conn.jobs.list({ domain: "run1" })).map((j) => j.id)).toEqual([job.id]);
    await clock.advance(1000);
    expect((await completed).job).toMatchObject({ id: job.id, type: "block-pull", state: "completed", cur: MiB(64) });
  });
});
