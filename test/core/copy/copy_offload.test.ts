/**
 * The copy loop with `offload`: a target that copies from the source itself (`copyFrom`, as
 * `copy_file_range` between two raw files) gets every data chunk, each paid against the cap first, with
 * progress, pause and abort between chunks; a target that declines gets the rest read and written.
 */
import { describe, expect, it } from "vitest";
import { copyExtents } from "../../../core/copy/copy_loop.ts";
import { RateLimiter } from "../../../core/copy/rate_limiter.ts";
import { createVirtualClock } from "../../../core/clock.ts";
import type { Extent } from "../../../core/volume.ts";
import type { VolumeIO } from "../../../core/volume_io.ts";
import { KiB, MiB } from "../../../core/units.ts";
import { MemoryVolumeStore } from "../../../drivers/test/memory_volume.ts";
import { sameContent, sparseSource } from "./_support.ts";

const dataOrSkip = (e: Extent): "copy" | "skip" => (e.data ? "copy" : "skip");

const source = () => sparseSource(MiB(8), 5);
const same = sameContent;

/**
 * A target that copies from `src` itself, recording each call, and declines (answers `undefined`)
 * from call number `declineFrom` on; its writes and zeroes are recorded too.
 */
function offloading(src: MemoryVolumeStore, dst: MemoryVolumeStore, declineFrom = Number.POSITIVE_INFINITY) {
  const inner = dst.open({ write: true });
  const log: string[] = [];
  const target: Pick<VolumeIO, "write" | "writeZeroes" | "copyFrom"> = {
    write(offset, data, options) {
      log.push(`write ${offset / KiB(1)}+${data.byteLength / KiB(1)}`);
      return inner.write(offset, data, options);
    },
    writeZeroes(offset, length, options) {
      log.push(`zero ${offset / KiB(1)}+${length / KiB(1)}`);
      return inner.writeZeroes(offset, length, options);
    },
    async copyFrom(_source, sourceOffset, offset, length) {
      if (log.filter((l) => l.startsWith("copy") || l.startsWith("declined")).length >= declineFrom) {
        log.push(`declined ${sourceOffset / KiB(1)}`);
        return undefined;
      }
      log.push(`copy ${sourceOffset / KiB(1)}->${offset / KiB(1)}+${length / KiB(1)}`);
      const bytes = new Uint8Array(length);
      src.readAt(sourceOffset, bytes);
      dst.writeAt(offset, bytes);
      return length;
    },
  };
  return { target, log };
}

