/**
 * The `dir` backend through the public API: pool lifecycle and sizes, which files are volumes, safety
 * (names, symbolic links, paths outside the pool), atomic creation, raw and qcow2 volumes checked by
 * qemu-img, resize.
 */
import fs from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Connection } from "../../../core/connection.ts";
import { ConflictError, NotFoundError, StateError, UnsupportedError } from "../../../core/errors.ts";
import type { StoragePool } from "../../../core/storage_pool.ts";
import { connect, GiB, KiB, MiB } from "../../../mod.ts";
import { createDirBackend } from "../../../drivers/dir/mod.ts";
import { downloadBytes, uploadBytes } from "../../conformance/_support.ts";
import { type Faults, faultyFs, fileHash, hasQemuImg, pattern, qemuInfo, registryWithDir, removeDir, run, scratchDir, writeAt } from "./_support.ts";

const QEMU = await hasQemuImg();

let root: string;
let conn: Connection;
let pool: StoragePool;
let poolDir: string;

async function open(backend = createDirBackend()): Promise<void> {
  conn = await connect("test:///empty", { registry: registryWithDir(backend) });
  pool = await conn.pools.create({ name: "images", type: "dir", path: poolDir });
}

beforeEach(async () => {
  root = await scratchDir();
  poolDir = path.join(root, "pool");
});
afterEach(async () => {
  await conn?.close();
  await removeDir(root);
});

describe("pool lifecycle", () => {
  it("build makes the directory (0755, parents too), start needs it, delete removes it only when empty", async () => {
    poolDir = path.join(root, "a", "b", "pool");
    await open();
    expect((await fsp.stat(poolDir)).mode & 0o777).toBe(0o755);
    const info = await pool.info();
    const sfs = await fsp.statfs(poolDir);
    expect(info.state).toBe("active");
    expect(info.capacityBytes).toBe(sfs.blocks * sfs.bsize);
    expect(info.allocationBytes + info.availableBytes).toBe(info.capacityBytes);
    await pool.volumes.create({ name: "disk.img", capacityBytes: MiB(1) });
    await fsp.mkdir(path.join(poolDir, "sub"));
    await pool.stop();
    const error = await pool.delete().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConflictError);
    expect(String(error)).toContain('"disk.img", "sub"');
    expect(fs.existsSync(path.join(poolDir, "disk.img"))).toBe(true);
    await fsp.rm(path.join(poolDir, "disk.img"));
    await fsp.rmdir(path.join(poolDir, "sub"));
    await pool.delete();
    expect(fs.existsSync(poolDir)).toBe(false);
  });

  it("start without the directory is a StateError naming it; a file in its place too", async () => {
    conn = await connect("test:///empty", { registry: registryWithDir() });
    pool = await conn.pools.define({ name: "images", type: "dir", path: poolDir });
    const error = await pool.start().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StateError);
    expect(String(error)).toContain(poolDir);
    await fsp.writeFile(poolDir, "not a directory");
    await expect(pool.start()).rejects.toBeInstanceOf(StateError);
    expect((await pool.info()).state).toBe("inactive");
  });

  it("refuses relative, empty and NUL paths with TypeError", async () => {
    conn = await connect("test:///empty", { registry: registryWithDir() });
    for (const bad of ["images", "", "/tmp/a\0b", undefined]) {
      await expect(conn.pools.define({ name: "p", type: "dir", path: bad as string })).rejects.toBeInstanceOf(TypeError);
    }
    expect(await conn.pools.list()).toEqual([]);
  });

  it("a pool stopped and started again sees the same volumes; refresh() sees files added behind its back", async () => {
    await open();
    await pool.volumes.create({ name: "a.img", capacityBytes: MiB(1) });
    await pool.stop();
    await pool.start();
    await fsp.writeFile(path.join(poolDir, "b.img"), "x");
    await pool.refresh();
    expect((await pool.volumes.list()).map((v) => v.name)).toEqual(["a.img", "b.img"]);
  });
});

