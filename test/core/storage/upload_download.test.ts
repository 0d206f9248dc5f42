import { describe, expect, it } from "vitest";
import { ConflictError, type JobError } from "../../../core/errors.ts";
import type { StoragePool } from "../../../core/storage_pool.ts";
import { KiB, MiB } from "../../../core/units.ts";
import type { Volume } from "../../../core/volume.ts";
import { contents, fill, firstDifference, type Harness, harness, settle, storeOf } from "./_memory_backend.ts";

async function setup(): Promise<{ h: Harness; pool: StoragePool; disk: Volume }> {
  const h = harness();
  const pool = await h.manager.pools.create({ name: "images", type: "mem" });
  const disk = await pool.volumes.create({ name: "disk", capacityBytes: MiB(4) });
  return { h, pool, disk };
}

function pattern(length: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = (i * 31 + seed) & 0xff;
  return bytes;
}


describe("upload", () => {
  it("writes chunks from the offset; closing completes the job", async () => {
    const { h, disk } = await setup();
    const data = pattern(KiB(300), 1);
    const job = await disk.upload({ offset: KiB(100), length: KiB(300) });
    expect([job.type, job.target]).toEqual(["volume-upload", { pool: "images", volume: "disk" }]);
    const writer = job.writable.getWriter();
    await settle(h.clock, writer.write(data.subarray(0, KiB(200))));
    await settle(h.clock, writer.write(data.subarray(KiB(200))));
    await settle(h.clock, writer.close());
    await settle(h.clock, job.wait());
    const info = await job.info();
    expect([info.state, info.cur, info.end]).toEqual(["completed", KiB(300), KiB(300)]);
    const store = storeOf(h.backend, "images", "disk");
    const back = new Uint8Array(KiB(300));
    store.readAt(KiB(100), back);
    expect(firstDifference(back, data)).toBe(-1);
    expect(store.mapExtents(0, KiB(100))).toEqual([{ offset: 0, length: KiB(100), data: false, zero: true, depth: 0 }]);
  });

  it("more bytes than the range fail the job and error the stream; what fitted stays", async () => {
    const { h, disk } = await setup();
    const job = await disk.upload({ offset: MiB(4) - KiB(8), length: KiB(8) });
    const writer = job.writable.getWriter();
    await settle(h.clock, writer.write(new Uint8Array(KiB(4)).fill(5)));
    const error = await settle(h.clock, writer.write(new Uint8Array(KiB(8)).fill(6))).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RangeError);
    expect((error as Error).message).toBe(
      'Cannot upload to volume "disk" in pool "images": more than the 8192 bytes of range 4186112+8192 were sent',
    );
    const ended = await settle(h.clock, job.wait()).catch((e: unknown) => e);
    expect((ended as JobError).info.state).toBe("failed");
    expect((ended as JobError).info.error).toContain("more than the 8192 bytes");
    const tail = new Uint8Array(KiB(8));
    storeOf(h.backend, "images", "disk").readAt(MiB(4) - KiB(8), tail);
    expect([tail[0], tail[KiB(4) - 1], tail[KiB(4)]]).toEqual([5, 5, 0]);
  });

  it("writable.abort() aborts the job and keeps what was written", async () => {
    const { h, disk } = await setup();
    const job = await disk.upload();
    const writer = job.writable.getWriter();
    await settle(h.clock, writer.write(new Uint8Array(KiB(4)).fill(9)));
    await settle(h.clock, writer.abort(new Error("user gave up")));
    const ended = await settle(h.clock, job.wait()).catch((e: unknown) => e);
    expect((ended as JobError).info.state).toBe("aborted");
    expect(contents(storeOf(h.backend, "images", "disk"))[0]).toBe(9);
  });

  it("job.abort() errors the writable", async () => {
    const { h, disk } = await setup();
    const job = await disk.upload();
    const writer = job.writable.getWriter();
    await job.abort();
    await expect(settle(h.clock, writer.write(new Uint8Array(4)))).rejects.toMatchObject({ name: "AbortError" });
    expect((await job.info()).state).toBe("aborted");
  });

  it("is paced by the cap (256 KiB steps at 512 KiB/s) and held by pause", async () => {
    const { h, disk } = await setup();
    const job = await disk.upload({ length: MiB(1), bandwidth: KiB(512) });
    const writer = job.writable.getWriter();
    let written = false;
    void writer.write(new Uint8Array(MiB(1)).fill(1)).then(() => (written = true));
    await h.clock.advance(1000);
    await job.pause();
    await h.clock.advance(5000);
    expect(written).toBe(false);
    const paused = await job.info();
    // Two steps landed by t=1000; the third, paid for meanwhile, waits for resume with the fourth.
    expect([paused.state, paused.cur]).toEqual(["paused", KiB(512)]);
    await job.resume();
    await h.clock.advance(499);
    expect(written).toBe(false);
    await h.clock.advance(1);
    expect(written).toBe(true);
    await settle(h.clock, writer.close());
    await settle(h.clock, job.wait());
  });

  it("rejects bad ranges and chunks that are not bytes", async () => {
    const { h, disk } = await setup();
    await expect(disk.upload({ offset: MiB(4), length: 1 })).rejects.toBeInstanceOf(RangeError);
    await expect(disk.upload({ length: -5 })).rejects.toBeInstanceOf(RangeError);
    expect(await h.jobs.list()).toEqual([]);
    const job = await disk.upload();
    const writer = job.writable.getWriter();
    await expect(settle(h.clock, writer.write("text" as unknown as Uint8Array))).rejects.toBeInstanceOf(TypeError);
    const ended = await settle(h.clock, job.wait()).catch((e: unknown) => e);
    expect((ended as JobError).info.state).toBe("failed");
  });
});

