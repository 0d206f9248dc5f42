/**
 * The `iscsi` pool through the public API on a `test:` connection, against a private tgtd: LUNs as
 * volumes, libvirt's rules (no create, delete or resize), and their bytes through the copy loop —
 * clone into a `dir` pool, download, upload to a writable LUN — checked against the LUN backing files
 * and by `qemu-img compare` reading the LUN with QEMU's own iscsi driver (libiscsi).
 */
import { execFile } from "node:child_process";
import fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Connection } from "../../../core/connection.ts";
import { ConnectError, JobError, NotFoundError, StateError, UnsupportedError } from "../../../core/errors.ts";
import { dirBackend } from "../../../drivers/dir/mod.ts";
import { createIscsiBackend } from "../../../drivers/iscsi/mod.ts";
import { testDriver } from "../../../drivers/test/mod.ts";
import { until } from "../qemu/_support.ts";
import { Relay } from "./_proxy.ts";
import type { StoragePool } from "../../../core/storage_pool.ts";
import { connect, createRegistry } from "../../../mod.ts";
import { registerBuiltins } from "../../../drivers/mod.ts";
import { IscsiPool } from "../../../drivers/iscsi/iscsi_pool.ts";
import { downloadBytes, uploadBytes } from "../../conformance/_support.ts";
import { skipIscsi, Tgtd } from "../../_support/tgtd.ts";

const MiB = 1 << 20;
const CHAP = { username: "vk-pool", password: "vk-pool-secret-1" };
const target = { connect: () => Promise.reject(new Error("unused")) };

function pattern(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = ((i * 13 + seed) % 251) + 1;
  return out;
}

function qemuImg(args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile("qemu-img", args, { encoding: "utf8" }, (error, stdout, stderr) => resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, out: stdout + stderr }));
  });
}

async function errorOf(promise: Promise<unknown>): Promise<unknown> {
  return await promise.then(() => undefined, (e: unknown) => e);
}

