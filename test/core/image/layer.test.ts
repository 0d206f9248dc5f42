import { describe, expect, it } from "vitest";
import { openRawLayer } from "../../../core/image/layer.ts";
import { createMemoryFile } from "../../../core/image/memory_file.ts";
import { openImage } from "../../../core/image/open_image.ts";

describe("openRawLayer", () => {
  it("without a hook everything is data; a hook's holes become zero runs and gaps stay data", async () => {
    const plain = await openRawLayer(createMemoryFile(new Uint8Array(8192)));
    expect(await plain.runs(100, 5000)).toEqual([{ offset: 100, length: 5000, kind: "data" }]);
    const hooked = await openRawLayer(createMemoryFile(new Uint8Array(8192)), {
      rawExtents: () => Promise.resolve([{ offset: 0, length: 4096, data: true }, { offset: 4096, length: 2048, data: false }]),
    });
    expect(await hooked.runs(1000, 7192)).toEqual([
      { offset: 1000, length: 3096, kind: "data" },
      { offset: 4096, length: 2048, kind: "zero" },
      { offset: 6144, length: 2048, kind: "data" },
    ]);
  });

  it("a raw image through openImage reads, writes, zeroes and maps at depth 0", async () => {
    const io = await openImage(createMemoryFile(new Uint8Array(10_000).fill(3)), {
      format: "raw",
      writable: true,
      rawExtents: () => Promise.resolve([{ offset: 0, length: 10_000, data: true }]),
    });
    await io.write(10, Uint8Array.of(1, 2));
    await io.writeZeroes(12, 3);
    const buf = new Uint8Array(7);
    expect(await io.read(9, buf)).toBe(7);
    expect([...buf]).toEqual([3, 1, 2, 0, 0, 0, 3]);
    expect(await io.read(9_998, buf)).toBe(2);
    const extents = [];
    for await (const e of io.extents(0, 10_000)) extents.push(e);
    expect(extents).toEqual([{ offset: 0, length: 10_000, data: true, zero: false, depth: 0 }]);
    await io.close();
    await expect(io.read(0, buf)).rejects.toThrow(/closed/);
  });

  it("an unknown format is unsupported and its file is closed", async () => {
    const file = createMemoryFile(Uint8Array.from("vhdxfile", (c) => c.charCodeAt(0)));
    await expect(openImage(file)).rejects.toThrow(/vhdx/);
    await expect(file.size()).rejects.toThrow(/closed/);
  });
});