describe("download", () => {
  it("round-trips a partial range with a BYOB reader; the job completes at the last byte", async () => {
    const { h, disk } = await setup();
    const store = storeOf(h.backend, "images", "disk");
    const data = pattern(KiB(600), 3);
    store.writeAt(KiB(200), data);
    const job = await disk.download({ offset: KiB(100), length: KiB(800) });
    expect([job.type, job.target]).toEqual(["volume-download", { pool: "images", volume: "disk" }]);
    const reader = job.readable.getReader({ mode: "byob" });
    const out = new Uint8Array(KiB(800));
    let at = 0;
    let buffer = new ArrayBuffer(KiB(64));
    while (at < out.byteLength) {
      const { value, done } = await settle(h.clock, reader.read(new Uint8Array(buffer)));
      if (done || !value) break;
      out.set(value, at);
      at += value.byteLength;
      buffer = value.buffer as ArrayBuffer;
    }
    expect(at).toBe(KiB(800));
    expect((await settle(h.clock, reader.read(new Uint8Array(buffer)))).done).toBe(true);
    await settle(h.clock, job.wait());
    const expected = new Uint8Array(KiB(800));
    expected.set(data, KiB(100));
    expect(firstDifference(out, expected)).toBe(-1);
    const info = await job.info();
    expect([info.state, info.cur, info.end]).toEqual(["completed", KiB(800), KiB(800)]);
  });

  it("uploads what it downloads (default readers, the whole volume)", async () => {
    const { h, pool, disk } = await setup();
    fill(storeOf(h.backend, "images", "disk"), MiB(1), KiB(12), 4);
    const copy = await pool.volumes.create({ name: "copy", capacityBytes: MiB(4) });
    const down = await disk.download();
    const up = await copy.upload();
    await settle(h.clock, down.readable.pipeTo(up.writable));
    await settle(h.clock, Promise.all([down.wait(), up.wait()]));
    expect(firstDifference(contents(storeOf(h.backend, "images", "copy")), contents(storeOf(h.backend, "images", "disk")))).toBe(-1);
  });

  it("holes cost nothing against the cap: 1 MiB of data in 4 MiB at 1 MiB/s take 1 s", async () => {
    const { h, disk } = await setup();
    fill(storeOf(h.backend, "images", "disk"), MiB(2), MiB(1), 8);
    const job = await disk.download({ bandwidth: MiB(1) });
    const bytes = new Response(job.readable).arrayBuffer();
    let done = false;
    void job.wait().then(() => (done = true));
    await h.clock.advance(999);
    expect(done).toBe(false);
    await h.clock.advance(1);
    expect(done).toBe(true);
    expect((await bytes).byteLength).toBe(MiB(4));
  });

  it("readable.cancel() aborts the job; job.abort() errors the readable", async () => {
    const { h, disk } = await setup();
    const first = await disk.download();
    await settle(h.clock, first.readable.cancel());
    const firstEnd = await settle(h.clock, first.wait()).catch((e: unknown) => e);
    expect((firstEnd as JobError).info.state).toBe("aborted");
    const second = await disk.download();
    await second.abort();
    await expect(settle(h.clock, second.readable.getReader().read())).rejects.toMatchObject({ name: "AbortError" });
  });

  it("a download blocks writers, not other readers, and they see it as the reason", async () => {
    const { h, disk } = await setup();
    const first = await disk.download({ bandwidth: 1 });
    const second = await disk.download();
    const error = await disk.wipe().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConflictError);
    expect([first.id, second.id]).toContain((error as ConflictError).jobId);
    await first.abort();
    await second.abort();
    await settle(h.clock, Promise.allSettled([first.wait(), second.wait()]));
    await settle(h.clock, (await disk.wipe()).wait());
  });
});
