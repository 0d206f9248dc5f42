import { describe, expect, it } from "vitest";
import { MemoryVolumeStore } from "../../../drivers/test/memory_volume.ts";
import { StateError } from "../../../core/errors.ts";
import type { BackingRef, Extent } from "../../../core/volume.ts";
import type { VolumeIO } from "../../../core/volume_io.ts";
import { KiB, MiB } from "../../../core/units.ts";

const C = KiB(64);
const raw = (path: string): BackingRef => ({ path, format: "raw" });

async function readAll(io: VolumeIO, offset: number, length: number): Promise<Uint8Array> {
  const bytes = new Uint8Array(length);
  expect(await io.read(offset, bytes)).toBe(length);
  return bytes;
}

async function extentsOf(io: VolumeIO, offset: number, length: number): Promise<Extent[]> {
  const out: Extent[] = [];
  for await (const e of io.extents(offset, length)) out.push(e);
  return out;
}

const allZero = (bytes: Uint8Array): boolean => bytes.every((b) => b === 0);
const same = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((v, i) => v === b[i]);

const ext = (offset: number, length: number, data: boolean, depth: number): Extent => ({
  offset,
  length,
  data,
  zero: !data,
  depth,
});

/** A base of 1 MiB with data 0xbb in cluster 1 and a top of 1 MiB over it. */
function chain() {
  const base = new MemoryVolumeStore({ name: "base", capacityBytes: MiB(1) });
  base.writeAt(C, new Uint8Array(C).fill(0xbb));
  const top = new MemoryVolumeStore({ name: "top", capacityBytes: MiB(1), backing: raw("base"), backingStore: base });
  return { base, top };
}

