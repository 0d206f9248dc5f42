import { describe, expect, it } from "vitest";
import { createMemoryFile } from "../../../../core/image/memory_file.ts";
import { openImage } from "../../../../core/image/open_image.ts";
import { probeImage } from "../../../../core/image/probe.ts";
import { createQcow2 } from "../../../../core/image/qcow2/create.ts";

describe("createQcow2", () => {
  it("rounds the size up to 512 and lays out header, refcounts and L1 in whole clusters", async () => {
    const file = createMemoryFile();
    await createQcow2(file, { capacityBytes: 1000, clusterBytes: 512 });
    expect((await probeImage(file)).virtualSizeBytes).toBe(1024);
    expect((await file.size()) % 512).toBe(0);
    const io = await openImage(file);
    const extents = [];
    for await (const e of io.extents(0, 1024)) extents.push(e);
    expect(extents).toEqual([{ offset: 0, length: 1024, data: false, zero: true, depth: 0 }]);
    await io.close();
  });

  it("a 1 TiB image with 512 B clusters needs many refcount blocks and still opens", async () => {
    const file = createMemoryFile();
    await createQcow2(file, { capacityBytes: 2 ** 36, clusterBytes: 512 });
    const io = await openImage(file, { writable: true });
    await io.write(2 ** 36 - 512, new Uint8Array(512).fill(1));
    const buf = new Uint8Array(512);
    await io.read(2 ** 36 - 512, buf);
    expect(buf[511]).toBe(1);
    await io.close();
  });

  it("rejects bad arguments", async () => {
    const file = createMemoryFile();
    await expect(createQcow2(file, { capacityBytes: -1 })).rejects.toBeInstanceOf(RangeError);
    await expect(createQcow2(file, { capacityBytes: 1.5 })).rejects.toBeInstanceOf(RangeError);
    await expect(createQcow2(file, { capacityBytes: 1024, clusterBytes: 1000 })).rejects.toBeInstanceOf(RangeError);
    await expect(createQcow2(file, { capacityBytes: 1024, clusterBytes: 4 << 20 })).rejects.toBeInstanceOf(RangeError);
    await expect(createQcow2(file, { capacityBytes: 2 ** 50, clusterBytes: 512 })).rejects.toBeInstanceOf(RangeError);
    await expect(createQcow2(file, { capacityBytes: 1024, backing: { path: "", format: "raw" } })).rejects.toBeInstanceOf(TypeError);
    await expect(createQcow2(file, { capacityBytes: 1024, backing: { path: "x".repeat(2000), format: "raw" } })).rejects.toBeInstanceOf(RangeError);
  });
});

describe("huge sparse images", () => {
  it("a 1 PiB image with 2 MiB clusters maps end to end quickly", async () => {
    const file = createMemoryFile();
    await createQcow2(file, { capacityBytes: 2 ** 50, clusterBytes: 2 << 20 });
    const io = await openImage(file, { writable: true });
    await io.write(2 ** 49, Uint8Array.of(1));
    const extents = [];
    for await (const e of io.extents(0, io.capacityBytes)) extents.push(e);
    expect(extents.map((e) => e.data)).toEqual([false, true, false]);
    expect(extents[1]).toMatchObject({ offset: 2 ** 49, length: 2 << 20, depth: 0 });
    await io.close();
  });
});
