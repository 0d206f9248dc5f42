import { describe, expect, it } from "vitest";
import { ConflictError, JobError, NotFoundError, UnsupportedError } from "../../../core/errors.ts";
import type { Job } from "../../../core/job.ts";
import type { StoragePool } from "../../../core/storage_pool.ts";
import { startPullJob } from "../../../core/storage/volume_jobs.ts";
import { KiB, MiB } from "../../../core/units.ts";
import type { Volume } from "../../../core/volume.ts";
import { contents, fill, firstDifference, type Harness, harness, settle, storeOf } from "./_memory_backend.ts";

/**
 * base (raw, 4 MiB) <- mid (qcow2) <- top (qcow2), with data in every layer; mid also has a zero cluster
 * and a data cluster holding zeros, both over base's data.
 */
async function chain(): Promise<{ h: Harness; pool: StoragePool; base: Volume; mid: Volume; top: Volume }> {
  const h = harness();
  const pool = await h.manager.pools.create({ name: "images", type: "mem" });
  const base = await pool.volumes.create({ name: "base", capacityBytes: MiB(4) });
  const mid = await pool.volumes.create({ name: "mid", capacityBytes: MiB(4), format: "qcow2", backing: { path: base.path, format: "raw" } });
  const top = await pool.volumes.create({ name: "top", capacityBytes: MiB(4), format: "qcow2", backing: { path: mid.path, format: "qcow2" } });
  fill(storeOf(h.backend, "images", "base"), 0, MiB(2), 1);
  fill(storeOf(h.backend, "images", "mid"), MiB(1), KiB(64), 2);
  storeOf(h.backend, "images", "mid").writeZeroesAt(KiB(512), KiB(64));
  storeOf(h.backend, "images", "mid").writeAt(KiB(256), new Uint8Array(KiB(4)));
  fill(storeOf(h.backend, "images", "top"), MiB(3), KiB(8), 3);
  return { h, pool, base, mid, top };
}

async function failure(job: Job<unknown>): Promise<JobError> {
  const error = await job.wait().catch((e: unknown) => e);
  expect(error).toBeInstanceOf(JobError);
  return error as JobError;
}