describe("MemoryVolumeStore", () => {
  it("starts as one unallocated run of zeros", async () => {
    const store = new MemoryVolumeStore({ capacityBytes: MiB(1) });
    const io = store.open({ write: false });
    expect(io.capacityBytes).toBe(MiB(1));
    expect(await readAll(io, 0, 16)).toEqual(new Uint8Array(16));
    expect(await extentsOf(io, 0, MiB(1))).toEqual([ext(0, MiB(1), false, 0)]);
    expect(store.allocationBytes).toBe(0);
  });

  it("allocates whole clusters on write and merges adjacent runs", async () => {
    const store = new MemoryVolumeStore({ capacityBytes: MiB(1) });
    const io = store.open({ write: true });
    await io.write(10, new Uint8Array([1, 2, 3]));
    await io.write(C + 5, new Uint8Array([4]));
    expect(Array.from(await readAll(io, 9, 5))).toEqual([0, 1, 2, 3, 0]);
    expect(store.allocationBytes).toBe(2 * C);
    expect(store.memoryBytes).toBe(2 * C);
    expect(await extentsOf(io, 0, MiB(1))).toEqual([ext(0, 2 * C, true, 0), ext(2 * C, MiB(1) - 2 * C, false, 0)]);
  });

  it("limits extents to the asked range", async () => {
    const store = new MemoryVolumeStore({ capacityBytes: MiB(1) });
    store.writeAt(C, new Uint8Array(C));
    expect(store.mapExtents(100, C)).toEqual([ext(100, C - 100, false, 0), ext(C, 100, true, 0)]);
    expect(store.mapExtents(C + 1, 10)).toEqual([ext(C + 1, 10, true, 0)]);
    expect(store.mapExtents(5, 0)).toEqual([]);
  });

  it("falls through unallocated ranges to the backing, with qemu-img map depths", async () => {
    const { top } = chain();
    const io = top.open({ write: true });
    expect((await readAll(io, C - 1, 3)).join()).toBe("0,187,187");
    await io.write(0, new Uint8Array(C).fill(1));
    expect(await extentsOf(io, 0, MiB(1))).toEqual([
      ext(0, C, true, 0),
      ext(C, C, true, 1),
      ext(2 * C, MiB(1) - 2 * C, false, 1),
    ]);
  });

  it("copies up the rest of a cluster on a partial write", async () => {
    const { base, top } = chain();
    const io = top.open({ write: true });
    await io.write(C + 1, new Uint8Array([7]));
    expect((await readAll(io, C, 3)).join()).toBe("187,7,187");
    expect(top.allocationBytes).toBe(C);
    expect(base.mapExtents(C, 1)).toEqual([ext(C, 1, true, 0)]);
    expect((await readAll(base.open({ write: false }), C + 1, 1))[0]).toBe(0xbb);
  });

  it("marks zero clusters that read as zeros and stop the fall-through", async () => {
    const { top } = chain();
    const io = top.open({ write: true });
    await io.writeZeroes(C, C);
    expect(allZero(await readAll(io, C, C))).toBe(true);
    expect(top.allocationBytes).toBe(0);
    expect(top.memoryBytes).toBe(0);
    expect(await extentsOf(io, 0, 3 * C)).toEqual([ext(0, C, false, 1), ext(C, C, false, 0), ext(2 * C, C, false, 1)]);
  });

  it("writes partial zero ranges as zero bytes over the backing data", async () => {
    const { top } = chain();
    const io = top.open({ write: true });
    await io.writeZeroes(C + 2, 4);
    expect((await readAll(io, C, 8)).join()).toBe("187,187,0,0,0,0,187,187");
    expect(top.mapExtents(C, C)).toEqual([ext(C, C, true, 0)]);
  });

  it("stores real zero clusters with allocate", async () => {
    const { top } = chain();
    const io = top.open({ write: true });
    await io.writeZeroes(C, 2 * C, { allocate: true });
    expect(allZero(await readAll(io, C, 2 * C))).toBe(true);
    expect(top.allocationBytes).toBe(2 * C);
    expect(top.mapExtents(C, 2 * C)).toEqual([ext(C, 2 * C, true, 0)]);
  });

  it("reads zeros past the end of a shorter backing, at the top's depth", async () => {
    const base = new MemoryVolumeStore({ capacityBytes: C, pattern: { kind: "fill", byte: 5 } });
    const top = new MemoryVolumeStore({ capacityBytes: 3 * C, backing: raw("b"), backingStore: base });
    expect((await readAll(top.open({ write: false }), C - 2, 4)).join()).toBe("5,5,0,0");
    expect(top.mapExtents()).toEqual([ext(0, C, true, 1), ext(C, 2 * C, false, 0)]);
  });

  it("serves patterns as data without memory, the same bytes at the same offset", async () => {
    const a = new MemoryVolumeStore({ capacityBytes: MiB(4), pattern: { kind: "random", seed: 42 } });
    const b = new MemoryVolumeStore({ capacityBytes: MiB(8), pattern: { kind: "random", seed: 42 } });
    const other = new MemoryVolumeStore({ capacityBytes: MiB(4), pattern: { kind: "random", seed: 43 } });
    expect(a.mapExtents()).toEqual([ext(0, MiB(4), true, 0)]);
    expect(a.allocationBytes).toBe(MiB(4));
    expect(a.memoryBytes).toBe(0);
    const read = (s: MemoryVolumeStore) => readAll(s.open({ write: false }), MiB(1) - 100, 200_000);
    const [x, y, z] = await Promise.all([read(a), read(b), read(other)]);
    expect(same(x, y)).toBe(true);
    expect(same(x, z)).toBe(false);
    expect(new Set(x).size).toBeGreaterThan(200);
    // Different 64 KiB blocks are not copies of each other.
    expect(same(x.subarray(0, C), x.subarray(C, 2 * C))).toBe(false);
    a.writeZeroesAt(0, C);
    expect(a.mapExtents(0, 2 * C)).toEqual([ext(0, C, false, 0), ext(C, C, true, 0)]);
    expect(a.allocationBytes).toBe(MiB(4) - C);
  });

  it("reads a fill pattern", async () => {
    const store = new MemoryVolumeStore({ capacityBytes: 1000, pattern: { kind: "fill", byte: 0xab } });
    const bytes = new Uint8Array(2000);
    expect(store.readAt(0, bytes)).toBe(1000);
    expect(bytes[999]).toBe(0xab);
    expect(bytes[1000]).toBe(0);
  });

  it("drops and sets the backing through a handle", async () => {
    const stores = new Map<string, MemoryVolumeStore>();
    const resolveBacking = (ref: BackingRef) => stores.get(ref.path)!;
    const base = new MemoryVolumeStore({ capacityBytes: MiB(1), pattern: { kind: "fill", byte: 1 } });
    const other = new MemoryVolumeStore({ capacityBytes: MiB(1), pattern: { kind: "fill", byte: 2 } });
    stores.set("base", base).set("other", other);
    const top = new MemoryVolumeStore({ capacityBytes: MiB(1), backing: raw("base"), resolveBacking });
    expect(top.backingStore).toBe(base);
    const io = top.open({ write: true });
    expect((await readAll(io, 0, 1))[0]).toBe(1);
    await io.setBacking!(raw("other"));
    expect(top.backing).toEqual(raw("other"));
    expect((await readAll(io, 0, 1))[0]).toBe(2);
    await io.setBacking!(undefined);
    expect(top.backing).toBeUndefined();
    expect((await readAll(io, 0, 1))[0]).toBe(0);
    expect(top.mapExtents()).toEqual([ext(0, MiB(1), false, 0)]);
    top.backing = raw("base");
    expect((await readAll(io, 0, 1))[0]).toBe(1);
  });

  it("refuses a backing it cannot resolve, a cycle, or one with a pattern", () => {
    const lonely = new MemoryVolumeStore({ capacityBytes: C });
    expect(() => lonely.setBacking(raw("nowhere"))).toThrow(TypeError);
    const a = new MemoryVolumeStore({ capacityBytes: C });
    const b = new MemoryVolumeStore({ capacityBytes: C, backing: raw("a"), backingStore: a });
    expect(() => a.setBacking(raw("b"), b)).toThrow(/cycle/);
    expect(() => a.setBacking(raw("a"), a)).toThrow(/cycle/);
    const patterned = new MemoryVolumeStore({ capacityBytes: C, pattern: { kind: "fill", byte: 1 } });
    expect(() => patterned.setBacking(raw("a"), a)).toThrow(TypeError);
    expect(() => new MemoryVolumeStore({ capacityBytes: C, pattern: { kind: "fill", byte: 1 }, backing: raw("a"), backingStore: a }))
      .toThrow(TypeError);
  });

  it("shrinks and grows: what was cut off comes back as zeros, never as backing data", async () => {
    const base = new MemoryVolumeStore({ capacityBytes: MiB(1), pattern: { kind: "fill", byte: 9 } });
    const top = new MemoryVolumeStore({ capacityBytes: MiB(1), backing: raw("b"), backingStore: base });
    top.writeAt(0, new Uint8Array(2 * C).fill(3));
    top.resize(C + 10);
    expect(top.capacityBytes).toBe(C + 10);
    expect(top.allocationBytes).toBe(2 * C);
    top.resize(4 * C);
    const io = top.open({ write: false });
    expect((await readAll(io, C + 8, 4)).join()).toBe("3,3,0,0");
    expect((await readAll(io, 3 * C, 4)).join()).toBe("0,0,0,0");
    expect(top.mapExtents()).toEqual([ext(0, 2 * C, true, 0), ext(2 * C, 2 * C, false, 0)]);
    top.resize(C);
    expect(top.allocationBytes).toBe(C);
    expect(() => top.resize(-1)).toThrow(RangeError);
  });

  it("grows a patterned volume with zeros", () => {
    const store = new MemoryVolumeStore({ capacityBytes: C, pattern: { kind: "fill", byte: 4 } });
    store.resize(2 * C);
    expect(store.mapExtents()).toEqual([ext(0, C, true, 0), ext(C, C, false, 0)]);
    expect(store.allocationBytes).toBe(C);
  });

  it("handles a capacity that is not a multiple of the cluster size", async () => {
    const store = new MemoryVolumeStore({ capacityBytes: C + 100 });
    const io = store.open({ write: true });
    await io.write(C, new Uint8Array(100).fill(6));
    const bytes = new Uint8Array(300);
    expect(await io.read(C, bytes)).toBe(100);
    expect(bytes[99]).toBe(6);
    expect(await io.read(C + 100, bytes)).toBe(0);
    expect(store.mapExtents()).toEqual([ext(0, C, false, 0), ext(C, 100, true, 0)]);
  });

  it("throws RangeError for I/O out of range", async () => {
    const store = new MemoryVolumeStore({ capacityBytes: MiB(1) });
    const io = store.open({ write: true });
    await expect(io.read(MiB(1) + 1, new Uint8Array(1))).rejects.toThrow(RangeError);
    await expect(io.read(-1, new Uint8Array(1))).rejects.toThrow(RangeError);
    await expect(io.write(MiB(1) - 1, new Uint8Array(2))).rejects.toThrow(RangeError);
    await expect(io.writeZeroes(MiB(1), 1)).rejects.toThrow(RangeError);
    await expect(io.write(0.5, new Uint8Array(1))).rejects.toThrow(RangeError);
    await expect(extentsOf(io, MiB(1) - 1, 2)).rejects.toThrow(RangeError);
    await expect(io.write(0, "x" as unknown as Uint8Array)).rejects.toThrow(TypeError);
    expect(store.allocationBytes).toBe(0);
  });

  it("refuses writes through a read-only handle and any call after close", async () => {
    const store = new MemoryVolumeStore({ name: "ro", capacityBytes: MiB(1) });
    const ro = store.open({ write: false });
    await expect(ro.write(0, new Uint8Array(1))).rejects.toThrow(StateError);
    await expect(ro.writeZeroes(0, 1)).rejects.toThrow(/read-only/);
    await expect(ro.setBacking!(undefined)).rejects.toThrow(StateError);
    const rw = store.open({ write: true });
    await rw.close();
    await expect(rw.read(0, new Uint8Array(1))).rejects.toThrow(/"ro": its handle is closed/);
    await expect(rw.write(0, new Uint8Array(1))).rejects.toThrow(StateError);
    await expect(rw.flush()).rejects.toThrow(StateError);
    await expect(extentsOf(rw, 0, 1)).rejects.toThrow(StateError);
    await ro.flush();
  });

  it("rejects with the signal's reason when aborted", async () => {
    const io = new MemoryVolumeStore({ capacityBytes: MiB(1) }).open({ write: true });
    const reason = new Error("stop");
    await expect(io.read(0, new Uint8Array(1), { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    await expect(io.write(0, new Uint8Array(1), { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
  });

  it("rejects bad options", () => {
    expect(() => new MemoryVolumeStore({ capacityBytes: -1 })).toThrow(RangeError);
    expect(() => new MemoryVolumeStore({ capacityBytes: C, clusterBytes: 1000 })).toThrow(RangeError);
    expect(() => new MemoryVolumeStore({ capacityBytes: C, clusterBytes: 256 })).toThrow(RangeError);
    expect(() => new MemoryVolumeStore({ capacityBytes: C, pattern: { kind: "fill", byte: 256 } })).toThrow(RangeError);
    expect(() => new MemoryVolumeStore({ capacityBytes: C, backingStore: new MemoryVolumeStore({ capacityBytes: C }) }))
      .toThrow(TypeError);
  });

  it("maps a sparse multi-terabyte volume, merging zero clusters with holes of the same depth", () => {
    const store = new MemoryVolumeStore({ capacityBytes: 2 ** 42 });
    store.writeAt(2 ** 41, new Uint8Array(1));
    store.writeZeroesAt(2 ** 40, C);
    expect(store.mapExtents()).toEqual([
      ext(0, 2 ** 41, false, 0),
      ext(2 ** 41, C, true, 0),
      ext(2 ** 41 + C, 2 ** 42 - 2 ** 41 - C, false, 0),
    ]);
    expect(store.mapExtents(2 ** 40 - 1, 2)).toEqual([ext(2 ** 40 - 1, 2, false, 0)]);
  });
});