describe("copyExtents with offload", () => {
  it("hands every data chunk to copyFrom, at the target offset, and reads nothing", async () => {
    const src = source();
    const dst = new MemoryVolumeStore({ capacityBytes: MiB(9) });
    const { target, log } = offloading(src, dst);
    let reads = 0;
    const io = src.open({ write: false });
    const counted: Pick<VolumeIO, "read" | "extents"> = {
      read: (offset, buffer, options) => (reads++, io.read(offset, buffer, options)),
      extents: (offset, length, options) => io.extents(offset, length, options),
    };
    const progress: number[] = [];
    const result = await copyExtents({
      source: counted,
      target,
      length: MiB(8),
      targetOffset: MiB(1),
      plan: dataOrSkip,
      zeroChunks: "skip",
      chunkBytes: MiB(1),
      offload: true,
      onProgress: (cur) => progress.push(cur),
    });
    expect(reads).toBe(0);
    // The allocated zeros are copied as they are: offloaded bytes are not looked at.
    expect(log).toEqual(["copy 0->1024+1024", "copy 1024->2048+1024", "copy 4096->5120+1024", "copy 6144->7168+1024"]);
    expect(same(src, dst, 0, MiB(8), MiB(1))).toBe(true);
    expect(result).toEqual({ bytesCovered: MiB(8), bytesRead: MiB(4), bytesWritten: MiB(4), bytesZeroed: 0, bytesSkipped: MiB(4) });
    expect(progress.at(-1)).toBe(MiB(8));
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
  });

  it("is not used without offload: true, nor by a target without copyFrom", async () => {
    const src = source();
    const dst = new MemoryVolumeStore({ capacityBytes: MiB(8) });
    const { target, log } = offloading(src, dst);
    await copyExtents({ source: src.open({ write: false }), target, length: MiB(8), plan: dataOrSkip, zeroChunks: "skip" });
    expect(log).toEqual(["write 0+1024", "write 1024+1024", "write 4096+1024"]);
    const plain = new MemoryVolumeStore({ capacityBytes: MiB(8) });
    await copyExtents({ source: src.open({ write: false }), target: plain.open({ write: true }), length: MiB(8), plan: dataOrSkip, offload: true });
    expect(same(src, plain, 0, MiB(8))).toBe(true);
  });

  it("reads and writes the rest once the target declines, from the chunk it declined, with the same result", async () => {
    const src = source();
    const dst = new MemoryVolumeStore({ capacityBytes: MiB(8) });
    const { target, log } = offloading(src, dst, 2);
    const result = await copyExtents({
      source: src.open({ write: false }),
      target,
      length: MiB(8),
      plan: dataOrSkip,
      zeroChunks: "skip",
      chunkBytes: KiB(512),
      readAhead: true,
      offload: true,
    });
    expect(log).toEqual([
      "copy 0->0+512",
      "copy 512->512+512",
      "declined 1024",
      "write 1024+512",
      "write 1536+512",
      "write 4096+512",
      "write 4608+512",
    ]);
    expect(same(src, dst, 0, MiB(8))).toBe(true);
    expect(result).toEqual({ bytesCovered: MiB(8), bytesRead: MiB(4), bytesWritten: MiB(3), bytesZeroed: 0, bytesSkipped: MiB(5) });
  });

  it("pays each offloaded chunk against the cap before copying it", async () => {
    const clock = createVirtualClock();
    const limiter = new RateLimiter({ bytesPerSecond: MiB(1), clock });
    const src = source();
    const dst = new MemoryVolumeStore({ capacityBytes: MiB(8) });
    const { target, log } = offloading(src, dst);
    let cur = 0;
    const done = copyExtents({
      source: src.open({ write: false }),
      target,
      length: MiB(8),
      plan: dataOrSkip,
      chunkBytes: KiB(256),
      limiter,
      offload: true,
      onProgress: (c) => { cur = c; },
    });
    await clock.advance(1000);
    expect(cur).toBe(MiB(1));
    expect(log).toHaveLength(4);
    await clock.advance(1000);
    expect(cur).toBe(MiB(4));
    await clock.advance(2000);
    await done;
    expect(cur).toBe(MiB(8));
    expect(clock.now()).toBe(4000);
    expect(log).toHaveLength(16);
  });

  it("stops between chunks on abort, and waits at the checkpoint between chunks", async () => {
    const clock = createVirtualClock();
    const limiter = new RateLimiter({ bytesPerSecond: MiB(1), clock });
    const src = source();
    const dst = new MemoryVolumeStore({ capacityBytes: MiB(8) });
    const { target, log } = offloading(src, dst);
    const ac = new AbortController();
    let gate: Promise<void> = Promise.resolve();
    let open = () => {};
    const done = copyExtents({
      source: src.open({ write: false }),
      target,
      length: MiB(8),
      plan: dataOrSkip,
      chunkBytes: KiB(256),
      limiter,
      signal: ac.signal,
      offload: true,
      checkpoint: () => gate,
    });
    await clock.advance(500);
    expect(log).toHaveLength(2);
    gate = new Promise((resolve) => (open = resolve));
    await clock.advance(2000);
    // Held at the checkpoint after the chunk it was copying: no further call.
    expect(log).toHaveLength(3);
    open();
    gate = Promise.resolve();
    await clock.advance(250);
    expect(log).toHaveLength(4);
    const reason = new Error("stop");
    ac.abort(reason);
    await expect(done).rejects.toBe(reason);
    expect(log).toHaveLength(4);
    expect(same(src, dst, 0, MiB(1))).toBe(true);
    expect(clock.pendingTimers).toBe(0);
  });

  it("fails with the target's error, and refuses a copyFrom that claims more than it was asked", async () => {
    const src = source();
    const dst = new MemoryVolumeStore({ capacityBytes: MiB(8) });
    const failing = { ...dst.open({ write: true }), copyFrom: () => Promise.reject(Object.assign(new Error("ENOSPC: full"), { code: "ENOSPC" })) };
    await expect(copyExtents({ source: src.open({ write: false }), target: failing, length: MiB(8), plan: dataOrSkip, offload: true }))
      .rejects.toMatchObject({ code: "ENOSPC" });
    const lying = { ...dst.open({ write: true }), copyFrom: (_s: unknown, _o: number, _t: number, length: number) => Promise.resolve(length + 1) };
    await expect(copyExtents({ source: src.open({ write: false }), target: lying, length: MiB(8), plan: dataOrSkip, offload: true }))
      .rejects.toThrow(/copyFrom returned/);
  });
});
