import { describe, expect, it } from "vitest";
import { createRangeByteStream } from "../../../core/copy/range_stream.ts";
import { RateLimiter } from "../../../core/copy/rate_limiter.ts";
import { createVirtualClock } from "../../../core/clock.ts";
import { VirtError } from "../../../core/errors.ts";
import type { Extent } from "../../../core/volume.ts";
import type { VolumeIO } from "../../../core/volume_io.ts";
import { KiB, MiB } from "../../../core/units.ts";
import { MemoryVolumeStore } from "../../../drivers/test/memory_volume.ts";

const C = KiB(64);

/** Wraps a volume and counts its reads; `closed` tells whether the extents walk was finished or returned. */
function counting(io: Pick<VolumeIO, "read" | "extents">) {
  const stats = { reads: 0, bytesRead: 0, extentsClosed: false };
  const wrapped: Pick<VolumeIO, "read" | "extents"> = {
    async read(offset, target, options) {
      stats.reads++;
      const n = await io.read(offset, target, options);
      stats.bytesRead += n;
      return n;
    },
    async *extents(offset, length, options) {
      try {
        yield* io.extents(offset, length, options);
      } finally {
        stats.extentsClosed = true;
      }
    },
  };
  return { stats, io: wrapped };
}

/** 1 MiB: random data in clusters 1-2 and 8, a zero cluster at 4, holes elsewhere. */
function sparseStore(): MemoryVolumeStore {
  const content = new MemoryVolumeStore({ capacityBytes: MiB(1), pattern: { kind: "random", seed: 3 } });
  const store = new MemoryVolumeStore({ capacityBytes: MiB(1) });
  for (const [at, len] of [[C, 2 * C], [8 * C, C]] as const) {
    const bytes = new Uint8Array(len);
    content.readAt(at, bytes);
    store.writeAt(at, bytes);
  }
  store.writeZeroesAt(4 * C, C);
  return store;
}

async function drainByob(stream: ReadableStream<Uint8Array>, viewBytes: number): Promise<{ bytes: Uint8Array; sizes: number[] }> {
  const reader = stream.getReader({ mode: "byob" });
  const parts: Uint8Array[] = [];
  const sizes: number[] = [];
  let buffer = new ArrayBuffer(viewBytes);
  for (;;) {
    const { value, done } = await reader.read(new Uint8Array(buffer));
    if (done) break;
    parts.push(value.slice());
    sizes.push(value.byteLength);
    buffer = value.buffer as ArrayBuffer;
  }
  return { bytes: concat(parts), sizes };
}

async function drainDefault(stream: ReadableStream<Uint8Array>): Promise<{ bytes: Uint8Array; sizes: number[] }> {
  const reader = stream.getReader();
  const parts: Uint8Array[] = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    parts.push(value);
  }
  return { bytes: concat(parts), sizes: parts.map((p) => p.byteLength) };
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) out.set(p, (at += p.byteLength) - p.byteLength);
  return out;
}

function expected(store: MemoryVolumeStore, offset: number, length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  store.readAt(offset, bytes);
  return bytes;
}

const same = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((v, i) => v === b[i]);