describe("clone", () => {
  it("makes a flattened, sparse, identical copy and resolves to the new volume", async () => {
    const { h, pool, top } = await chain();
    const before = contents(storeOf(h.backend, "images", "top"));
    const job = await pool.volumes.clone(top, { name: "copy", format: "raw" });
    expect([job.type, job.target]).toEqual(["volume-clone", { pool: "images", volume: "copy" }]);
    const copy = await settle(h.clock, job.wait());
    expect([copy.name, copy.pool]).toEqual(["copy", "images"]);
    const store = storeOf(h.backend, "images", "copy");
    expect(firstDifference(contents(store), before)).toBe(-1);
    expect(store.backing).toBeUndefined();
    // Data only: 2 MiB of base (minus what mid zeroes) + top's 8 KiB; all-zero chunks stay holes.
    expect(store.allocationBytes).toBe(MiB(2) - KiB(64) - KiB(4) + KiB(8));
    expect((await copy.info()).format).toBe("raw");
    const info = await job.info();
    expect([info.state, info.cur, info.end]).toEqual(["completed", MiB(4), MiB(4)]);
  });

  it("copies across pools and keeps the source's format by default", async () => {
    const { h, top } = await chain();
    const other = await h.manager.pools.create({ name: "other", type: "mem" });
    const copy = await settle(h.clock, (await other.volumes.clone(top, { name: "copy" })).wait());
    expect(copy.pool).toBe("other");
    expect((await copy.info()).format).toBe("qcow2");
    expect(firstDifference(contents(storeOf(h.backend, "other", "copy")), contents(storeOf(h.backend, "images", "top")))).toBe(-1);
  });

  it("an aborted clone leaves no target behind", async () => {
    const { h, pool, top } = await chain();
    const job = await pool.volumes.clone(top, { name: "copy", bandwidth: MiB(1) });
    await h.clock.advance(1000);
    expect((await job.info()).cur).toBeGreaterThan(0);
    await job.abort();
    const error = await settle(h.clock, failure(job));
    expect(error.info.state).toBe("aborted");
    expect((await pool.volumes.list()).map((v) => v.name)).toEqual(["base", "mid", "top"]);
    expect(h.seen("volume:")).toContain("volume:deleted images/copy");
  });

  it("a failed clone leaves no target behind", async () => {
    const { h, pool, top } = await chain();
    const job = await pool.volumes.clone(top, { name: "copy", bandwidth: MiB(1) });
    h.jobs.injectFailure(job.id, new Error("disk full"), { atBytes: MiB(1) });
    const error = await settle(h.clock, failure(job));
    expect([error.info.state, error.info.error]).toEqual(["failed", "disk full"]);
    await expect(pool.volumes.get("copy")).rejects.toBeInstanceOf(NotFoundError);
  });

  it("checks its arguments before creating anything", async () => {
    const { h, pool, top } = await chain();
    await expect(pool.volumes.clone(top, { name: "a/b" })).rejects.toBeInstanceOf(TypeError);
    await expect(pool.volumes.clone(top, { name: "c", format: "vmdk" as "raw" })).rejects.toBeInstanceOf(TypeError);
    await expect(pool.volumes.clone(top, { name: "c", bandwidth: -1 })).rejects.toBeInstanceOf(RangeError);
    await expect(pool.volumes.clone(null as unknown as Volume, { name: "c" })).rejects.toBeInstanceOf(TypeError);
    await expect(pool.volumes.clone(top, { name: "mid" })).rejects.toBeInstanceOf(ConflictError);
    const ghost = { ...top, name: "ghost" } as Volume;
    await expect(pool.volumes.clone(ghost, { name: "c" })).rejects.toBeInstanceOf(NotFoundError);
    expect((await pool.volumes.list()).map((v) => v.name)).toEqual(["base", "mid", "top"]);
    expect(await h.jobs.list()).toEqual([]);
  });

  it("protects its source: no writer, no delete, no pool stop while it reads", async () => {
    const { h, pool, top } = await chain();
    const job = await pool.volumes.clone(top, { name: "copy", bandwidth: MiB(1) });
    const wipe = await top.wipe().catch((e: unknown) => e);
    expect(wipe).toBeInstanceOf(ConflictError);
    expect((wipe as ConflictError).jobId).toBe(job.id);
    await expect(top.delete()).rejects.toThrow(`job "${job.id}" is using it`);
    await expect(pool.stop()).rejects.toBeInstanceOf(ConflictError);
    await settle(h.clock, job.wait());
    await settle(h.clock, (await top.wipe()).wait());
  });
});

describe("allocate", () => {
  it("fills holes with backing data or allocated zeros, leaving content unchanged", async () => {
    const { h, top } = await chain();
    const before = contents(storeOf(h.backend, "images", "top"));
    const job = await top.allocate();
    expect(job.type).toBe("volume-allocate");
    await settle(h.clock, job.wait());
    const store = storeOf(h.backend, "images", "top");
    expect(store.allocationBytes).toBe(MiB(4));
    expect(firstDifference(contents(store), before)).toBe(-1);
    expect((await top.info()).backing?.path).toBe("/mem/images/mid");
  });

  it("allocates a range only", async () => {
    const { h, top } = await chain();
    await settle(h.clock, (await top.allocate({ offset: MiB(1), length: MiB(1) })).wait());
    const store = storeOf(h.backend, "images", "top");
    expect(store.allocationBytes).toBe(MiB(1) + KiB(8));
    expect(store.mapExtents(MiB(1), MiB(1))).toEqual([{ offset: MiB(1), length: MiB(1), data: true, zero: false, depth: 0 }]);
  });

  it.each([
    { options: { offset: -1 }, error: RangeError },
    { options: { length: MiB(5) }, error: RangeError },
    { options: { offset: MiB(4) + 1 }, error: RangeError },
    { options: { offset: MiB(3), length: MiB(2) }, error: RangeError },
    { options: { bandwidth: 0.5 }, error: RangeError },
    { options: { length: "1" }, error: TypeError },
  ])("rejects %j", async ({ options, error }) => {
    const { h, top } = await chain();
    await expect(top.allocate(options as { offset?: number })).rejects.toBeInstanceOf(error);
    expect(await h.jobs.list()).toEqual([]);
  });
});

