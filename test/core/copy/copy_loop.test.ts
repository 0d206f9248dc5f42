import { describe, expect, it } from "vitest";
import { copyExtents, type CopyOptions, type CopyResult } from "../../../core/copy/copy_loop.ts";
import { RateLimiter } from "../../../core/copy/rate_limiter.ts";
import { createVirtualClock } from "../../../core/clock.ts";
import { VirtError } from "../../../core/errors.ts";
import type { Extent } from "../../../core/volume.ts";
import type { VolumeIO } from "../../../core/volume_io.ts";
import { KiB, MiB } from "../../../core/units.ts";
import { MemoryVolumeStore } from "../../../drivers/test/memory_volume.ts";
import { sameContent, sparseSource } from "./_support.ts";

const C = KiB(64);
const dataOrSkip = (e: Extent): "copy" | "skip" => (e.data ? "copy" : "skip");

const source = (capacityBytes = MiB(8)) => sparseSource(capacityBytes);

/** Wraps a read side, recording every read as [offset, length]. */
function recordReads(io: Pick<VolumeIO, "read" | "extents">) {
  const reads: Array<[number, number]> = [];
  const wrapped: Pick<VolumeIO, "read" | "extents"> = {
    read: (offset, target, options) => {
      reads.push([offset, target.byteLength]);
      return io.read(offset, target, options);
    },
    extents: (offset, length, options) => io.extents(offset, length, options),
  };
  return { reads, io: wrapped };
}

/** Wraps a write side, recording calls. */
function recordWrites(io: Pick<VolumeIO, "write" | "writeZeroes">) {
  const calls: Array<{ op: "write" | "zero" | "alloc"; offset: number; length: number; buffer?: ArrayBufferLike }> = [];
  const wrapped: Pick<VolumeIO, "write" | "writeZeroes"> = {
    write: (offset, data, options) => {
      calls.push({ op: "write", offset, length: data.byteLength, buffer: data.buffer });
      return io.write(offset, data, options);
    },
    writeZeroes: (offset, length, options) => {
      calls.push({ op: options?.allocate ? "alloc" : "zero", offset, length });
      return io.writeZeroes(offset, length, options);
    },
  };
  return { calls, io: wrapped };
}

