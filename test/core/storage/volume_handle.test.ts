import { describe, expect, it } from "vitest";
import { ConflictError, NotFoundError, StateError, UnsupportedError } from "../../../core/errors.ts";
import type { Extent, VolumeCreateOptions } from "../../../core/volume.ts";
import { KiB, MiB } from "../../../core/units.ts";
import { fill, harness, memoryBackend, storeOf } from "./_memory_backend.ts";

async function activePool(backend = memoryBackend()) {
  const h = harness({ backend });
  const pool = await h.manager.pools.create({ name: "images", type: "mem" });
  return { h, pool };
}

async function collect(iterable: AsyncIterable<Extent>): Promise<Extent[]> {
  const out: Extent[] = [];
  for await (const extent of iterable) out.push(extent);
  return out;
}

describe("volumes: create, get, list, info", () => {
  it("creates thin volumes, emits volume:created, lists them by name", async () => {
    const { h, pool } = await activePool();
    const b = await pool.volumes.create({ name: "b", capacityBytes: MiB(2) });
    const a = await pool.volumes.create({ name: "a", capacityBytes: MiB(1), format: "qcow2", backing: { path: b.path, format: "raw" } });
    expect([a.name, a.pool, a.key, a.path]).toEqual(["a", "images", "key:/mem/images/a", "/mem/images/a"]);
    expect((await pool.volumes.list()).map((v) => v.name)).toEqual(["a", "b"]);
    expect(await a.info()).toEqual({
      capacityBytes: MiB(1), allocationBytes: 0, physicalBytes: 0, format: "qcow2", backing: { path: b.path, format: "raw" },
    });
    expect((await (await pool.volumes.get("b")).info()).format).toBe("raw");
    expect(h.seen("volume:")).toEqual(["volume:created images/b", "volume:created images/a"]);
  });

  it.each([
    { what: "no options", options: undefined, error: TypeError },
    { what: "a bad name", options: { name: "a/b", capacityBytes: 1 }, error: TypeError },
    { what: "an empty name", options: { name: "", capacityBytes: 1 }, error: TypeError },
    { what: "a NUL in the name", options: { name: "a\u0000", capacityBytes: 1 }, error: TypeError },
    { what: "a string size", options: { name: "a", capacityBytes: "1G" }, error: TypeError },
    { what: "a negative size", options: { name: "a", capacityBytes: -1 }, error: RangeError },
    { what: "a NaN size", options: { name: "a", capacityBytes: NaN }, error: RangeError },
    { what: "a fractional size", options: { name: "a", capacityBytes: 1.5 }, error: RangeError },
    { what: "a size of 2**60", options: { name: "a", capacityBytes: 2 ** 60 }, error: RangeError },
    { what: "a zero size", options: { name: "a", capacityBytes: 0 }, error: RangeError },
    { what: "an unknown format", options: { name: "a", capacityBytes: 1, format: "vmdk" }, error: TypeError },
    { what: "a backing on raw", options: { name: "a", capacityBytes: 1, backing: { path: "/x", format: "raw" } }, error: TypeError },
    { what: "a backing without path", options: { name: "a", capacityBytes: 1, format: "qcow2", backing: { format: "raw" } }, error: TypeError },
    { what: "a backing without format", options: { name: "a", capacityBytes: 1, format: "qcow2", backing: { path: "/x" } }, error: TypeError },
  ])("create with $what throws", async ({ options, error }) => {
    const { h, pool } = await activePool();
    await expect(pool.volumes.create(options as VolumeCreateOptions)).rejects.toBeInstanceOf(error);
    expect(h.seen("volume:")).toEqual([]);
    expect(h.backend.calls).not.toContain("images:createVolume");
  });

  it("a taken name is the backend's ConflictError", async () => {
    const { pool } = await activePool();
    await pool.volumes.create({ name: "a", capacityBytes: 4096 });
    await expect(pool.volumes.create({ name: "a", capacityBytes: 4096 })).rejects.toBeInstanceOf(ConflictError);
  });

  it("a backend without createVolume gives UnsupportedError naming the driver", async () => {
    const backend = memoryBackend("lun");
    backend.omit.add("createVolume");
    const h = harness({ backend });
    const pool = await h.manager.pools.create({ name: "luns", type: "lun" });
    const error = await pool.volumes.create({ name: "a", capacityBytes: 4096 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnsupportedError);
    expect((error as UnsupportedError).message).toBe('Operation "createVolume" is not supported by driver "lun": pool "luns" cannot do it');
  });

  it("get of an unknown volume is NotFoundError; a bad name is TypeError", async () => {
    const { pool } = await activePool();
    await expect(pool.volumes.get("nope")).rejects.toBeInstanceOf(NotFoundError);
    await expect(pool.volumes.get("../etc")).rejects.toBeInstanceOf(TypeError);
  });

  it("handles of a stopped pool throw StateError", async () => {
    const { pool } = await activePool();
    const volume = await pool.volumes.create({ name: "a", capacityBytes: 4096 });
    await pool.stop();
    await expect(volume.info()).rejects.toThrow('Cannot read volume "a": pool "images" is inactive');
    await expect(volume.resize(8192)).rejects.toBeInstanceOf(StateError);
    await expect(volume.delete()).rejects.toBeInstanceOf(StateError);
    await expect(volume.wipe()).rejects.toBeInstanceOf(StateError);
  });
});

describe("volumes: extents", () => {
  it("maps a range and closes its read-only handle, also on break", async () => {
    const { h, pool } = await activePool();
    const volume = await pool.volumes.create({ name: "a", capacityBytes: KiB(64) });
    fill(storeOf(h.backend, "images", "a"), KiB(8), KiB(8), 7);
    expect(await collect(volume.extents())).toEqual([
      { offset: 0, length: KiB(8), data: false, zero: true, depth: 0 },
      { offset: KiB(8), length: KiB(8), data: true, zero: false, depth: 0 },
      { offset: KiB(16), length: KiB(48), data: false, zero: true, depth: 0 },
    ]);
    expect(await collect(volume.extents({ offset: KiB(12), length: KiB(8) }))).toEqual([
      { offset: KiB(12), length: KiB(4), data: true, zero: false, depth: 0 },
      { offset: KiB(16), length: KiB(4), data: false, zero: true, depth: 0 },
    ]);
    expect(await collect(volume.extents({ offset: KiB(64) }))).toEqual([]);

    // A backend whose handles count opens and closes.
    let open = 0;
    const access = h.manager.access;
    const original = access.openVolume;
    (access as { openVolume: typeof original }).openVolume = async (...args) => {
      const io = await original(...args);
      open++;
      return { ...io, capacityBytes: io.capacityBytes, extents: io.extents.bind(io), close: async () => { open--; await io.close(); } };
    };
    for await (const extent of volume.extents()) {
      expect(extent.offset).toBe(0);
      break;
    }
    expect(open).toBe(0);
  });

  it("checks the range", async () => {
    const { pool } = await activePool();
    const volume = await pool.volumes.create({ name: "a", capacityBytes: KiB(64) });
    expect(() => volume.extents({ offset: -1 })).toThrow(RangeError);
    expect(() => volume.extents({ length: 0.5 })).toThrow(RangeError);
    expect(() => volume.extents({ offset: "0" as unknown as number })).toThrow(TypeError);
    await expect(collect(volume.extents({ offset: KiB(60), length: KiB(8) }))).rejects.toThrow(
      'Invalid range 61440+8192: it passes the end of volume "a" in pool "images" (65536 bytes)',
    );
    await expect(collect(volume.extents({ offset: KiB(65) }))).rejects.toBeInstanceOf(RangeError);
  });
});

describe("volumes: resize and delete", () => {
  it("grows, refuses to shrink without shrink: true, shrinks with it", async () => {
    const { h, pool } = await activePool();
    const volume = await pool.volumes.create({ name: "a", capacityBytes: KiB(64) });
    await volume.resize(KiB(128));
    expect((await volume.info()).capacityBytes).toBe(KiB(128));
    await expect(volume.resize(KiB(32))).rejects.toThrow(
      'Cannot shrink volume "a" in pool "images" from 131072 to 32768 bytes without { shrink: true }',
    );
    await volume.resize(KiB(32), { shrink: true });
    expect((await volume.info()).capacityBytes).toBe(KiB(32));
    expect(h.events.filter((e) => e.type === "volume:resized").map((e) => (e as { capacityBytes: number }).capacityBytes)).toEqual([
      KiB(128), KiB(32),
    ]);
  });

  it.each([
    { size: -1, error: RangeError },
    { size: 0, error: RangeError },
    { size: 1.5, error: RangeError },
    { size: 2 ** 60, error: RangeError },
    { size: NaN, error: RangeError },
    { size: "1", error: TypeError },
  ])("resize($size) throws", async ({ size, error }) => {
    const { pool } = await activePool();
    const volume = await pool.volumes.create({ name: "a", capacityBytes: KiB(64) });
    await expect(volume.resize(size as number)).rejects.toBeInstanceOf(error);
    expect((await volume.info()).capacityBytes).toBe(KiB(64));
  });

  it("a backend without resizeVolume gives UnsupportedError", async () => {
    const backend = memoryBackend();
    backend.omit.add("resizeVolume");
    const { pool } = await activePool(backend);
    const volume = await pool.volumes.create({ name: "a", capacityBytes: KiB(64) });
    await expect(volume.resize(KiB(128))).rejects.toBeInstanceOf(UnsupportedError);
  });

  it("deletes and emits volume:deleted; a second delete is NotFoundError", async () => {
    const { h, pool } = await activePool();
    const volume = await pool.volumes.create({ name: "a", capacityBytes: KiB(64) });
    await volume.delete();
    expect(await pool.volumes.list()).toEqual([]);
    expect(h.seen("volume:deleted")).toEqual(["volume:deleted images/a"]);
    await expect(volume.delete()).rejects.toBeInstanceOf(NotFoundError);
  });
});

describe("volumes: lookup across pools", () => {
  it("finds by key and by path in any active pool", async () => {
    const { h, pool } = await activePool();
    const other = await h.manager.pools.create({ name: "other", type: "mem" });
    await pool.volumes.create({ name: "a", capacityBytes: 4096 });
    const b = await other.volumes.create({ name: "b", capacityBytes: 4096 });
    const byKey = await h.manager.volumes.lookup({ key: b.key });
    expect([byKey.pool, byKey.name]).toEqual(["other", "b"]);
    const byPath = await h.manager.volumes.lookup({ path: "/mem/images/a" });
    expect([byPath.pool, byPath.name]).toEqual(["images", "a"]);
    await other.stop();
    await expect(h.manager.volumes.lookup({ key: b.key })).rejects.toThrow(
      `Cannot find volume "${b.key}": no active pool has a volume with that key`,
    );
  });

  it("rejects malformed queries", async () => {
    const { h } = await activePool();
    await expect(h.manager.volumes.lookup({ key: "" })).rejects.toBeInstanceOf(TypeError);
    await expect(h.manager.volumes.lookup(null as unknown as { key: string })).rejects.toBeInstanceOf(TypeError);
    await expect(h.manager.volumes.lookup({ path: 7 } as unknown as { path: string })).rejects.toBeInstanceOf(TypeError);
  });
});