describe.skipIf(skipIscsi)("iscsi pool against tgtd", () => {
  let tgtd: Tgtd;
  let conn: Connection;
  let pool: StoragePool;
  let scratch: string;

  beforeAll(async () => {
    tgtd = await Tgtd.start({ luns: [{ lun: 1, sizeBytes: 16 * MiB }, { lun: 2, sizeBytes: 4 * MiB, readonly: true }, { lun: 3, sizeBytes: 8 * MiB }] });
    // LUN 1: data in the first MiB and at 9 MiB, zeros elsewhere.
    const file = await fsp.open(tgtd.lunFile(1), "r+");
    await file.write(pattern(MiB, 1), 0, MiB, 0);
    await file.write(pattern(MiB / 2, 2), 0, MiB / 2, 9 * MiB);
    await file.close();
    scratch = await fsp.mkdtemp(path.join(os.tmpdir(), "vk-iscsi-pool-"));
    const registry = createRegistry();
    registerBuiltins(registry);
    conn = await connect("test:///empty", { registry });
    pool = await conn.pools.create({ name: "san", type: "iscsi", host: "127.0.0.1", port: tgtd.port, target: tgtd.target });
  });
  afterAll(async () => {
    await conn?.close();
    await tgtd?.stop();
    if (scratch) await fsp.rm(scratch, { recursive: true, force: true });
  });

  it("lists the direct-access LUNs as unit:0:0:N with iscsi:// keys, sized as the target says", async () => {
    const volumes = await pool.volumes.list();
    expect(volumes.map((v) => v.name)).toEqual(["unit:0:0:1", "unit:0:0:2", "unit:0:0:3"]);
    const url = `iscsi://127.0.0.1:${tgtd.port}/${tgtd.target}/1`;
    expect(volumes[0]!.key).toBe(url);
    expect(volumes[0]!.path).toBe(url);
    expect(await volumes[0]!.info()).toEqual({ capacityBytes: 16 * MiB, allocationBytes: 16 * MiB, physicalBytes: 16 * MiB, format: "raw" });
    expect(await pool.info()).toEqual({ state: "active", capacityBytes: 28 * MiB, allocationBytes: 28 * MiB, availableBytes: 0, autostart: false });
    expect((await conn.volumes.lookup({ key: url })).name).toBe("unit:0:0:1");
    expect(await errorOf(pool.volumes.get("unit:0:0:9"))).toBeInstanceOf(NotFoundError);
    expect(await errorOf(pool.volumes.get("lun1"))).toBeInstanceOf(NotFoundError);
  });

  it("cannot create, delete or resize a LUN (libvirt's rule), and the LUN is left as it was", async () => {
    expect(await errorOf(pool.volumes.create({ name: "new", capacityBytes: MiB }))).toBeInstanceOf(UnsupportedError);
    const lun = await pool.volumes.get("unit:0:0:3");
    expect(await errorOf(lun.delete())).toBeInstanceOf(UnsupportedError);
    expect(await errorOf(lun.resize(16 * MiB))).toBeInstanceOf(UnsupportedError);
    expect((await fsp.stat(tgtd.lunFile(3))).size).toBe(8 * MiB);
    expect((await pool.volumes.list()).length).toBe(3);
  });

  it("clones a LUN into a dir pool: identical (qemu-img compare over QEMU's iscsi driver) and sparse", async () => {
    const dir = await conn.pools.create({ name: "images", type: "dir", path: path.join(scratch, "images") });
    const job = await dir.volumes.clone(await pool.volumes.get("unit:0:0:1"), { name: "copy.raw" });
    const copy = await job.wait();
    expect(Buffer.compare(await fsp.readFile(copy.path), await fsp.readFile(tgtd.lunFile(1)))).toBe(0);
    const compare = await qemuImg(["compare", "-f", "raw", "-F", "raw", copy.path, `iscsi://127.0.0.1:${tgtd.port}/${tgtd.target}/1`]);
    expect(compare.out).toContain("Images are identical");
    // The LUN reports no provisioning, so all of it is read, and its zero chunks stay holes in the copy.
    expect((await copy.info()).allocationBytes).toBeLessThan(4 * MiB);
    const extents = [];
    for await (const e of (await pool.volumes.get("unit:0:0:1")).extents()) extents.push(e);
    expect(extents).toEqual([{ offset: 0, length: 16 * MiB, data: true, zero: false, depth: 0 }]);
  });

  it("downloads any range, block-aligned or not", async () => {
    const lun = await pool.volumes.get("unit:0:0:1");
    const file = await fsp.readFile(tgtd.lunFile(1));
    for (const [offset, length] of [[0, 16 * MiB], [MiB - 100, 1000], [9 * MiB + 3, 65536 + 7]] as const) {
      const bytes = await downloadBytes(target, lun, { offset, length });
      expect(Buffer.compare(bytes, file.subarray(offset, offset + length)), `${offset}+${length}`).toBe(0);
    }
  });

  it("uploads into a writable LUN at an unaligned offset, leaving the bytes around it alone", async () => {
    const lun = await pool.volumes.get("unit:0:0:3");
    const before = pattern(8 * MiB, 5);
    await fsp.writeFile(tgtd.lunFile(3), before);
    const data = pattern(3 * MiB + 1234, 6);
    await uploadBytes(target, lun, data, 777);
    const expected = Buffer.from(before);
    expected.set(data, 777);
    expect(Buffer.compare(await fsp.readFile(tgtd.lunFile(3)), expected)).toBe(0);
    const ref = path.join(scratch, "lun3.ref");
    await fsp.writeFile(ref, expected);
    expect((await qemuImg(["compare", "-f", "raw", "-F", "raw", ref, `iscsi://127.0.0.1:${tgtd.port}/${tgtd.target}/3`])).out).toContain("Images are identical");
  });

  it("reads in order through the read-ahead and still sees its own writes at once", async () => {
    const direct = new IscsiPool({ name: "direct", type: "iscsi", host: "127.0.0.1", port: tgtd.port, target: tgtd.target });
    await direct.start();
    await fsp.writeFile(tgtd.lunFile(3), pattern(8 * MiB, 11));
    const io = await direct.openVolume("unit:0:0:3", { write: true });
    try {
      const chunk = new Uint8Array(MiB);
      for (let mib = 0; mib < 3; mib++) await io.read(mib * MiB, chunk); // in order: MiB 3.. are read ahead
      const fresh = pattern(MiB, 12);
      await io.write(3 * MiB, fresh);
      await io.read(3 * MiB, chunk);
      expect(Buffer.compare(chunk, fresh)).toBe(0);
      await io.read(4 * MiB, chunk);
      expect(Buffer.compare(chunk, pattern(8 * MiB, 11).subarray(4 * MiB, 5 * MiB))).toBe(0);
      // Bad ranges are RangeErrors, before anything reaches the target.
      expect(await errorOf(io.write(8 * MiB - 10, new Uint8Array(20)))).toBeInstanceOf(RangeError);
      expect(await errorOf(io.read(-1, chunk))).toBeInstanceOf(RangeError);
      expect(await io.read(8 * MiB - 100, chunk)).toBe(100); // short only at the end
    } finally {
      await io.close();
      await direct.close();
    }
    expect(await errorOf(io.read(0, new Uint8Array(512)))).toBeInstanceOf(StateError);
  });

  it("refuses to upload into a write-protected LUN, before any byte moves", async () => {
    const lun = await pool.volumes.get("unit:0:0:2");
    const error = await errorOf(lun.upload({ length: 512 }));
    expect((error as Error).message).toContain("write-protected");
    expect((await fsp.readFile(tgtd.lunFile(2))).every((b) => b === 0)).toBe(true);
  });

  it("refresh sees a LUN added on the target, and one removed", async () => {
    await tgtd.addLun({ lun: 4, sizeBytes: 2 * MiB });
    await pool.refresh();
    expect((await pool.volumes.list()).map((v) => v.name)).toEqual(["unit:0:0:1", "unit:0:0:2", "unit:0:0:3", "unit:0:0:4"]);
    await tgtd.adm(["--op", "delete", "--mode", "logicalunit", "--tid", "1", "--lun", "4"]);
    await pool.refresh();
    expect(await errorOf(pool.volumes.get("unit:0:0:4"))).toBeInstanceOf(NotFoundError);
  });
});

