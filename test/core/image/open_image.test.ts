import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { allExtents, firstDifference, openHostImage, qemuFlatten, qemuMap, readAll, skipWithoutQemu, tempDir } from "./_qemu.ts";
import { shapes } from "./_shapes.ts";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

describe.skipIf(skipWithoutQemu)("openImage reads what qemu-img reads", () => {
  let root: { dir: string; cleanup(): void };
  beforeAll(() => {
    root = tempDir("image-read");
  });
  afterAll(() => root.cleanup());

  for (const [index, shape] of shapes().entries()) {
    it(`${shape.name}: bytes equal qemu-img convert, extents equal qemu-img map`, async () => {
      const dir = join(root.dir, String(index));
      mkdirSync(dir);
      const top = shape.build(dir);
      const io = await openHostImage(top);
      try {
        const bytes = await readAll(io);
        expect(firstDifference(bytes, qemuFlatten(top, dir))).toBe(-1);
        expect(await allExtents(io)).toEqual(qemuMap(top));
        // Unaligned reads across cluster and layer boundaries give the same bytes.
        const piece = new Uint8Array(777_777);
        for (const offset of [1, 65_535, 1_000_001]) {
          if (offset + piece.byteLength > io.capacityBytes) continue;
          await io.read(offset, piece);
          expect(firstDifference(piece, bytes.subarray(offset, offset + piece.byteLength))).toBe(-1);
        }
      } finally {
        await io.close();
      }
    });
  }
});