describe("orphans of crashed creates", () => {
  it("start and refresh remove temporary files older than an hour, and nothing else", async () => {
    await open();
    const hoursAgo = (h: number) => new Date(Date.now() - h * 3600_000);
    const old = path.join(poolDir, ".virtkit-tmp-old");
    const fresh = path.join(poolDir, ".virtkit-tmp-fresh");
    const oldVolume = path.join(poolDir, "old.img");
    const outside = path.join(root, "outside.img");
    const linkToOutside = path.join(poolDir, ".virtkit-tmp-link");
    for (const file of [old, fresh, oldVolume, outside]) await fsp.writeFile(file, "x");
    await fsp.symlink(outside, linkToOutside);
    await fsp.mkdir(path.join(poolDir, ".virtkit-tmp-dir"));
    for (const file of [old, oldVolume, outside]) await fsp.utimes(file, hoursAgo(2), hoursAgo(2));
    await fsp.lutimes(linkToOutside, hoursAgo(2), hoursAgo(2));
    await pool.refresh();
    const left = (await fsp.readdir(poolDir)).sort();
    expect(left).toEqual([".virtkit-tmp-dir", ".virtkit-tmp-fresh", ".virtkit-tmp-link", "old.img"]);
    expect(await fsp.readFile(outside, "utf8")).toBe("x");

    await fsp.utimes(fresh, hoursAgo(1.5), hoursAgo(1.5));
    await pool.stop();
    await pool.start();
    expect((await fsp.readdir(poolDir)).sort()).toEqual([".virtkit-tmp-dir", ".virtkit-tmp-link", "old.img"]);
    expect((await pool.volumes.list()).map((v) => v.name)).toEqual(["old.img"]);
  });
});

describe("which files are volumes", () => {
  it("regular files only: no subdirectories, FIFOs, symbolic links or hidden temporary files", async () => {
    await open();
    await fsp.writeFile(path.join(poolDir, "plain.img"), "");
    await fsp.writeFile(path.join(poolDir, ".hidden"), "");
    await fsp.writeFile(path.join(poolDir, ".virtkit-tmp-0123"), "");
    await fsp.mkdir(path.join(poolDir, "dir"));
    await fsp.symlink("/etc/passwd", path.join(poolDir, "passwd"));
    await fsp.symlink(path.join(poolDir, "plain.img"), path.join(poolDir, "inside-link"));
    await run("mkfifo", [path.join(poolDir, "fifo")]);
    expect((await pool.volumes.list()).map((v) => v.name)).toEqual([".hidden", "plain.img"]);
    for (const name of ["dir", "passwd", "inside-link", "fifo", ".virtkit-tmp-0123"]) {
      await expect(pool.volumes.get(name)).rejects.toBeInstanceOf(NotFoundError);
    }
  });

  it("key and path are the canonical path; lookup by either finds it, a path outside the pool does not", async () => {
    const link = path.join(root, "link");
    await fsp.mkdir(poolDir);
    await fsp.symlink(poolDir, link);
    poolDir = link; // the pool is defined through a link: keys still name the real directory
    await open();
    const vol = await pool.volumes.create({ name: "a.img", capacityBytes: MiB(1) });
    const real = path.join(await fsp.realpath(link), "a.img");
    expect([vol.key, vol.path]).toEqual([real, real]);
    expect((await conn.volumes.lookup({ key: real })).name).toBe("a.img");
    expect((await conn.volumes.lookup({ path: real })).name).toBe("a.img");
    await expect(conn.volumes.lookup({ path: "/etc/passwd" })).rejects.toBeInstanceOf(NotFoundError);
    await expect(conn.volumes.lookup({ path: path.join(poolDir, "..", "pool", "..", "a.img") })).rejects.toBeInstanceOf(NotFoundError);
  });
});