describe("pull", () => {
  it("copies the chain in and drops the backing; content is preserved", async () => {
    const { h, top } = await chain();
    const before = contents(storeOf(h.backend, "images", "top"));
    const job = await top.pull();
    expect([job.type, job.target]).toEqual(["volume-pull", { pool: "images", volume: "top" }]);
    await settle(h.clock, job.wait());
    const store = storeOf(h.backend, "images", "top");
    expect(store.backing).toBeUndefined();
    expect((await top.info()).backing).toBeUndefined();
    expect(firstDifference(contents(store), before)).toBe(-1);
    expect(store.allocationBytes).toBe(MiB(2) - KiB(64) - KiB(4) + KiB(8));
  });

  it("an aborted pull keeps the backing; a second pull finishes", async () => {
    const { h, top } = await chain();
    const before = contents(storeOf(h.backend, "images", "top"));
    const job = await top.pull({ bandwidth: MiB(1) });
    await h.clock.advance(1000);
    await job.abort();
    expect((await settle(h.clock, failure(job))).info.state).toBe("aborted");
    expect((await top.info()).backing?.path).toBe("/mem/images/mid");
    expect(firstDifference(contents(storeOf(h.backend, "images", "top")), before)).toBe(-1);
    await settle(h.clock, (await top.pull()).wait());
    expect((await top.info()).backing).toBeUndefined();
    expect(firstDifference(contents(storeOf(h.backend, "images", "top")), before)).toBe(-1);
  });

  it("with a base, pulls only the layers above it and re-points the backing at it", async () => {
    const { h, base, top } = await chain();
    const before = contents(storeOf(h.backend, "images", "top"));
    await settle(h.clock, (await top.pull({ base: base.path })).wait());
    const store = storeOf(h.backend, "images", "top");
    expect(store.backing).toEqual({ path: base.path, format: "raw" });
    expect(firstDifference(contents(store), before)).toBe(-1);
    // mid's data and its zero cluster (over base's data) came up; base's data did not.
    expect(store.mapExtents(KiB(512), KiB(64))).toEqual([{ offset: KiB(512), length: KiB(64), data: false, zero: true, depth: 0 }]);
    expect(store.mapExtents(KiB(256), KiB(4))).toEqual([{ offset: KiB(256), length: KiB(4), data: false, zero: true, depth: 0 }]);
    expect(store.mapExtents(MiB(1), KiB(64))[0]).toMatchObject({ data: true, depth: 0 });
    expect(store.mapExtents(0, KiB(64))[0]).toMatchObject({ data: true, depth: 1 });
    // base given by key works too, and the immediate backing as base changes nothing.
    await settle(h.clock, (await top.pull({ base: base.key })).wait());
    expect(store.backing?.path).toBe(base.path);
  });

  it("a base outside the chain is NotFoundError; a bad base TypeError", async () => {
    const { h, top } = await chain();
    await expect(top.pull({ base: "/elsewhere" })).rejects.toThrow(
      'Cannot find volume "/elsewhere": it is not in the backing chain of volume "top" in pool "images"',
    );
    await expect(top.pull({ base: 5 as unknown as string })).rejects.toBeInstanceOf(TypeError);
    expect(await h.jobs.list()).toEqual([]);
  });

  it("a volume without backing completes at once", async () => {
    const { h, base } = await chain();
    const job = await base.pull();
    await settle(h.clock, job.wait());
    expect(firstDifference(contents(storeOf(h.backend, "images", "base")).subarray(0, 4), new Uint8Array([1, 1, 1, 1]))).toBe(-1);
  });

  it("a backing the backend cannot change is UnsupportedError", async () => {
    const { h, top } = await chain();
    // The test backend gives raw handles no setBacking.
    (h.backend.pools.get("images")!.get("top") as { format: string }).format = "raw";
    await expect(top.pull()).rejects.toBeInstanceOf(UnsupportedError);
  });

  it("startPullJob checks its pool, volume and locks", async () => {
    const { h } = await chain();
    const env = { access: h.manager.access, jobs: h.jobs };
    await expect(startPullJob({ ...env, pool: "nope", volume: "top" })).rejects.toThrow('Cannot find pool "nope"');
    await expect(startPullJob({ ...env, pool: "images", volume: "ghost" })).rejects.toBeInstanceOf(NotFoundError);
    await expect(startPullJob({ ...env, pool: "images", volume: "../top" })).rejects.toBeInstanceOf(TypeError);
    await expect(startPullJob({ ...env, pool: "images", volume: "top", locks: [""] })).rejects.toBeInstanceOf(TypeError);
    await expect(startPullJob({ ...env, pool: "images", volume: "top", bandwidth: -1 })).rejects.toBeInstanceOf(RangeError);
    expect(await h.jobs.list()).toEqual([]);
  });

  it("startPullJob serves block pulls: its own type, target and extra locks", async () => {
    const { h, top } = await chain();
    const job = await startPullJob({
      access: h.manager.access, jobs: h.jobs, pool: "images", volume: "top", type: "block-pull",
      target: { domain: "web1", disk: "vda", pool: "images", volume: "top" }, locks: ["disk:web1/vda"], bandwidth: MiB(1),
    });
    expect([job.type, job.target]).toEqual(["block-pull", { domain: "web1", disk: "vda", pool: "images", volume: "top" }]);
    expect(h.jobs.holder("disk:web1/vda")).toBe(job.id);
    expect(h.jobs.holder(top.key)).toBe(job.id);
    const second = await top.pull().catch((e: unknown) => e);
    expect((second as ConflictError).jobId).toBe(job.id);
    await settle(h.clock, job.wait());
    expect((await top.info()).backing).toBeUndefined();
  });
});

