import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { createMemoryFile } from "../../../../core/image/memory_file.ts";
import { openImage } from "../../../../core/image/open_image.ts";
import type { PositionalFile } from "../../../../core/image/positional_file.ts";
import { createQcow2 } from "../../../../core/image/qcow2/create.ts";
import { resizeQcow2 } from "../../../../core/image/qcow2/resize.ts";
import { qemu, qemuCheck, randomBytes, skipWithoutQemu, tempDir } from "../_qemu.ts";

/** A file that "dies" after `budget` writes: later writes are dropped, as a SIGKILL leaves the file. */
function dyingFile(inner: PositionalFile, budget: number): PositionalFile & { writes: number } {
  const file = {
    writes: 0,
    read: (offset: number, target: Uint8Array) => inner.read(offset, target),
    async write(offset: number, data: Uint8Array) {
      if (file.writes++ >= budget) throw new Error("killed");
      await inner.write(offset, data);
    },
    async truncate(size: number) {
      if (file.writes++ >= budget) throw new Error("killed");
      await inner.truncate(size);
    },
    size: () => inner.size(),
    flush: () => inner.flush(),
    close: () => Promise.resolve(),
  };
  return file;
}

describe.skipIf(skipWithoutQemu)("qcow2 writes stopped after every single write stay valid", () => {
  let root: { dir: string; cleanup(): void };
  beforeAll(() => {
    root = tempDir("image-crash-points");
  });
  afterAll(() => root.cleanup());

  it("512 B clusters over a raw base: writes, refcount table growth, zeroes, resize, backing drop", async () => {
    const base = join(root.dir, "base.raw");
    qemu("qemu-img", "create", "-f", "raw", base, "12M");
    qemu("qemu-io", "-f", "raw", "-c", "write -P 9 0 12M", base);
    const start = createMemoryFile();
    await createQcow2(start, { capacityBytes: 12 << 20, clusterBytes: 512, backing: { path: base, format: "raw" } });
    const pristine = new Uint8Array(await start.size());
    await start.read(0, pristine);
    const script = async (file: PositionalFile) => {
      const io = await openImage(file, { writable: true, openBacking: () => Promise.resolve({ file: createMemoryFile(new Uint8Array(12 << 20).fill(9)) }) });
      try {
        await io.write(1000, randomBytes(3000, 1));
        for (let i = 0; i < 9; i++) await io.write(i * (1 << 20) + 512, randomBytes(1 << 20, i + 2));
        await io.writeZeroes(5000, 70_000);
        await io.write(200, randomBytes(100, 3));
        await io.setBacking!(undefined);
      } finally {
        await io.close();
      }
      await resizeQcow2(file, 40 << 20);
    };
    // Count the writes of a full run, then stop after each of them in turn.
    const counter = dyingFile(createMemoryFile(pristine), Number.MAX_SAFE_INTEGER);
    await script(counter);
    expect(counter.writes).toBeGreaterThan(40);
    const image = join(root.dir, "top.qcow2");
    const step = Math.max(1, Math.floor(counter.writes / 60));
    let checked = 0;
    for (let budget = 0; budget <= counter.writes; budget += budget < 60 ? 1 : step) {
      const memory = createMemoryFile(pristine);
      await script(dyingFile(memory, budget)).catch((error: Error) => {
        if (error.message !== "killed") throw error;
      });
      const bytes = new Uint8Array(await memory.size());
      await memory.read(0, bytes);
      writeFileSync(image, bytes);
      const check = qemuCheck(image);
      expect([0, 3], `stopped after ${budget} writes:\n${check.output}`).toContain(check.status);
      checked++;
    }
    expect(checked).toBeGreaterThan(60);
  }, 120_000);
});
