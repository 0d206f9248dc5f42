import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ConflictError, connect, createVirtualClock, GiB, KiB, MiB, NotFoundError, type VirtualClock } from "../../../mod.ts";
import type { Connection } from "../../../core/connection.ts";
import type { StoragePool } from "../../../core/storage_pool.ts";
import type { Extent, Volume } from "../../../core/volume.ts";

async function readAll(volume: Volume, offset = 0, length?: number): Promise<Uint8Array> {
  const job = await volume.download({ offset, ...(length === undefined ? {} : { length }) });
  const chunks: Uint8Array[] = [];
  const reader = job.readable.getReader();
  for (let r = await reader.read(); !r.done; r = await reader.read()) chunks.push(r.value.slice());
  await job.wait();
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out;
}

async function upload(volume: Volume, offset: number, data: Uint8Array): Promise<void> {
  const job = await volume.upload({ offset, length: data.byteLength });
  const writer = job.writable.getWriter();
  await writer.write(data);
  await writer.close();
  await job.wait();
}

async function extentsOf(volume: Volume): Promise<Extent[]> {
  const out: Extent[] = [];
  for await (const extent of volume.extents()) out.push(extent);
  return out;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && a.every((byte, i) => byte === b[i]);
}

describe("memory pool volumes through the public API (default-pool)", () => {
  let clock: VirtualClock;
  let conn: Connection;
  let pool: StoragePool;
  beforeEach(async () => {
    clock = createVirtualClock();
    conn = await connect("test:///default", { clock });
    pool = await conn.pools.get("default-pool");
  });
  afterEach(() => conn.close());

  it("create() makes a thin volume at once; key and path are /<pool>/<name>; lookup finds it by either", async () => {
    const created: string[] = [];
    conn.events.on("volume:created", (e) => void created.push(`${e.pool}/${e.volume}`));
    const volume = await pool.volumes.create({ name: "disk1.img", capacityBytes: GiB(10) });
    expect([volume.key, volume.path, volume.pool]).toEqual(["/default-pool/disk1.img", "/default-pool/disk1.img", "default-pool"]);
    expect(await volume.info()).toEqual({ capacityBytes: GiB(10), allocationBytes: 0, physicalBytes: GiB(10), format: "raw" });
    expect(created).toEqual(["default-pool/disk1.img"]);
    expect((await conn.volumes.lookup({ key: volume.key })).name).toBe("disk1.img");
    expect((await conn.volumes.lookup({ path: volume.path })).name).toBe("disk1.img");
    await expect(pool.volumes.create({ name: "disk1.img", capacityBytes: MiB(1) })).rejects.toBeInstanceOf(ConflictError);
  });

  it("a volume whose capacity exceeds the pool's free space is refused", async () => {
    const error = await pool.volumes.create({ name: "huge.img", capacityBytes: GiB(100) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConflictError);
    expect((error as Error).message).toContain('Cannot create volume "huge.img" in pool "default-pool": not enough free space in pool');
    const small = await conn.pools.create({ name: "small", type: "memory", capacityBytes: MiB(8) });
    const volume = await small.volumes.create({ name: "a.img", capacityBytes: MiB(8) });
    await upload(volume, 0, new Uint8Array(MiB(4)).fill(1));
    expect(await small.info()).toMatchObject({ capacityBytes: MiB(8), allocationBytes: MiB(4), availableBytes: MiB(4) });
    await expect(small.volumes.create({ name: "b.img", capacityBytes: MiB(5) })).rejects.toThrow(/not enough free space/);
    await expect(volume.resize(MiB(13))).rejects.toThrow(/Cannot grow volume "a.img" in pool "small": not enough free space/);
    await small.volumes.create({ name: "b.img", capacityBytes: MiB(4) });
  });

  it("upload then download round-trips bytes at an offset; the rest stays a hole", async () => {
    const volume = await pool.volumes.create({ name: "up.img", capacityBytes: MiB(4) });
    const data = Uint8Array.from({ length: KiB(192) }, (_, i) => (i * 7 + 3) % 251);
    await upload(volume, MiB(1), data);
    expect(sameBytes(await readAll(volume, MiB(1), data.byteLength), data)).toBe(true);
    expect((await readAll(volume, 0, KiB(64))).every((b) => b === 0)).toBe(true);
    expect((await volume.info()).allocationBytes).toBe(KiB(192));
    expect((await extentsOf(volume)).filter((e) => e.data).map((e) => [e.offset, e.length])).toEqual([[MiB(1), KiB(192)]]);
  });

  it("clone() copies a thin volume's guest-visible content into a standalone volume", async () => {
    const source = await pool.volumes.get("test.qcow2");
    const job = await pool.volumes.clone(source, { name: "copy.img", format: "raw" });
    const clone = await job.wait();
    expect(clone.name).toBe("copy.img");
    const info = await clone.info();
    expect(info).toMatchObject({ capacityBytes: MiB(256), format: "raw" });
    expect(info.backing).toBeUndefined();
    for (const offset of [0, MiB(1), MiB(130), MiB(160), MiB(224)]) {
      expect(sameBytes(await readAll(clone, offset, KiB(64)), await readAll(source, offset, KiB(64)))).toBe(true);
    }
  });

  it("allocate() fills the holes of a thin volume from its backing; the content stays the same", async () => {
    const overlay = await pool.volumes.create({
      name: "over.qcow2",
      capacityBytes: MiB(256),
      format: "qcow2",
      backing: { path: "/default-pool/template.img", format: "raw" },
    });
    const before = await readAll(overlay, MiB(128), MiB(1));
    const job = await overlay.allocate({ offset: MiB(128), length: MiB(32) });
    await job.wait();
    expect((await overlay.info()).allocationBytes).toBe(MiB(32));
    expect(sameBytes(await readAll(overlay, MiB(128), MiB(1)), before)).toBe(true);
    expect((await extentsOf(overlay)).find((e) => e.offset === MiB(128))).toMatchObject({ depth: 0, data: true });
  });

  it("wipe() makes every byte read as zero, even over a backing", async () => {
    const thin = await pool.volumes.get("test.qcow2");
    const job = await thin.wipe({ bandwidth: MiB(512) });
    await clock.runUntilIdle();
    await job.wait();
    for (const offset of [0, MiB(10), MiB(160), MiB(224)]) {
      expect((await readAll(thin, offset, KiB(64))).every((b) => b === 0)).toBe(true);
    }
  });

  it("pull() flattens a volume offline; dom.disks() then shows no backing chain", async () => {
    const thin = await pool.volumes.get("test.qcow2");
    const sample = await readAll(thin, MiB(130), KiB(64));
    await (await thin.pull()).wait();
    expect((await thin.info()).backing).toBeUndefined();
    expect(sameBytes(await readAll(thin, MiB(130), KiB(64)), sample)).toBe(true);
    expect((await (await conn.domains.get("test")).disks())[0]!.backingChain).toEqual([]);
  });

  it("resize() grows with zeros and shrinks only with shrink: true", async () => {
    const resized: number[] = [];
    conn.events.on("volume:resized", (e) => void resized.push(e.capacityBytes));
    const volume = await pool.volumes.create({ name: "grow.img", capacityBytes: MiB(1) });
    await upload(volume, 0, new Uint8Array(KiB(64)).fill(9));
    await volume.resize(MiB(2));
    expect((await volume.info()).capacityBytes).toBe(MiB(2));
    expect((await readAll(volume, MiB(1), KiB(64))).every((b) => b === 0)).toBe(true);
    await expect(volume.resize(MiB(1))).rejects.toBeInstanceOf(RangeError);
    await volume.resize(KiB(64), { shrink: true });
    expect((await readAll(volume)).every((b) => b === 9)).toBe(true);
    expect(resized).toEqual([MiB(2), KiB(64)]);
  });

  it("delete() removes a volume; a volume that backs another cannot be deleted", async () => {
    const error = await (await pool.volumes.get("template.img")).delete().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConflictError);
    expect((error as Error).message).toContain('it backs "/default-pool/test.qcow2"');
    await (await pool.volumes.get("test.qcow2")).delete();
    await (await pool.volumes.get("template.img")).delete();
    expect(await pool.volumes.list()).toEqual([]);
    expect((await pool.info()).allocationBytes).toBe(0);
    await expect(pool.volumes.get("template.img")).rejects.toBeInstanceOf(NotFoundError);
  });

  it("a qcow2 volume's backing must be a memory volume of this connection", async () => {
    const error = await pool.volumes.create({ name: "x.qcow2", capacityBytes: MiB(1), format: "qcow2", backing: { path: "/srv/base.img", format: "raw" } })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NotFoundError);
    expect((error as Error).message).toContain('"/srv/base.img"');
  });
});

