import { describe, expect, it } from "vitest";
import { copyExtents } from "../../../core/copy/copy_loop.ts";
import { connect, createVirtualClock, MiB } from "../../../mod.ts";

describe("JobInfo.copiedBytes: the bytes really transferred, holes excluded", () => {
  it("the copy loop reports covered and copied bytes apart", async () => {
    const reports: [number, number][] = [];
    const source = {
      async read(_offset: number, target: Uint8Array) {
        target.fill(1);
        return target.byteLength;
      },
      async *extents() {
        yield { offset: 0, length: 4096, data: true, zero: false, depth: 0 };
        yield { offset: 4096, length: 8192, data: false, zero: true, depth: 0 };
        yield { offset: 12288, length: 4096, data: true, zero: false, depth: 0 };
      },
    };
    const target = { async write() {}, async writeZeroes() {} };
    await copyExtents({ source, target, length: 16384, plan: (e) => (e.data ? "copy" : "skip"), onProgress: (cur, copied) => reports.push([cur, copied]) });
    expect(reports.at(-1)).toEqual([16384, 8192]);
    expect(reports).toContainEqual([12288, 4096]); // the hole advanced cur, not copied
  });

  it("a block pull reports as copied exactly the data it read from the backing chain", async () => {
    const clock = createVirtualClock();
    await using conn = await connect("test:///default", { clock });
    const dom = await conn.domains.get("test");
    const volume = await (await conn.pools.get("default-pool")).volumes.get("test.qcow2");
    let inherited = 0;
    for await (const extent of volume.extents()) if (extent.data && extent.depth > 0) inherited += extent.length;
    const job = await dom.blockPull("vda", { bandwidth: MiB(64) });
    const progress: number[] = [];
    conn.events.on("job:progress", (e) => progress.push(e.job.copiedBytes!));
    await clock.runUntilIdle();
    await job.wait();
    const info = await job.info();
    expect(info.copiedBytes).toBe(inherited);
    expect(info.copiedBytes).toBeLessThan(info.end);
    expect(progress.length).toBeGreaterThan(1);
    expect(progress).toEqual([...progress].sort((a, b) => a - b)); // monotonic
  });
});