describe("safety", () => {
  it("names that could leave the pool are TypeError and create nothing", async () => {
    await open();
    for (const name of ["..", ".", "a/b", "/etc/passwd", "../escape", "a\0b", ".virtkit-tmp-x"]) {
      await expect(pool.volumes.create({ name, capacityBytes: MiB(1) })).rejects.toBeInstanceOf(TypeError);
    }
    expect(fs.readdirSync(poolDir)).toEqual([]);
    expect(fs.existsSync(path.join(root, "escape"))).toBe(false);
  });

  it("a symbolic link to /etc/passwd is never followed: not opened, not deleted, not described", async () => {
    const target = path.join(root, "secret");
    await fsp.writeFile(target, "secret bytes");
    const before = await fileHash(target);
    await open();
    await fsp.symlink(target, path.join(poolDir, "evil"));
    await fsp.symlink("/etc/passwd", path.join(poolDir, "passwd"));
    for (const name of ["evil", "passwd"]) {
      await expect(pool.volumes.get(name)).rejects.toBeInstanceOf(NotFoundError);
    }
    // Create a real volume, then swap a link in under its name: every later call refuses to follow it.
    const vol = await pool.volumes.create({ name: "swap.img", capacityBytes: MiB(1) });
    await fsp.rm(path.join(poolDir, "swap.img"));
    await fsp.symlink(target, path.join(poolDir, "swap.img"));
    await expect(vol.info()).rejects.toBeInstanceOf(NotFoundError);
    await expect(vol.delete()).rejects.toBeInstanceOf(NotFoundError);
    await expect(vol.resize(MiB(2))).rejects.toBeInstanceOf(NotFoundError);
    await expect(vol.download()).rejects.toBeInstanceOf(NotFoundError);
    await expect(vol.upload({ length: 3 })).rejects.toBeInstanceOf(NotFoundError);
    await expect(pool.volumes.create({ name: "swap.img", capacityBytes: MiB(1) })).rejects.toBeInstanceOf(ConflictError);
    expect(await fileHash(target)).toBe(before);
    expect(fs.lstatSync(path.join(poolDir, "swap.img")).isSymbolicLink()).toBe(true);
  });

  it("a backing path must be absolute, exist, and have the format given", async () => {
    await open();
    const base = await pool.volumes.create({ name: "base.img", capacityBytes: MiB(1) });
    const qcow2 = { name: "top.qcow2", capacityBytes: MiB(1), format: "qcow2" as const };
    await expect(pool.volumes.create({ ...qcow2, backing: { path: "base.img", format: "raw" } })).rejects.toBeInstanceOf(TypeError);
    await expect(pool.volumes.create({ ...qcow2, backing: { path: path.join(poolDir, "nope"), format: "raw" } })).rejects.toBeInstanceOf(NotFoundError);
    await expect(pool.volumes.create({ ...qcow2, backing: { path: base.path, format: "qcow2" } })).rejects.toThrow(/is raw, not qcow2/);
    expect((await pool.volumes.list()).map((v) => v.name)).toEqual(["base.img"]);
  });
});

