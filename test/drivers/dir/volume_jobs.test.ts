/**
 * The generic volume jobs on `dir` volumes, through the public API on a virtual clock: clone, allocate,
 * wipe, upload and download with caps; abort; ENOSPC and EIO in the middle of a job.
 */
import fsp from "node:fs/promises";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { VirtualClock } from "../../../core/clock.ts";
import type { Connection } from "../../../core/connection.ts";
import { JobError, NotFoundError } from "../../../core/errors.ts";
import type { Job } from "../../../core/job.ts";
import type { StoragePool } from "../../../core/storage_pool.ts";
import type { Volume } from "../../../core/volume.ts";
import { connect, createVirtualClock, KiB, MiB } from "../../../mod.ts";
import { createDirBackend } from "../../../drivers/dir/mod.ts";
import { downloadBytes, drive, readAll, uploadBytes } from "../../conformance/_support.ts";
import type { ConformanceTarget } from "../../conformance/types.ts";
import { type Faults, faultyFs, fileHash, hasQemuImg, pattern, registryWithDir, removeDir, run, scratchDir, writeAt } from "./_support.ts";

const QEMU = await hasQemuImg();

let root: string;
let clock: VirtualClock;
let target: ConformanceTarget;
let conn: Connection;
let pool: StoragePool;
let faults: Faults;

beforeEach(async () => {
  root = await scratchDir();
  clock = createVirtualClock();
  faults = {};
  const registry = registryWithDir(createDirBackend({ fs: faultyFs(faults) }));
  target = { connect: () => connect("test:///empty", { registry, clock }), clock };
  conn = await target.connect();
  pool = await conn.pools.create({ name: "images", type: "dir", path: path.join(root, "pool") });
});
afterEach(async () => {
  await conn.close();
  await removeDir(root);
});

/** A raw source of 8 MiB with data at [1 MiB, 2 MiB) and [5 MiB, 5 MiB + 64 KiB). */
async function source(): Promise<Volume> {
  const vol = await pool.volumes.create({ name: "src.img", capacityBytes: MiB(8) });
  await writeAt(vol.path, MiB(1), pattern(MiB(1), 1));
  await writeAt(vol.path, MiB(5), pattern(KiB(64), 2));
  return vol;
}

async function failure(job: Job<unknown>): Promise<JobError> {
  const error = await drive(target, job.wait().then(() => undefined, (e: unknown) => e), `job ${job.id}`);
  expect(error).toBeInstanceOf(JobError);
  return error as JobError;
}

describe("clone", () => {
  it.skipIf(!QEMU)("makes an identical, equally sparse copy; a cap holds the pace on the virtual clock", async () => {
    const src = await source();
    const job = await pool.volumes.clone(src, { name: "copy.img", bandwidth: MiB(1) });
    await clock.advance(500);
    // Progress runs through holes at once, and through data at the cap: never past 1 MiB of data + holes.
    const half = await job.info();
    expect(half.state).toBe("running");
    expect(half.cur).toBeLessThan(MiB(2));
    const copy = await drive(target, job.wait(), "the clone");
    await run("qemu-img", ["compare", "-f", "raw", "-F", "raw", src.path, copy.path]);
    const [a, b] = [await src.info(), await copy.info()];
    expect([b.capacityBytes, b.allocationBytes, b.format]).toEqual([a.capacityBytes, a.allocationBytes, "raw"]);
  });

  it("an aborted clone leaves no file; the source is never touched", async () => {
    const src = await source();
    const before = await fileHash(src.path);
    const job = await pool.volumes.clone(src, { name: "copy.img", bandwidth: KiB(256) });
    await clock.advance(1000);
    await job.abort();
    expect((await failure(job)).info.state).toBe("aborted");
    expect((await fsp.readdir(path.join(root, "pool"))).sort()).toEqual(["src.img"]);
    expect(await fileHash(src.path)).toBe(before);
  });

  it.each([{ code: "ENOSPC" }, { code: "EIO" }])("$code in the middle fails the job with the error text and removes the clone", async ({ code }) => {
    const src = await source();
    const before = await fileHash(src.path);
    faults.write = { bytes: KiB(512), code, path: /copy\.img$/ };
    const job = await pool.volumes.clone(src, { name: "copy.img" });
    const error = await failure(job);
    expect([error.info.state, error.info.error]).toEqual(["failed", expect.stringContaining(code)]);
    expect((await fsp.readdir(path.join(root, "pool"))).sort()).toEqual(["src.img"]);
    await expect(pool.volumes.get("copy.img")).rejects.toBeInstanceOf(NotFoundError);
    expect(await fileHash(src.path)).toBe(before);
  });

  it("a clone completes only once its data is on disk: a failed fdatasync fails it and removes the clone", async () => {
    const src = await source();
    faults.datasync = { code: "EIO", path: /copy\.img$/ };
    const job = await pool.volumes.clone(src, { name: "copy.img" });
    const error = await failure(job);
    expect([error.info.state, error.info.error]).toEqual(["failed", expect.stringContaining("EIO")]);
    expect((await fsp.readdir(path.join(root, "pool"))).sort()).toEqual(["src.img"]);
  });
});