describe.skipIf(skipIscsi)("iscsi pool on a thin-provisioned LUN", () => {
  let tgtd: Tgtd;
  let conn: Connection;
  let scratch: string;
  beforeAll(async () => {
    tgtd = await Tgtd.start({ luns: [{ lun: 1, sizeBytes: 16 * MiB }] });
    // thin_provisioning=1: tgtd reports LBPME and LBPRZ and answers GET LBA STATUS from the file's holes.
    await tgtd.adm(["--op", "update", "--mode", "logicalunit", "--tid", "1", "--lun", "1", "--params", "thin_provisioning=1"]);
    const file = await fsp.open(tgtd.lunFile(1), "r+");
    await file.write(pattern(MiB, 3), 0, MiB, 4 * MiB);
    await file.write(pattern(64 * 1024, 4), 0, 64 * 1024, 12 * MiB);
    await file.close();
    scratch = await fsp.mkdtemp(path.join(os.tmpdir(), "vk-iscsi-thin-"));
    conn = await connect("test:///empty");
  });
  afterAll(async () => {
    await conn?.close();
    await tgtd?.stop();
    if (scratch) await fsp.rm(scratch, { recursive: true, force: true });
  });

  it("reports the target's holes as zero extents, as qemu-img map over iscsi:// does, and clones only the data", async () => {
    const san = await conn.pools.create({ name: "thin", type: "iscsi", host: "127.0.0.1", port: tgtd.port, target: tgtd.target });
    const lun = await san.volumes.get("unit:0:0:1");
    const ours = [];
    for await (const e of lun.extents()) ours.push([e.offset, e.length, e.data]);
    const map = JSON.parse((await qemuImg(["map", "--output=json", "-f", "raw", tgtd.url(1)])).out) as Array<{ start: number; length: number; data: boolean }>;
    expect(ours).toEqual(map.map((m) => [m.start, m.length, m.data]));
    // A range inside: clipped to it.
    const inside = [];
    for await (const e of lun.extents({ offset: 4 * MiB + 512, length: 2 * MiB })) inside.push([e.offset, e.length, e.data, e.zero]);
    expect(inside).toEqual([[4 * MiB + 512, MiB - 512, true, false], [5 * MiB, MiB + 512, false, true]]);
    const images = await conn.pools.create({ name: "thin-images", type: "dir", path: path.join(scratch, "images") });
    const copy = await (await images.volumes.clone(lun, { name: "copy.raw" })).wait();
    expect(Buffer.compare(await fsp.readFile(copy.path), await fsp.readFile(tgtd.lunFile(1)))).toBe(0);
    expect((await qemuImg(["compare", "-f", "raw", "-F", "raw", copy.path, tgtd.url(1)])).out).toContain("Images are identical");
    const job = (await conn.jobs.list({ type: "volume-clone" }))[0]!;
    // Only the data extents were read: the 11 MiB of holes cost no I/O, and the copy is as sparse.
    expect((await copy.info()).allocationBytes).toBeLessThanOrEqual(MiB + 64 * 1024 + 64 * 1024);
    expect((await job.info()).state).toBe("completed");
  });
});