describe("createRangeByteStream", () => {
  it("fills BYOB reads over holes and data, reading only the data", async () => {
    const store = sparseStore();
    const { stats, io } = counting(store.open({ write: false }));
    const offset = C / 2;
    const length = 9 * C;
    const { bytes, sizes } = await drainByob(createRangeByteStream(io, { offset, length }), 40_000);
    expect(same(bytes, expected(store, offset, length))).toBe(true);
    expect(stats.bytesRead).toBe(3 * C);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(40_000);
    expect(stats.extentsClosed).toBe(true);
  });

  it("serves default readers in chunks of chunkBytes", async () => {
    const store = sparseStore();
    const { stats, io } = counting(store.open({ write: false }));
    const { bytes, sizes } = await drainDefault(createRangeByteStream(io, { length: MiB(1), chunkBytes: 3 * C }));
    expect(same(bytes, expected(store, 0, MiB(1)))).toBe(true);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(3 * C);
    expect(stats.bytesRead).toBe(3 * C);
  });

  it("reads nothing before a reader asks", async () => {
    const { stats, io } = counting(sparseStore().open({ write: false }));
    const stream = createRangeByteStream(io, { offset: C, length: C });
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(stats.reads).toBe(0);
    await stream.cancel();
  });

  it("copes with reads that return fewer bytes than asked", async () => {
    const store = new MemoryVolumeStore({ capacityBytes: MiB(1), pattern: { kind: "random", seed: 1 } });
    const inner = store.open({ write: false });
    const io: Pick<VolumeIO, "read" | "extents"> = {
      read: (offset, target, options) => inner.read(offset, target.subarray(0, Math.min(1000, target.byteLength)), options),
      extents: (offset, length, options) => inner.extents(offset, length, options),
    };
    const { bytes, sizes } = await drainByob(createRangeByteStream(io, { offset: 5, length: 10_000 }), 4096);
    expect(same(bytes, expected(store, 5, 10_000))).toBe(true);
    expect(sizes.every((n) => n <= 1000)).toBe(true);
  });

  it("ends at once for an empty range", async () => {
    const { stats, io } = counting(sparseStore().open({ write: false }));
    const { bytes } = await drainByob(createRangeByteStream(io, { offset: C, length: 0 }), 100);
    expect(bytes.byteLength).toBe(0);
    expect(stats.reads).toBe(0);
  });

  it("takes tokens before reading data, and none for holes", async () => {
    const clock = createVirtualClock();
    const limiter = new RateLimiter({ bytesPerSecond: 4 * C, clock });
    const store = sparseStore();
    const { stats, io } = counting(store.open({ write: false }));
    const reader = createRangeByteStream(io, { offset: 0, length: 3 * C, limiter }).getReader({ mode: "byob" });
    const hole = await reader.read(new Uint8Array(C));
    expect(hole.value?.byteLength).toBe(C);
    expect(clock.now()).toBe(0);
    let second: Uint8Array | undefined;
    const pending = reader.read(new Uint8Array(C)).then((r) => { second = r.value; });
    await clock.advance(249);
    expect(second).toBeUndefined();
    expect(stats.reads).toBe(0);
    await clock.advance(1);
    await pending;
    expect(second?.byteLength).toBe(C);
    expect(stats.reads).toBe(1);
  });

  it("errors with the signal's reason and gives back the reservation when aborted", async () => {
    const clock = createVirtualClock();
    const limiter = new RateLimiter({ bytesPerSecond: C, clock });
    const ac = new AbortController();
    const { stats, io } = counting(sparseStore().open({ write: false }));
    const reader = createRangeByteStream(io, { offset: C, length: 2 * C, limiter, signal: ac.signal }).getReader({ mode: "byob" });
    const pending = reader.read(new Uint8Array(C));
    await clock.advance(500);
    const reason = new Error("stop");
    ac.abort(reason);
    await expect(pending).rejects.toBe(reason);
    expect(stats.reads).toBe(0);
    expect(clock.pendingTimers).toBe(0);
    let doneAt = -1;
    const next = limiter.take(C / 2).then(() => { doneAt = clock.now(); });
    await clock.runUntilIdle();
    await next;
    expect(doneAt).toBe(1000);
    expect(stats.extentsClosed).toBe(true);
  });

  it("errors at once when the signal is already aborted", async () => {
    const reason = new Error("early");
    const { io } = counting(sparseStore().open({ write: false }));
    const reader = createRangeByteStream(io, { length: C, signal: AbortSignal.abort(reason) }).getReader({ mode: "byob" });
    await expect(reader.read(new Uint8Array(10))).rejects.toBe(reason);
  });

  it("releases the limiter and the extents walk on cancel", async () => {
    const clock = createVirtualClock();
    const limiter = new RateLimiter({ bytesPerSecond: C, clock });
    const { stats, io } = counting(sparseStore().open({ write: false }));
    const reader = createRangeByteStream(io, { offset: C, length: 2 * C, limiter }).getReader({ mode: "byob" });
    const pending = reader.read(new Uint8Array(C));
    await clock.advance(100);
    await reader.cancel(new Error("enough"));
    const result = await pending;
    expect(result.done).toBe(true);
    expect(clock.pendingTimers).toBe(0);
    expect(stats.reads).toBe(0);
    await clock.advance(0);
    expect(stats.extentsClosed).toBe(true);
  });

  it("fails when the extents do not cover the range", async () => {
    const io: Pick<VolumeIO, "read" | "extents"> = {
      read: async (_offset, target) => target.byteLength,
      async *extents(): AsyncIterable<Extent> {
        yield { offset: 0, length: 10, data: true, zero: false, depth: 0 };
      },
    };
    const reader = createRangeByteStream(io, { length: 20 }).getReader({ mode: "byob" });
    expect((await reader.read(new Uint8Array(20))).value?.byteLength).toBe(10);
    await expect(reader.read(new Uint8Array(20))).rejects.toBeInstanceOf(VirtError);
  });

  it("rejects bad arguments", () => {
    const io = sparseStore().open({ write: false });
    expect(() => createRangeByteStream(io, { length: -1 })).toThrow(RangeError);
    expect(() => createRangeByteStream(io, { offset: 0.5, length: 1 })).toThrow(RangeError);
    expect(() => createRangeByteStream(io, { length: 1, chunkBytes: 0 })).toThrow(RangeError);
    expect(() => createRangeByteStream({} as VolumeIO, { length: 1 })).toThrow(TypeError);
    expect(() => createRangeByteStream(io, undefined as unknown as { length: number })).toThrow(TypeError);
  });
});