describe("create", () => {
  it("raw: a sparse file of the capacity, mode 0600", async () => {
    await open();
    const vol = await pool.volumes.create({ name: "a.img", capacityBytes: GiB(1) });
    const stats = await fsp.stat(vol.path);
    expect([stats.size, stats.blocks, stats.mode & 0o777]).toEqual([GiB(1), 0, 0o600]);
    expect(await vol.info()).toEqual({ capacityBytes: GiB(1), allocationBytes: 0, physicalBytes: GiB(1), format: "raw" });
  });

  it.skipIf(!QEMU)("qcow2, alone and over a raw and a qcow2 backing: qemu-img check is clean and info agrees", async () => {
    await open();
    const base = await pool.volumes.create({ name: "base.img", capacityBytes: MiB(64) });
    const mid = await pool.volumes.create({ name: "mid.qcow2", capacityBytes: MiB(64), format: "qcow2", backing: { path: base.path, format: "raw" } });
    const top = await pool.volumes.create({ name: "top.qcow2", capacityBytes: GiB(2), format: "qcow2", backing: { path: mid.path, format: "qcow2" } });
    const alone = await pool.volumes.create({ name: "alone.qcow2", capacityBytes: GiB(10), format: "qcow2" });
    for (const vol of [mid, top, alone]) await run("qemu-img", ["check", "-f", "qcow2", vol.path]);
    const info = await qemuInfo(top.path);
    expect([info.format, info["virtual-size"], info["backing-filename"], info["backing-filename-format"]]).toEqual(["qcow2", GiB(2), mid.path, "qcow2"]);
    expect((await qemuInfo(alone.path))["virtual-size"]).toBe(GiB(10));
    const ours = await top.info();
    expect([ours.format, ours.capacityBytes, ours.backing]).toEqual(["qcow2", GiB(2), { path: mid.path, format: "qcow2" }]);
    expect(ours.physicalBytes).toBe((await fsp.stat(top.path)).size);
    expect((await mid.info()).backing).toEqual({ path: base.path, format: "raw" });
  });

  it("a new volume is flushed once (qcow2: the image engine's fdatasync; raw: an fsync), then its directory once", async () => {
    const fsWithLog = faultyFs({});
    await open(createDirBackend({ fs: fsWithLog }));
    const canonical = await fsp.realpath(poolDir);
    const temp = (line: string) => line.replace(/\.virtkit-tmp-[0-9a-f]+$/, ".virtkit-tmp-*");
    await pool.volumes.create({ name: "a.qcow2", capacityBytes: GiB(1), format: "qcow2" });
    expect(fsWithLog.flushes.splice(0).map(temp)).toEqual([`datasync ${canonical}/.virtkit-tmp-*`, `sync ${canonical}`]);
    await pool.volumes.create({ name: "b.img", capacityBytes: MiB(1) });
    expect(fsWithLog.flushes.splice(0).map(temp)).toEqual([`sync ${canonical}/.virtkit-tmp-*`, `sync ${canonical}`]);
  });

  it("an existing name is a ConflictError and the existing file keeps its bytes", async () => {
    await open();
    await writeAt(path.join(poolDir, "taken.img"), 0, new Uint8Array([1, 2, 3]));
    const before = await fileHash(path.join(poolDir, "taken.img"));
    await expect(pool.volumes.create({ name: "taken.img", capacityBytes: MiB(1) })).rejects.toBeInstanceOf(ConflictError);
    await expect(pool.volumes.create({ name: "taken.img", capacityBytes: MiB(1), format: "qcow2" })).rejects.toBeInstanceOf(ConflictError);
    expect(await fileHash(path.join(poolDir, "taken.img"))).toBe(before);
  });

  it("a name taken between the check and the link is a ConflictError too, never an overwrite", async () => {
    const faults: Faults = {};
    const fsWithRace = faultyFs(faults);
    const racing = { ...fsWithRace, link: async (existing: string, created: string) => {
      await fsp.writeFile(created, "won the race");
      await fsWithRace.link(existing, created);
    } };
    await open(createDirBackend({ fs: racing }));
    await expect(pool.volumes.create({ name: "race.img", capacityBytes: MiB(1) })).rejects.toBeInstanceOf(ConflictError);
    expect(await fsp.readFile(path.join(poolDir, "race.img"), "utf8")).toBe("won the race");
    expect(fs.readdirSync(poolDir)).toEqual(["race.img"]);
  });

  it.each<{ what: string; faults: Faults; format: "raw" | "qcow2" }>([
    { what: "ENOSPC while writing qcow2 metadata", faults: { write: { bytes: 0, code: "ENOSPC" } }, format: "qcow2" },
    { what: "EIO on fsync", faults: { sync: "EIO" }, format: "raw" },
    { what: "ENOSPC on ftruncate", faults: { truncate: "ENOSPC" }, format: "raw" },
    { what: "EIO on link", faults: { link: "EIO" }, format: "qcow2" },
  ])("a failure mid-create ($what) leaves no file at all", async ({ faults, format }) => {
    const fsWithFaults = faultyFs({ ...faults });
    await open(createDirBackend({ fs: fsWithFaults }));
    const error = await pool.volumes.create({ name: "new.img", capacityBytes: MiB(8), format }).catch((e: unknown) => e);
    expect(String(error)).toMatch(/ENOSPC|EIO/);
    expect(fs.readdirSync(poolDir)).toEqual([]);
    expect([...fsWithFaults.writtenPaths].some((p) => path.basename(p).startsWith(".virtkit-tmp-"))).toBe(true);
    await expect(pool.volumes.get("new.img")).rejects.toBeInstanceOf(NotFoundError);
  });
});