describe("allocate, wipe, resize", () => {
  it("allocate fills the holes with real zeros and keeps the data", async () => {
    const src = await source();
    const before = await fileHash(src.path);
    const job = await src.allocate({ bandwidth: MiB(4) });
    await drive(target, job.wait(), "allocate");
    const info = await src.info();
    expect(info.allocationBytes).toBeGreaterThanOrEqual(MiB(8));
    expect(await fileHash(src.path)).toBe(before);
  });

  it("allocate of a range allocates that range only", async () => {
    const vol = await pool.volumes.create({ name: "a.img", capacityBytes: MiB(4) });
    await drive(target, (await vol.allocate({ offset: MiB(1), length: MiB(1) })).wait(), "allocate");
    expect((await vol.info()).allocationBytes).toBe(MiB(1));
  });

  it("wipe makes every byte read zero", async () => {
    const src = await source();
    await drive(target, (await src.wipe({ bandwidth: MiB(8) })).wait(), "wipe");
    const bytes = await fsp.readFile(src.path);
    expect(bytes.byteLength).toBe(MiB(8));
    expect(bytes.every((b) => b === 0)).toBe(true);
  });

  it("resize grows a volume whose new tail reads as zeros", async () => {
    const src = await source();
    await src.resize(MiB(12));
    const tail = await downloadBytes(target, src, { offset: MiB(8), length: MiB(4) });
    expect([tail.byteLength, tail.every((b) => b === 0)]).toEqual([MiB(4), true]);
  });
});

describe("upload and download", () => {
  it("upload at an offset lands exactly there; download of a partial range returns it", async () => {
    const vol = await pool.volumes.create({ name: "a.img", capacityBytes: MiB(4) });
    const data = pattern(KiB(300), 7);
    await uploadBytes(target, vol, data, KiB(100));
    const file = await fsp.readFile(vol.path);
    expect(Buffer.compare(file.subarray(KiB(100), KiB(400)), Buffer.from(data))).toBe(0);
    expect(file.subarray(0, KiB(100)).every((b) => b === 0)).toBe(true);
    const back = await downloadBytes(target, vol, { offset: KiB(150), length: KiB(50) });
    expect(Buffer.compare(Buffer.from(back), Buffer.from(data.subarray(KiB(50), KiB(100))))).toBe(0);
  });

  it("a capped download takes bytes/cap of virtual time", async () => {
    const src = await source();
    const job = await src.download({ offset: MiB(1), length: MiB(1), bandwidth: KiB(256) });
    const all = await drive(target, readAll(job.readable), "download");
    await drive(target, job.wait(), "download job");
    expect(Buffer.compare(Buffer.from(all), Buffer.from(pattern(MiB(1), 1)))).toBe(0);
    // Real I/O may lag the virtual clock (never lead it): 1 MiB at 256 KiB/s is 4 s at least, less one chunk's slot.
    const info = await job.info();
    expect(info.finishedAt! - info.createdAt).toBeGreaterThanOrEqual(3000);
  });

  it("an aborted upload leaves the bytes written so far, and the volume usable", async () => {
    const vol = await pool.volumes.create({ name: "a.img", capacityBytes: MiB(2) });
    const job = await vol.upload({ length: MiB(2) });
    const writer = job.writable.getWriter();
    await drive(target, writer.write(pattern(KiB(256), 3)), "the first chunk");
    await job.abort();
    await writer.abort().catch(() => {});
    await failure(job);
    const head = await downloadBytes(target, vol, { length: KiB(256) });
    expect(Buffer.compare(Buffer.from(head), Buffer.from(pattern(KiB(256), 3)))).toBe(0);
    expect((await vol.info()).capacityBytes).toBe(MiB(2));
  });
});

/** Whether this process may mount a tmpfs (root on Linux): lets one test meet a real full filesystem. */
async function canMountTmpfs(): Promise<boolean> {
  const probe = await scratchDir("virtkit-mount-");
  try {
    await run("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", probe]);
    await run("umount", [probe]);
    return true;
  } catch {
    return false;
  } finally {
    await removeDir(probe);
  }
}
const TMPFS = await canMountTmpfs();

describe("a real full filesystem", () => {
  it.skipIf(!TMPFS)("a clone into a 4 MiB tmpfs pool fails with ENOSPC, leaves the pool empty and the source untouched", async () => {
    const small = path.join(root, "small");
    await fsp.mkdir(small);
    await run("mount", ["-t", "tmpfs", "-o", "size=4m", "tmpfs", small]);
    try {
      const src = await pool.volumes.create({ name: "big.img", capacityBytes: MiB(8) });
      await writeAt(src.path, 0, pattern(MiB(6), 5));
      const before = await fileHash(src.path);
      const target = await conn.pools.create({ name: "small", type: "dir", path: small });
      const job = await target.volumes.clone(src, { name: "copy.img" });
      const error = await failure(job);
      expect(error.info.state).toBe("failed");
      expect(error.info.error).toMatch(/ENOSPC|no space/i);
      expect(await fsp.readdir(small)).toEqual([]);
      expect(await fileHash(src.path)).toBe(before);
      await target.stop();
    } finally {
      await run("umount", [small]);
    }
  });
});
