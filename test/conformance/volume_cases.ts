/**
 * Conformance cases for volumes: create, get, list, info, look-up, resize and delete with their errors
 * and events, and the data path (upload, download, extents).
 *
 * @module
 */
import { ConflictError, NotFoundError } from "../../core/errors.ts";
import { KiB, MiB } from "../../core/units.ts";
import type { Extent } from "../../core/volume.ts";
import { assert, assertEquals, assertRejects } from "./assert.ts";
import {
  assertAbortedWith,
  assertIncreasingSeq,
  downloadBytes,
  patternBytes,
  record,
  uniqueName,
  uploadBytes,
  withConnection,
  withPool,
} from "./_support.ts";
import type { ConformanceCase } from "./types.ts";

const crud: ConformanceCase = {
  name: "volumes: create() makes a volume that get(), list(), info() and lookup() see; delete() removes it",
  requires: ["storage", "volumeCreate", "raw"],
  run: (target) =>
    withConnection(target, (conn) =>
      withPool(target, conn, async (pool) => {
        const name = uniqueName("vol");
        const volume = await pool.volumes.create({ name, capacityBytes: MiB(1), format: "raw" });
        assertEquals([volume.name, volume.pool], [name, pool.name], "create() returns the volume");
        assert(volume.key.length > 0 && volume.path.length > 0, "a volume has a key and a path");
        const info = await volume.info();
        assertEquals([info.capacityBytes, info.format, info.backing], [MiB(1), "raw", undefined], "info() of the new volume");
        assert(info.allocationBytes >= 0 && info.allocationBytes <= info.physicalBytes + MiB(1), "allocationBytes is sane");
        assertEquals((await pool.volumes.get(name)).key, volume.key, "get() finds the volume by name");
        assertEquals((await pool.volumes.list()).map((v) => v.name), [name], "list() of a scratch pool");
        const byKey = await conn.volumes.lookup({ key: volume.key });
        assertEquals([byKey.name, byKey.pool], [name, pool.name], "lookup({ key })");
        const byPath = await conn.volumes.lookup({ path: volume.path });
        assertEquals([byPath.name, byPath.pool, byPath.key], [name, pool.name, volume.key], "lookup({ path })");
        await volume.delete();
        const error = await assertRejects(() => pool.volumes.get(name), NotFoundError, undefined, "get() after delete()");
        assertEquals(error.objectType, "volume", "NotFoundError.objectType");
        assertEquals(await pool.volumes.list(), [], "list() after delete()");
        await assertRejects(() => conn.volumes.lookup({ key: volume.key }), NotFoundError, undefined, "lookup() after delete()");
      })),
};

const createErrors: ConformanceCase = {
  name: "volumes: a taken name throws ConflictError, bad sizes RangeError/TypeError, bad names TypeError",
  requires: ["storage", "volumeCreate", "raw"],
  run: (target) =>
    withConnection(target, (conn) =>
      withPool(target, conn, async (pool) => {
        const name = uniqueName("vol");
        const first = await pool.volumes.create({ name, capacityBytes: MiB(1), format: "raw" });
        await assertRejects(() => pool.volumes.create({ name, capacityBytes: MiB(2), format: "raw" }), ConflictError, undefined, "a second create()");
        assertEquals((await first.info()).capacityBytes, MiB(1), "the first volume is untouched");
        const other = uniqueName("vol");
        for (const capacityBytes of [-1, 0.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 60]) {
          await assertRejects(() => pool.volumes.create({ name: other, capacityBytes }), RangeError, undefined, `create() with capacityBytes ${capacityBytes}`);
        }
        await assertRejects(() => pool.volumes.create({ name: other, capacityBytes: "1M" as unknown as number }), TypeError, undefined, 'create() with capacityBytes "1M"');
        for (const bad of ["", ".", "..", "a/b", "nul\0byte"]) {
          await assertRejects(() => pool.volumes.create({ name: bad, capacityBytes: MiB(1) }), TypeError, undefined, `create() named ${JSON.stringify(bad)}`);
        }
        const missing = await assertRejects(() => pool.volumes.get(other), NotFoundError, other, `get("${other}")`);
        assertEquals(missing.objectType, "volume", "NotFoundError.objectType");
        await assertRejects(() => conn.volumes.lookup({ key: `${first.key}-${other}` }), NotFoundError, undefined, "lookup() of an unknown key");
        assertEquals((await pool.volumes.list()).map((v) => v.name), [name], "the refused calls created nothing");
      })),
};