describe("resize and formats", () => {
  it("raw: grows with a hole, shrinks only with shrink: true", async () => {
    await open();
    const vol = await pool.volumes.create({ name: "a.img", capacityBytes: MiB(1) });
    await vol.resize(MiB(3));
    expect([(await vol.info()).capacityBytes, (await fsp.stat(vol.path)).blocks]).toEqual([MiB(3), 0]);
    await expect(vol.resize(MiB(2))).rejects.toThrow();
    expect((await vol.info()).capacityBytes).toBe(MiB(3));
    await vol.resize(MiB(2), { shrink: true });
    expect((await fsp.stat(vol.path)).size).toBe(MiB(2));
  });

  it.skipIf(!QEMU)("qcow2 through the image engine: reads through the backing, upload, clone, resize and pull pass qemu-img", async () => {
    await open();
    const clock = { target: { connect: () => Promise.resolve(conn) } };
    const base = await pool.volumes.create({ name: "base.img", capacityBytes: MiB(4) });
    await writeAt(base.path, MiB(1), pattern(MiB(1), 1));
    const top = await pool.volumes.create({ name: "top.qcow2", capacityBytes: MiB(4), format: "qcow2", backing: { path: base.path, format: "raw" } });
    // Through the chain: the backing's data shows at depth 1.
    const depths: Array<[number, number, boolean, number]> = [];
    for await (const e of top.extents()) depths.push([e.offset, e.length, e.data, e.depth]);
    expect(depths).toContainEqual([MiB(1), MiB(1), true, 1]);
    await uploadBytes(clock.target, top, pattern(KiB(64), 9), MiB(3));
    await run("qemu-img", ["check", "-f", "qcow2", top.path]);
    const expected = path.join(root, "expected.raw");
    await fsp.copyFile(base.path, expected);
    await writeAt(expected, MiB(3), pattern(KiB(64), 9));
    await run("qemu-img", ["compare", "-f", "qcow2", "-F", "raw", top.path, expected]);
    // Clone (flattened) to raw and to qcow2.
    const flat = await (await pool.volumes.clone(top, { name: "flat.img", format: "raw" })).wait();
    await run("qemu-img", ["compare", "-f", "raw", "-F", "raw", flat.path, expected]);
    const copy = await (await pool.volumes.clone(top, { name: "copy.qcow2" })).wait();
    expect((await copy.info()).backing).toBeUndefined();
    await run("qemu-img", ["check", "-f", "qcow2", copy.path]);
    await run("qemu-img", ["compare", "-f", "qcow2", "-F", "raw", copy.path, expected]);
    // Grow, then pull the backing in.
    await top.resize(MiB(8));
    expect((await qemuInfo(top.path))["virtual-size"]).toBe(MiB(8));
    await run("qemu-img", ["check", "-f", "qcow2", top.path]);
    await (await top.pull()).wait();
    expect((await top.info()).backing).toBeUndefined();
    await run("qemu-img", ["check", "-f", "qcow2", top.path]);
    await fsp.truncate(expected, MiB(8));
    await run("qemu-img", ["compare", "-f", "qcow2", "-F", "raw", top.path, expected]);
  });

  it("a backing file outside the pool is allowed, read through, and never written", async () => {
    await open();
    const outside = path.join(root, "template.raw");
    await writeAt(outside, 0, pattern(KiB(64), 4));
    await fsp.truncate(outside, MiB(1));
    const before = await fileHash(outside);
    const top = await pool.volumes.create({ name: "top.qcow2", capacityBytes: MiB(1), format: "qcow2", backing: { path: outside, format: "raw" } });
    const target = { connect: () => Promise.resolve(conn) };
    await uploadBytes(target, top, pattern(KiB(4), 8), KiB(32));
    const head = await downloadBytes(target, top, { length: KiB(64) });
    const expected = pattern(KiB(64), 4);
    expected.set(pattern(KiB(4), 8), KiB(32));
    expect(Buffer.compare(Buffer.from(head), Buffer.from(expected))).toBe(0);
    expect(await fileHash(outside)).toBe(before);
  });

  it("a qcow2 whose backing is gone is NotFoundError on open; a vmdk cannot be opened", async () => {
    await open();
    const base = await pool.volumes.create({ name: "base.img", capacityBytes: MiB(1) });
    const top = await pool.volumes.create({ name: "top.qcow2", capacityBytes: MiB(1), format: "qcow2", backing: { path: base.path, format: "raw" } });
    await base.delete();
    await expect(top.download()).rejects.toBeInstanceOf(NotFoundError);
    expect((await top.info()).backing).toEqual({ path: base.path, format: "raw" });
  });

  it.skipIf(!QEMU)("other formats are listed with their format name, and cannot be written", async () => {
    await open();
    await run("qemu-img", ["create", "-q", "-f", "vmdk", path.join(poolDir, "disk.vmdk"), "16M"]);
    await run("qemu-img", ["create", "-q", "-f", "vdi", path.join(poolDir, "disk.vdi"), "16M"]);
    const vmdk = await pool.volumes.get("disk.vmdk");
    expect([(await vmdk.info()).format, (await vmdk.info()).capacityBytes]).toEqual(["vmdk", MiB(16)]);
    expect((await (await pool.volumes.get("disk.vdi")).info()).format).toBe("vdi");
    await expect(vmdk.upload({ length: 1 })).rejects.toBeInstanceOf(UnsupportedError);
    await expect(vmdk.resize(MiB(32))).rejects.toBeInstanceOf(UnsupportedError);
    await expect(vmdk.download()).rejects.toThrow(/vmdk/);
    await expect(pool.volumes.clone(vmdk, { name: "copy" })).rejects.toBeInstanceOf(UnsupportedError);
    await vmdk.delete();
    expect((await pool.volumes.list()).map((v) => v.name)).toEqual(["disk.vdi"]);
  });
});