describe.skipIf(skipIscsi)("iscsi pool when the target goes away mid-clone", () => {
  let tgtd: Tgtd;
  let relay: Relay;
  let conn: Connection;
  let scratch: string;
  beforeAll(async () => {
    tgtd = await Tgtd.start({ luns: [{ lun: 1, sizeBytes: 64 * MiB }] });
    await fsp.writeFile(tgtd.lunFile(1), pattern(64 * MiB, 21));
    relay = await Relay.start(tgtd.port);
    scratch = await fsp.mkdtemp(path.join(os.tmpdir(), "vk-iscsi-drop-"));
    const registry = createRegistry();
    registry.register(testDriver);
    registry.register(dirBackend);
    registry.register(createIscsiBackend({ commandTimeoutMs: 400, keepaliveIntervalMs: 0 }));
    conn = await connect("test:///empty", { registry });
  });
  afterAll(async () => {
    await conn?.close();
    await relay?.close();
    await tgtd?.stop();
    if (scratch) await fsp.rm(scratch, { recursive: true, force: true });
  });

  async function cloneThatStalls(name: string, then: () => void): Promise<{ error: unknown; images: StoragePool }> {
    const san = await conn.pools.create({ name: `san-${name}`, type: "iscsi", host: "127.0.0.1", port: relay.port, target: tgtd.target });
    const images = await conn.pools.create({ name: `images-${name}`, type: "dir", path: path.join(scratch, name) });
    const lun = await san.volumes.get("unit:0:0:1");
    const stalledBefore = relay.stalledConnections;
    relay.stallAfter(4 * MiB); // the volume's session logs in, then stalls a few MiB into the copy
    const job = await images.volumes.clone(lun, { name: "copy.raw" });
    relay.stallAfter(Number.POSITIVE_INFINITY);
    await until(() => relay.stalledConnections > stalledBefore, "the clone's connection to stall");
    then();
    return { error: await errorOf(job.wait()), images };
  }

  it("a dropped connection fails the clone job with the session's ConnectError and leaves no copy", async () => {
    const { error, images } = await cloneThatStalls("cut", () => relay.cut());
    expect(error).toBeInstanceOf(JobError);
    expect((error as JobError).info.error).toMatch(/iSCSI session .* ended/);
    expect(await images.volumes.list()).toEqual([]);
  });

  it("a target that stops answering fails the clone after the command timeout and leaves no copy", async () => {
    const { error, images } = await cloneThatStalls("stall", () => {});
    expect((error as JobError).info.error).toContain("no answer within 400 ms");
    expect(await images.volumes.list()).toEqual([]);
  });
});

describe.skipIf(skipIscsi)("iscsi pool with CHAP", () => {
  let tgtd: Tgtd;
  let conn: Connection;
  const config = (password: string | undefined) => ({
    name: `san-${password ?? "none"}`,
    type: "iscsi" as const,
    host: "127.0.0.1",
    port: tgtd.port,
    target: tgtd.target,
    ...(password ? { auth: { type: "chap" as const, username: CHAP.username, password } } : {}),
  });
  beforeAll(async () => {
    tgtd = await Tgtd.start({ luns: [{ lun: 1, sizeBytes: 2 * MiB }], chap: CHAP });
    await fsp.writeFile(tgtd.lunFile(1), pattern(2 * MiB, 8));
    conn = await connect("test:///empty");
  });
  afterAll(async () => {
    await conn?.close();
    await tgtd?.stop();
  });

  it("starts with the right secret and reads the LUN", async () => {
    const pool = await conn.pools.create(config(CHAP.password));
    const bytes = await downloadBytes(target, await pool.volumes.get("unit:0:0:1"));
    expect(Buffer.compare(bytes, pattern(2 * MiB, 8))).toBe(0);
  });

  it("a wrong secret fails start with a ConnectError and leaves the pool inactive", async () => {
    const pool = await conn.pools.define(config("not-the-secret"));
    const error = await errorOf(pool.start());
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as Error).message).toContain("CHAP authentication failed");
    expect((await pool.info()).state).toBe("inactive");
  });

  it("no credentials fail start with a ConnectError that says to give auth", async () => {
    const pool = await conn.pools.define(config(undefined));
    const error = await errorOf(pool.start());
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as Error).message).toContain('give "auth"');
  });

  it("an unreachable portal fails start with a ConnectError", async () => {
    const pool = await conn.pools.define({ ...config(CHAP.password), name: "nowhere", port: 1 });
    expect(await errorOf(pool.start())).toBeInstanceOf(ConnectError);
  });

  it("a malformed definition is a TypeError naming the field", async () => {
    const error = await errorOf(conn.pools.define({ ...config(CHAP.password), name: "bad", target: "not an iqn" }));
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toContain("target must be an iSCSI name");
  });
});