const resizeGrow: ConformanceCase = {
  name: "volumes: resize() grows; shrinking without { shrink: true } is refused; volume:resized is emitted",
  requires: ["storage", "volumeCreate", "raw", "volumeResize"],
  run: (target) =>
    withConnection(target, (conn) =>
      withPool(target, conn, async (pool) => {
        const volume = await pool.volumes.create({ name: uniqueName("vol"), capacityBytes: MiB(1), format: "raw" });
        const recording = record(conn.events, "volume:resized");
        await volume.resize(MiB(2));
        assertEquals((await volume.info()).capacityBytes, MiB(2), "capacity after resize(2 MiB)");
        await assertRejects(() => volume.resize(-1), RangeError, undefined, "resize(-1)");
        await assertRejects(() => volume.resize(MiB(1)), Error, undefined, "resize() to a smaller size without shrink");
        assertEquals((await volume.info()).capacityBytes, MiB(2), "capacity after a refused shrink");
        recording.stop();
        const mine = recording.events.filter((e) => e.volume === volume.name && e.pool === pool.name);
        assertEquals(mine.map((e) => e.capacityBytes), [MiB(2)], "volume:resized events carry the new capacity");
      })),
};

const volumeEvents: ConformanceCase = {
  name: "volumes: create() and delete() emit volume events naming pool and volume",
  requires: ["storage", "volumeCreate", "raw"],
  run: (target) =>
    withConnection(target, (conn) =>
      withPool(target, conn, async (pool) => {
        const recording = record(conn.events, "volume:*");
        const name = uniqueName("vol");
        const volume = await pool.volumes.create({ name, capacityBytes: MiB(1), format: "raw" });
        await volume.delete();
        recording.stop();
        const mine = recording.events.filter((e) => e.pool === pool.name && e.volume === name);
        assertEquals(mine.map((e) => e.type), ["volume:created", "volume:deleted"], `events of volume "${name}"`);
        assertIncreasingSeq(mine, "volume events");
      })),
};

const roundTrip: ConformanceCase = {
  name: "volumes: bytes uploaded at an offset download back unchanged; the rest reads as zeros",
  requires: ["storage", "volumeCreate", "raw", "volumeStreams"],
  run: (target) =>
    withConnection(target, (conn) =>
      withPool(target, conn, async (pool) => {
        const capacityBytes = MiB(1);
        const volume = await pool.volumes.create({ name: uniqueName("vol"), capacityBytes, format: "raw" });
        const offset = KiB(192);
        const data = patternBytes(KiB(300) + 17, 3);
        await uploadBytes(target, volume, data, offset);
        assertEquals(await downloadBytes(target, volume, { offset, length: data.byteLength }), data, "the uploaded range");
        const middle = await downloadBytes(target, volume, { offset: offset + 1000, length: 5000 });
        assertEquals(middle, data.subarray(1000, 6000), "a range inside the uploaded one");
        const whole = await downloadBytes(target, volume);
        assertEquals(whole.byteLength, capacityBytes, "a download without a range covers the whole volume");
        const expected = new Uint8Array(capacityBytes);
        expected.set(data, offset);
        assertEquals(whole, expected, "the whole volume (zeros around the uploaded range)");
        await assertRejects(() => volume.upload({ offset: capacityBytes - 10, length: 20 }), RangeError, undefined, "upload() past the end");
        await assertRejects(() => volume.download({ offset: -1 }), RangeError, undefined, "download() at offset -1");
      })),
};