describe("wipe", () => {
  it("makes every byte read zero without touching the backing", async () => {
    const { h, top } = await chain();
    const baseBefore = contents(storeOf(h.backend, "images", "base"));
    const job = await top.wipe();
    expect(job.type).toBe("volume-wipe");
    await settle(h.clock, job.wait());
    expect(firstDifference(contents(storeOf(h.backend, "images", "top")), new Uint8Array(MiB(4)))).toBe(-1);
    expect(firstDifference(contents(storeOf(h.backend, "images", "base")), baseBefore)).toBe(-1);
    expect((await top.info()).backing?.path).toBe("/mem/images/mid");
  });
});

describe("job controls", () => {
  it("a cap is exact virtual time: 2 MiB of data at 1 MiB/s take 2 s, holes cost nothing", async () => {
    const { h, pool, base } = await chain();
    const job = await pool.volumes.clone(base, { name: "copy", bandwidth: MiB(1) });
    let done = false;
    void job.wait().then(() => (done = true));
    await h.clock.advance(1999);
    expect(done).toBe(false);
    await h.clock.advance(1);
    expect(done).toBe(true);
  });

  it("setSpeed applies at once", async () => {
    const { h, base } = await chain();
    const job = await base.wipe({ bandwidth: MiB(1) });
    await h.clock.advance(1000);
    await job.setSpeed(MiB(2));
    let done = false;
    void job.wait().then(() => (done = true));
    await h.clock.advance(499);
    expect(done).toBe(false);
    await h.clock.advance(1);
    expect(done).toBe(true);
  });

  it("pause holds the job; resume continues", async () => {
    const { h, base } = await chain();
    const job = await base.wipe({ bandwidth: MiB(1) });
    await h.clock.advance(1500);
    await job.pause();
    const held = (await job.info()).cur;
    expect(held).toBe(MiB(1));
    await h.clock.advance(10_000);
    const paused = await job.info();
    expect(paused.state).toBe("paused");
    // The chunk paid for while pausing waits too: progress stands still.
    expect(paused.cur).toBe(held);
    await job.resume();
    let done = false;
    void job.wait().then(() => (done = true));
    await h.clock.advance(0);
    expect(done).toBe(true);
  });

  it("a pause during the last paid chunk holds it until resume", async () => {
    const { h, base } = await chain();
    const job = await base.wipe({ bandwidth: MiB(1) });
    await h.clock.advance(500);
    await job.pause();
    await h.clock.advance(10_000);
    expect((await job.info()).cur).toBe(0);
    await job.resume();
    let done = false;
    void job.wait().then(() => (done = true));
    await h.clock.advance(999);
    expect(done).toBe(false);
    await h.clock.advance(1);
    expect(done).toBe(true);
  });

  it("a second writer on the same volume is a ConflictError naming the first job", async () => {
    const { h, top } = await chain();
    const first = await top.allocate({ bandwidth: MiB(1) });
    for (const start of [() => top.wipe(), () => top.pull(), () => top.allocate(), () => top.upload()]) {
      const error = await start().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConflictError);
      expect((error as ConflictError).jobId).toBe(first.id);
      expect((error as Error).message).toContain(`job "${first.id}"`);
    }
    await expect(top.resize(MiB(8))).rejects.toBeInstanceOf(ConflictError);
    await expect(top.delete()).rejects.toThrow(`Cannot delete volume "top" in pool "images": job "${first.id}" is using it`);
    await first.abort();
    await settle(h.clock, failure(first));
    await top.delete();
  });
});