describe("copyExtents", () => {
  it("copies a sparse source into a sparse target without reading holes or writing zero chunks", async () => {
    const src = source();
    const dst = new MemoryVolumeStore({ capacityBytes: MiB(8) });
    const { reads, io } = recordReads(src.open({ write: false }));
    const progress: number[] = [];
    const result = await copyExtents({
      source: io,
      target: dst.open({ write: true }),
      length: MiB(8),
      plan: dataOrSkip,
      zeroChunks: "skip",
      onProgress: (cur) => progress.push(cur),
    });
    expect(sameContent(src, dst)).toBe(true);
    expect(dst.allocationBytes).toBe(MiB(3));
    expect(dst.mapExtents().filter((e) => e.data).map((e) => [e.offset, e.length])).toEqual([[0, MiB(2)], [MiB(4), MiB(1)]]);
    expect(reads.every(([at, n]) => at + n <= MiB(2) || (at >= MiB(4) && at + n <= MiB(5)) || at >= MiB(6) && at + n <= MiB(7)))
      .toBe(true);
    expect(result).toEqual({ bytesCovered: MiB(8), bytesRead: MiB(4), bytesWritten: MiB(3), bytesZeroed: 0, bytesSkipped: MiB(5) });
    expect(progress.every((v, i) => i === 0 || v >= progress[i - 1]!)).toBe(true);
    expect(progress.at(-1)).toBe(MiB(8));
  });

  it("makes all-zero chunks read as zeros in a used target by default, without allocating", async () => {
    const src = source();
    const dst = new MemoryVolumeStore({ capacityBytes: MiB(8), pattern: { kind: "fill", byte: 0xee } });
    const { calls, io } = recordWrites(dst.open({ write: true }));
    const result = await copyExtents({ source: src.open({ write: false }), target: io, length: MiB(8), plan: dataOrSkip });
    expect(result.bytesZeroed).toBe(MiB(1));
    expect(calls.filter((c) => c.op === "zero").reduce((n, c) => n + c.length, 0)).toBe(MiB(1));
    expect(sameContent(src, dst, MiB(6), MiB(1))).toBe(true);
    expect(dst.mapExtents(MiB(6), MiB(1))).toEqual([{ offset: MiB(6), length: MiB(1), data: false, zero: true, depth: 0 }]);
  });

  it("writes all-zero chunks as data with zeroChunks: write", async () => {
    const src = source();
    const dst = new MemoryVolumeStore({ capacityBytes: MiB(8) });
    const result = await copyExtents({
      source: src.open({ write: false }),
      target: dst.open({ write: true }),
      length: MiB(8),
      plan: dataOrSkip,
      zeroChunks: "write",
    });
    expect(result.bytesWritten).toBe(MiB(4));
    expect(dst.allocationBytes).toBe(MiB(4));
  });

  it("zeroes planned extents without reads or tokens, and allocates zeros with tokens", async () => {
    const clock = createVirtualClock();
    const limiter = new RateLimiter({ bytesPerSecond: MiB(1), clock });
    const base = new MemoryVolumeStore({ capacityBytes: MiB(4), pattern: { kind: "fill", byte: 1 } });
    const dst = new MemoryVolumeStore({ capacityBytes: MiB(4), backing: { path: "b", format: "raw" }, backingStore: base });
    const src = new MemoryVolumeStore({ capacityBytes: MiB(4) });
    src.writeZeroesAt(0, MiB(2));
    src.writeAt(MiB(2), new Uint8Array(MiB(2)).fill(5));
    const { reads, io } = recordReads(src.open({ write: false }));
    const progress: number[] = [];
    const done = copyExtents({
      source: io,
      target: dst.open({ write: true }),
      length: MiB(4),
      chunkBytes: MiB(1) / 2,
      limiter,
      plan: (e) => (e.data ? "allocate-zero" : "zero"),
      onProgress: (cur) => progress.push(cur),
    });
    await clock.advance(0);
    expect(progress.at(-1)).toBe(MiB(2));
    await clock.advance(1000);
    expect(progress.at(-1)).toBe(MiB(3));
    await clock.advance(1000);
    const result = await done;
    expect(result).toEqual({ bytesCovered: MiB(4), bytesRead: 0, bytesWritten: 0, bytesZeroed: MiB(4), bytesSkipped: 0 });
    expect(reads).toEqual([]);
    expect(dst.allocationBytes).toBe(MiB(2));
    expect(dst.mapExtents()).toEqual([
      { offset: 0, length: MiB(2), data: false, zero: true, depth: 0 },
      { offset: MiB(2), length: MiB(2), data: true, zero: false, depth: 0 },
    ]);
    const bytes = new Uint8Array(MiB(4));
    dst.readAt(0, bytes);
    expect(bytes.every((b) => b === 0)).toBe(true);
  });

  it("holds copied data to the cap while holes cost nothing", async () => {
    const clock = createVirtualClock();
    const limiter = new RateLimiter({ bytesPerSecond: MiB(1), clock });
    const src = source();
    const dst = new MemoryVolumeStore({ capacityBytes: MiB(8) });
    let cur = 0;
    const done = copyExtents({
      source: src.open({ write: false }),
      target: dst.open({ write: true }),
      length: MiB(8),
      plan: dataOrSkip,
      limiter,
      onProgress: (c) => { cur = c; },
    });
    await clock.advance(1000);
    expect(cur).toBe(MiB(1));
    await clock.advance(1000);
    expect(cur).toBe(MiB(4));
    await clock.advance(1999);
    expect(cur).toBe(MiB(5) + MiB(1));
    await clock.advance(1);
    await done;
    expect(cur).toBe(MiB(8));
    expect(clock.now()).toBe(4000);
  });

  it("reads into one reusable buffer and waits for each write before the next read", async () => {
    const clock = createVirtualClock();
    const src = source();
    const dst = new MemoryVolumeStore({ capacityBytes: MiB(8) });
    const inner = dst.open({ write: true });
    const { reads, io: reader } = recordReads(src.open({ write: false }));
    const buffers = new Set<number>();
    let writes = 0;
    let maxAhead = 0;
    const slowTarget: Pick<VolumeIO, "write" | "writeZeroes"> = {
      async write(offset, data, options) {
        buffers.add(data.buffer.byteLength);
        expect(data.byteOffset).toBe(0);
        maxAhead = Math.max(maxAhead, reads.length - writes);
        await clock.sleep(10);
        writes++;
        return inner.write(offset, data, options);
      },
      writeZeroes: (offset, length, options) => inner.writeZeroes(offset, length, options),
    };
    const done = copyExtents({ source: reader, target: slowTarget, length: MiB(8), plan: dataOrSkip, chunkBytes: C * 4 });
    await clock.runUntilIdle();
    await done;
    expect(writes).toBe(MiB(3) / (C * 4));
    expect(maxAhead).toBe(1);
    expect([...buffers]).toEqual([C * 4]);
    expect(sameContent(src, dst)).toBe(true);
  });

  it("copies to another offset in the target", async () => {
    const src = source();
    const dst = new MemoryVolumeStore({ capacityBytes: MiB(2) });
    await copyExtents({
      source: src.open({ write: false }),
      target: dst.open({ write: true }),
      offset: MiB(4) - C,
      length: 2 * C,
      targetOffset: 10,
      plan: dataOrSkip,
    });
    expect(sameContent(src, dst, MiB(4) - C, 2 * C, 10)).toBe(true);
  });

  it("stops on abort with the signal's reason, leaving only whole chunks written", async () => {
    const clock = createVirtualClock();
    const limiter = new RateLimiter({ bytesPerSecond: MiB(1), clock });
    const ac = new AbortController();
    const src = source();
    const dst = new MemoryVolumeStore({ capacityBytes: MiB(8) });
    const { calls, io } = recordWrites(dst.open({ write: true }));
    let cur = 0;
    const done = copyExtents({
      source: src.open({ write: false }),
      target: io,
      length: MiB(8),
      plan: dataOrSkip,
      chunkBytes: MiB(1) / 4,
      limiter,
      signal: ac.signal,
      onProgress: (c) => { cur = c; },
    });
    await clock.advance(1100);
    const reason = new Error("abort");
    ac.abort(reason);
    await expect(done).rejects.toBe(reason);
    expect(cur).toBe(MiB(1));
    expect(calls.map((c) => c.length)).toEqual([MiB(1) / 4, MiB(1) / 4, MiB(1) / 4, MiB(1) / 4]);
    expect(dst.allocationBytes).toBe(MiB(1));
    expect(sameContent(src, dst, 0, MiB(1))).toBe(true);
    expect(clock.pendingTimers).toBe(0);
  });

  it("rejects at once when the signal is already aborted", async () => {
    const reason = new Error("no");
    const dst = new MemoryVolumeStore({ capacityBytes: MiB(8) });
    await expect(copyExtents({
      source: source().open({ write: false }),
      target: dst.open({ write: true }),
      length: MiB(8),
      plan: dataOrSkip,
      signal: AbortSignal.abort(reason),
    })).rejects.toBe(reason);
    expect(dst.allocationBytes).toBe(0);
  });

  it("awaits the checkpoint between chunks, so a pause holds the copy", async () => {
    const src = source();
    const dst = new MemoryVolumeStore({ capacityBytes: MiB(8) });
    let release: (() => void) | undefined;
    let calls = 0;
    let cur = 0;
    const done = copyExtents({
      source: src.open({ write: false }),
      target: dst.open({ write: true }),
      length: MiB(8),
      plan: dataOrSkip,
      checkpoint: () => {
        calls++;
        return calls === 3 ? new Promise<void>((resolve) => { release = resolve; }) : Promise.resolve();
      },
      onProgress: (c) => { cur = c; },
    });
    for (let i = 0; i < 20 && !release; i++) await new Promise((resolve) => setTimeout(resolve, 0));
    const heldAt = cur;
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setTimeout(resolve, 0));
    expect(cur).toBe(heldAt);
    expect(heldAt).toBeLessThan(MiB(8));
    release!();
    await done;
    expect(cur).toBe(MiB(8));
    expect(calls).toBeGreaterThan(3);
  });

  it("fails when the source extents do not cover the range", async () => {
    const source: Pick<VolumeIO, "read" | "extents"> = {
      read: async (_offset, target) => target.byteLength,
      async *extents() {
        yield { offset: 0, length: 10, data: true, zero: false, depth: 0 };
      },
    };
    const target = new MemoryVolumeStore({ capacityBytes: 100 }).open({ write: true });
    await expect(copyExtents({ source, target, length: 20, plan: () => "copy" })).rejects.toBeInstanceOf(VirtError);
  });

  it("rejects bad arguments", async () => {
    const base: CopyOptions = {
      source: source().open({ write: false }),
      target: new MemoryVolumeStore({ capacityBytes: MiB(8) }).open({ write: true }),
      length: MiB(1),
      plan: dataOrSkip,
    };
    await expect(copyExtents({ ...base, length: -1 })).rejects.toThrow(RangeError);
    await expect(copyExtents({ ...base, chunkBytes: 0 })).rejects.toThrow(RangeError);
    await expect(copyExtents({ ...base, targetOffset: 1.5 })).rejects.toThrow(RangeError);
    await expect(copyExtents({ ...base, zeroChunks: "drop" as "skip" })).rejects.toThrow(TypeError);
    await expect(copyExtents({ ...base, plan: () => "move" as "copy" })).rejects.toThrow(TypeError);
    await expect(copyExtents({ ...base, source: {} as VolumeIO })).rejects.toThrow(TypeError);
    await expect(copyExtents({ ...base, target: {} as VolumeIO })).rejects.toThrow(TypeError);
  });
});