async function collectExtents(iterable: AsyncIterable<Extent>): Promise<Extent[]> {
  const extents: Extent[] = [];
  for await (const extent of iterable) extents.push(extent);
  return extents;
}

function assertCovers(extents: readonly Extent[], offset: number, length: number, what: string): void {
  let at = offset;
  for (const [i, e] of extents.entries()) {
    assertEquals(e.offset, at, `${what}: extent ${i} starts where the previous one ended`);
    assert(Number.isInteger(e.length) && e.length > 0, `${what}: extent ${i} has a positive length (got ${e.length})`);
    assert(typeof e.data === "boolean" && typeof e.zero === "boolean", `${what}: extent ${i} has boolean data and zero`);
    assert(Number.isInteger(e.depth) && e.depth >= 0, `${what}: extent ${i} has a depth`);
    at += e.length;
  }
  assertEquals(at, offset + length, `${what}: the extents end where the range ends`);
}

const extents: ConformanceCase = {
  name: "volumes: extents() cover the volume exactly, in order, without overlap, and show written data",
  requires: ["storage", "volumeCreate", "raw", "volumeStreams"],
  run: (target) =>
    withConnection(target, (conn) =>
      withPool(target, conn, async (pool) => {
        const capacityBytes = MiB(4);
        const volume = await pool.volumes.create({ name: uniqueName("vol"), capacityBytes, format: "raw" });
        const offset = MiB(1);
        const length = MiB(1);
        await uploadBytes(target, volume, patternBytes(length, 5), offset);
        const all = await collectExtents(volume.extents());
        assertCovers(all, 0, capacityBytes, "extents()");
        for (const e of all.filter((x) => x.offset < offset + length && x.offset + x.length > offset)) {
          assert(e.data && !e.zero, `the written range is data, not zeros (extent at ${e.offset} is ${JSON.stringify(e)})`);
          assertEquals(e.depth, 0, `the written range is served by the volume itself (extent at ${e.offset})`);
        }
        const partOffset = offset - KiB(64);
        const partLength = KiB(256);
        assertCovers(await collectExtents(volume.extents({ offset: partOffset, length: partLength })), partOffset, partLength, "extents({ offset, length })");
      })),
};

const abortedSignal: ConformanceCase = {
  name: "volumes: a call with an aborted signal rejects with the signal's own reason and creates nothing",
  requires: ["storage", "volumeCreate", "raw"],
  run: (target) =>
    withConnection(target, (conn) =>
      withPool(target, conn, async (pool) => {
        const reason = new Error("the conformance kit aborted this call");
        const signal = AbortSignal.abort(reason);
        await assertAbortedWith(() => conn.pools.list({ signal }), reason, "pools.list()");
        await assertAbortedWith(() => pool.info({ signal }), reason, "pool.info()");
        await assertAbortedWith(() => pool.volumes.list({ signal }), reason, "volumes.list()");
        const name = uniqueName("vol");
        await assertAbortedWith(() => pool.volumes.create({ name, capacityBytes: MiB(1), format: "raw", signal }), reason, "volumes.create()");
        assertEquals(await pool.volumes.list(), [], "an aborted create() creates nothing");
      })),
};

/**
 * Cases for volumes (capabilities `storage`, `volumeCreate`, `raw`; resizing needs `volumeResize`, the
 * data path `volumeStreams`).
 *
 * @example
 * ```ts
 * import { volumeCases } from "./volume_cases.ts";
 * if (!volumeCases.some((c) => c.requires?.includes("volumeStreams"))) throw new Error("unexpected");
 * ```
 */
export const volumeCases: readonly ConformanceCase[] = Object.freeze([
  crud,
  createErrors,
  resizeGrow,
  volumeEvents,
  roundTrip,
  extents,
  abortedSignal,
]);