describe("memory pool lifecycle", () => {
  let conn: Connection;
  beforeEach(async () => {
    conn = await connect("test:///empty");
  });
  afterEach(() => conn.close());

  it("volumes survive stop() and start(); delete() empties the storage", async () => {
    const pool = await conn.pools.create({ name: "scratch", type: "memory", capacityBytes: GiB(1) });
    expect(await pool.info()).toEqual({ state: "active", capacityBytes: GiB(1), allocationBytes: 0, availableBytes: GiB(1), autostart: false });
    const volume = await pool.volumes.create({ name: "keep.img", capacityBytes: MiB(1) });
    await upload(volume, 0, new Uint8Array(KiB(64)).fill(5));
    await pool.stop();
    await pool.start();
    expect((await readAll(await pool.volumes.get("keep.img"), 0, 4)).join()).toBe("5,5,5,5");
    await pool.stop();
    await pool.delete();
    await pool.start();
    expect(await pool.volumes.list()).toEqual([]);
  });

  it("a pool whose volume backs a volume of another pool cannot be deleted", async () => {
    const base = await conn.pools.create({ name: "base", type: "memory" });
    const top = await conn.pools.create({ name: "top", type: "memory" });
    const template = await base.volumes.create({ name: "t.img", capacityBytes: MiB(1) });
    await top.volumes.create({ name: "o.qcow2", capacityBytes: MiB(1), format: "qcow2", backing: { path: template.path, format: "raw" } });
    await base.stop();
    await expect(base.delete()).rejects.toThrow('Cannot delete pool "base": its volume "t.img" backs "/top/o.qcow2"');
  });

  it("pool configs are checked: unknown fields and bad capacities are refused", async () => {
    await expect(conn.pools.define({ name: "p", type: "memory", path: "/x" } as never)).rejects.toThrow(/unknown field "path"/);
    await expect(conn.pools.define({ name: "p", type: "memory", capacityBytes: -5 })).rejects.toBeInstanceOf(RangeError);
    await expect(conn.pools.define({ name: "p", type: "memory", capacityBytes: "1G" } as never)).rejects.toBeInstanceOf(TypeError);
    expect(await conn.pools.list()).toEqual([]);
  });
});
