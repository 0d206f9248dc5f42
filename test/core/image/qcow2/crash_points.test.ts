import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeSync, ftruncateSync, openSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { createMemoryFile } from "../../../../core/image/memory_file.ts";
import { openImage } from "../../../../core/image/open_image.ts";
import type { PositionalFile } from "../../../../core/image/positional_file.ts";
import { createQcow2 } from "../../../../core/image/qcow2/create.ts";
import { resizeQcow2 } from "../../../../core/image/qcow2/resize.ts";
import { firstDifference, qemu, qemuCheck, randomBytes, skipWithoutQemu, tempDir } from "../_qemu.ts";

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
    // Record every write of a full run. A run stopped after k writes left exactly the first k of them
    // (everything before the stop is the same run), so replaying the log one write at a time onto a host
    // file and checking after each gives every stop point without rerunning the script.
    const log: Array<{ offset: number; bytes?: Uint8Array; truncate?: number }> = [];
    const recorder = dyingFile(createMemoryFile(pristine), Number.MAX_SAFE_INTEGER);
    const recorded: PositionalFile = {
      ...recorder,
      read: (offset, target) => recorder.read(offset, target),
      size: () => recorder.size(),
      flush: () => recorder.flush(),
      close: () => recorder.close(),
      write(offset, data) {
        log.push({ offset, bytes: data.slice() });
        return recorder.write(offset, data);
      },
      truncate(size) {
        log.push({ offset: 0, truncate: size });
        return recorder.truncate(size);
      },
    };
    await script(recorded);
    expect(log.length).toBeGreaterThan(40);
    const image = join(root.dir, "top.qcow2");
    writeFileSync(image, pristine);
    const fd = openSync(image, "r+");
    try {
      for (let k = 0; k <= log.length; k++) {
        if (k > 0) {
          const op = log[k - 1]!;
          if (op.truncate !== undefined) ftruncateSync(fd, op.truncate);
          else writeSync(fd, op.bytes!, 0, op.bytes!.byteLength, op.offset);
        }
        const check = qemuCheck(image);
        expect([0, 3], `stopped after ${k} of ${log.length} writes:\n${check.output}`).toContain(check.status);
      }
    } finally {
      closeSync(fd);
    }
    // The replay is faithful: a real run stopped half-way leaves the same bytes as the log's first half.
    const half = Math.floor(log.length / 2);
    const stopped = createMemoryFile(pristine);
    await script(dyingFile(stopped, half)).catch((error: Error) => {
      // Once a write died the writer refuses the rest (a StateError whose cause is the death).
      if (error.message !== "killed" && (error.cause as Error | undefined)?.message !== "killed") throw error;
    });
    const replayed = createMemoryFile(pristine);
    for (const op of log.slice(0, half)) {
      if (op.truncate !== undefined) await replayed.truncate(op.truncate);
      else await replayed.write(op.offset, op.bytes!);
    }
    const bytesOf = async (f: PositionalFile) => {
      const out = new Uint8Array(await f.size());
      await f.read(0, out);
      return out;
    };
    expect(firstDifference(await bytesOf(stopped), await bytesOf(replayed))).toBe(-1);
  }, 120_000);
});