describe("copyExtents with readAhead", () => {
  /** A target whose writes wait until the test lets each one go. */
  function heldTarget(inner: Pick<VolumeIO, "write" | "writeZeroes">) {
    const held: Array<{ offset: number; go: () => void }> = [];
    const target: Pick<VolumeIO, "write" | "writeZeroes"> = {
      async write(offset, data, options) {
        await new Promise<void>((go) => held.push({ offset, go }));
        return inner.write(offset, data, options);
      },
      writeZeroes: (offset, length, options) => inner.writeZeroes(offset, length, options),
    };
    return { held, target };
  }

  /** Lets the copy run until `ready()` holds, with a deadline counted in event-loop turns. */
  async function until(ready: () => boolean): Promise<void> {
    for (let turn = 0; turn < 1000 && !ready(); turn++) await new Promise((resolve) => setTimeout(resolve, 0));
    expect(ready()).toBe(true);
  }

  it("does what the one-buffer loop does, for every plan, with the same counts", async () => {
    const plan = (e: Extent) => (e.data ? (e.offset === MiB(6) ? "allocate-zero" : "copy") : e.offset === MiB(2) ? "zero" : "skip");
    const runs: Array<{ result: CopyResult; progress: number[]; bytes: Uint8Array; map: Extent[] }> = [];
    for (const readAhead of [false, true]) {
      const src = source();
      const dst = new MemoryVolumeStore({ capacityBytes: MiB(8), pattern: { kind: "fill", byte: 9 } });
      const progress: number[] = [];
      const result = await copyExtents({
        source: src.open({ write: false }),
        target: dst.open({ write: true }),
        length: MiB(8),
        chunkBytes: C * 3,
        plan,
        readAhead,
        onProgress: (cur) => progress.push(cur),
      });
      const bytes = new Uint8Array(MiB(8));
      dst.readAt(0, bytes);
      runs.push({ result, progress, bytes, map: dst.mapExtents() });
    }
    expect(runs[1]!.result).toEqual(runs[0]!.result);
    expect(runs[1]!.progress).toEqual(runs[0]!.progress);
    expect(runs[1]!.map).toEqual(runs[0]!.map);
    expect(runs[1]!.bytes.every((b, i) => b === runs[0]!.bytes[i])).toBe(true);
    expect(runs[1]!.result.bytesWritten).toBe(MiB(3));
  });

  it("reads the next chunk, even of the next data extent past a hole, while the previous one is written", async () => {
    const src = source();
    const dst = new MemoryVolumeStore({ capacityBytes: MiB(8) });
    const { reads, io } = recordReads(src.open({ write: false }));
    const { held, target } = heldTarget(dst.open({ write: true }));
    const done = copyExtents({ source: io, target, length: MiB(8), plan: dataOrSkip, chunkBytes: MiB(1), readAhead: true });
    await until(() => held.length === 1 && reads.length === 2);
    // Writing [0, 1 MiB) while [1, 2 MiB) is read; never a third read before a write is done.
    expect(reads).toEqual([[0, MiB(1)], [MiB(1), MiB(1)]]);
    held.shift()!.go();
    await until(() => held.length === 1 && reads.length === 3);
    // The last chunk of the first extent is being written; the read ahead is already past the hole.
    expect(held[0]!.offset).toBe(MiB(1));
    expect(reads[2]).toEqual([MiB(4), MiB(1)]);
    held.shift()!.go();
    await until(() => held.length === 1);
    held.shift()!.go();
    const result = await done;
    expect(result.bytesWritten).toBe(MiB(3));
    expect(sameContent(src, dst)).toBe(true);
  });

  it("stops on abort while a read ahead is pending, with the signal's reason and whole chunks only", async () => {
    const src = source();
    const dst = new MemoryVolumeStore({ capacityBytes: MiB(8) });
    const { held, target } = heldTarget(dst.open({ write: true }));
    const ac = new AbortController();
    let cur = 0;
    const done = copyExtents({
      source: src.open({ write: false }),
      target,
      length: MiB(8),
      plan: dataOrSkip,
      chunkBytes: MiB(1),
      readAhead: true,
      signal: ac.signal,
      onProgress: (c) => { cur = c; },
    });
    await until(() => held.length === 1);
    held.shift()!.go();
    await until(() => held.length === 1);
    const reason = new Error("stop");
    ac.abort(reason);
    held.shift()!.go();
    await expect(done).rejects.toBe(reason);
    // The write let go after the abort is refused by the target (it sees the signal); the first one stays.
    expect(cur).toBe(MiB(1));
    expect(dst.allocationBytes).toBe(MiB(1));
    expect(sameContent(src, dst, 0, MiB(1))).toBe(true);
  });

  it("does not settle while a source read it started still runs, even after an abort", async () => {
    let release: (() => void) | undefined;
    let reading = false;
    const source: Pick<VolumeIO, "read" | "extents"> = {
      async read(_offset, target) {
        reading = true;
        await new Promise<void>((resolve) => { release = resolve; });
        reading = false;
        target.fill(1);
        return target.byteLength;
      },
      async *extents(offset, length) {
        yield { offset, length, data: true, zero: false, depth: 0 };
      },
    };
    const target = new MemoryVolumeStore({ capacityBytes: MiB(1) }).open({ write: true });
    const ac = new AbortController();
    let settled = false;
    const done = copyExtents({ source, target, length: MiB(1), plan: () => "copy", signal: ac.signal, readAhead: true })
      .then(() => undefined, (error: unknown) => error)
      .finally(() => { settled = true; });
    await until(() => reading);
    const reason = new Error("stop");
    ac.abort(reason);
    for (let turn = 0; turn < 20; turn++) await new Promise((resolve) => setTimeout(resolve, 0));
    // The caller would close the source next: not while the read it cannot stop still runs.
    expect(settled).toBe(false);
    release!();
    expect(await done).toBe(reason);
    expect(reading).toBe(false);
  });

  it("loses no step when the loop and a read ahead both wait for a slow extent walk", async () => {
    // The read ahead past the last data chunk walks the final hole while the loop asks for its next step.
    const data = (offset: number) => ({ offset, length: MiB(1), data: true, zero: false, depth: 0 });
    const hole = (offset: number) => ({ offset, length: MiB(1), data: false, zero: true, depth: 0 });
    const layouts = [[data(0), hole(MiB(1))], [data(0), hole(MiB(1)), data(MiB(2)), hole(MiB(3))]];
    for (const layout of layouts) {
      for (const chunkBytes of [MiB(1), MiB(1) / 2]) {
        for (const delay of [0, 1, 2]) {
          const source: Pick<VolumeIO, "read" | "extents"> = {
            read: async (_offset, target) => {
              target.fill(5);
              return target.byteLength;
            },
            async *extents() {
              for (const extent of layout) {
                for (let i = 0; i < delay; i++) await new Promise((resolve) => setTimeout(resolve, 0));
                yield extent;
              }
            },
          };
          const size = layout.length * MiB(1);
          const dst = new MemoryVolumeStore({ capacityBytes: size, pattern: { kind: "fill", byte: 9 } });
          const progress: number[] = [];
          const result = await copyExtents({
            source,
            target: dst.open({ write: true }),
            length: size,
            chunkBytes,
            plan: (e) => (e.data ? "copy" : "zero"),
            readAhead: true,
            onProgress: (cur) => progress.push(cur),
          });
          const half = size / 2;
          expect(result).toEqual({ bytesCovered: size, bytesRead: half, bytesWritten: half, bytesZeroed: half, bytesSkipped: 0 });
          expect(progress.at(-1)).toBe(size);
          const bytes = new Uint8Array(size);
          dst.readAt(0, bytes);
          expect(layout.map((e) => bytes[e.offset + e.length - 1])).toEqual(layout.map((e) => (e.data ? 5 : 0)));
        }
      }
    }
  });

  it("starts no source read once it has failed, even when a read ahead was still walking the extents", async () => {
    let reads = 0;
    const source: Pick<VolumeIO, "read" | "extents"> = {
      // Like a volume that does not look at the signal: only the copy can keep it from being read (the
      // stream answers nothing once cancelled: its pending request has no view left to read into).
      async read(_offset, target) {
        reads++;
        target.fill(1);
        return target.byteLength;
      },
      async *extents() {
        yield { offset: 0, length: MiB(1), data: true, zero: false, depth: 0 };
        for (let i = 0; i < 3; i++) await new Promise((resolve) => setTimeout(resolve, 0));
        yield { offset: MiB(1), length: MiB(1), data: true, zero: false, depth: 0 };
      },
    };
    const failing = new Error("disk full");
    const target: Pick<VolumeIO, "write" | "writeZeroes"> = {
      write: () => Promise.reject(failing),
      writeZeroes: () => Promise.resolve(),
    };
    await expect(copyExtents({ source, target, length: MiB(2), chunkBytes: MiB(1), plan: () => "copy", readAhead: true }))
      .rejects.toBe(failing);
    for (let turn = 0; turn < 10; turn++) await new Promise((resolve) => setTimeout(resolve, 0));
    expect(reads).toBe(1);
  });

  it("reports a plan error met by a read ahead as the TypeError it is", async () => {
    const src = source();
    const dst = new MemoryVolumeStore({ capacityBytes: MiB(8) });
    const plan = (e: Extent) => (e.offset >= MiB(4) ? ("move" as "copy") : dataOrSkip(e));
    await expect(copyExtents({
      source: src.open({ write: false }),
      target: dst.open({ write: true }),
      length: MiB(8),
      plan,
      readAhead: true,
    })).rejects.toThrow(TypeError);
    expect(dst.allocationBytes).toBe(MiB(2));
  });
});
