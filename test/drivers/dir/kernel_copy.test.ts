/**
 * What the kernel does for a raw clone: `copy_file_range` between two raw volumes (`copyFrom`) and
 * `sync_file_range` as the background writeback, on the real runtime bindings (the addon on Node, FFI
 * on Deno) and through recording fakes; and a clone that falls back to reading and writing when the
 * kernel declines, at the start or in the middle.
 */
import fsp from "node:fs/promises";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { HoleFinder } from "../../../drivers/dir/hole_finder.ts";
import { connect, KiB, MiB } from "../../../mod.ts";
import { createDirBackend, nodeDirFs, runtimeHoleFinder } from "../../../drivers/dir/mod.ts";
import { type DirFile, OPEN_FLAGS } from "../../../drivers/dir/dir_fs.ts";
import { runtimeFileCopier } from "../../../drivers/dir/file_copier.ts";
import { openRawVolumeIO } from "../../../drivers/dir/raw_volume_io.ts";
import { runtimeWritebackStarter, type WritebackStarter } from "../../../drivers/dir/writeback_starter.ts";
import { hasQemuImg, loggedHandle, pattern, registryWithDir, removeDir, run, scratchDir, writeAt } from "./_support.ts";

const QEMU = await hasQemuImg();
let root: string;
beforeEach(async () => {
  root = await scratchDir("virtkit-kcopy-");
});
afterEach(() => removeDir(root));

/** A finder every descriptor passes `trustedFinder` with (its size is what fstat says), holes nowhere. */
function trusting(sizeBytes: number): HoleFinder {
  return { name: "all data", nextData: (_fd, offset) => offset, nextHole: () => sizeBytes, endOffset: () => sizeBytes };
}

function recordingStarter(fail = false): WritebackStarter & { calls: Array<[number, number]> } {
  const calls: Array<[number, number]> = [];
  return {
    name: "recorder",
    calls,
    start(_fd, offset, length) {
      calls.push([offset, length]);
      return fail ? Promise.reject(new Error("EINVAL: injected")) : Promise.resolve();
    },
  };
}

/** A real writable file whose fdatasync calls are logged. */
async function loggedFile(file: string, sizeBytes: number): Promise<{ handle: DirFile; log: string[] }> {
  await fsp.writeFile(file, "");
  await fsp.truncate(file, sizeBytes);
  return await loggedHandle(file);
}

describe("background writeback through a starter (sync_file_range)", () => {
  it("starts writeback of the range written since the last one, every 16 MiB; flush's fdatasync is the only sync", async () => {
    const { handle, log } = await loggedFile(path.join(root, "wb.img"), MiB(64));
    const starter = recordingStarter();
    const io = await openRawVolumeIO({ file: handle, write: true, holeFinder: trusting(MiB(64)), label: "wb", writebackStarter: starter });
    const chunk = pattern(MiB(1), 3);
    for (let at = MiB(2); at < MiB(42); at += MiB(1)) await io.write(at, chunk);
    expect(starter.calls).toEqual([[MiB(2), MiB(16)], [MiB(18), MiB(16)]]);
    expect(log).toEqual([]);
    await io.flush();
    expect(log).toEqual(["datasync"]);
    await io.close();
  });

  it("a failing starter is dropped: the next background writeback is an fdatasync", async () => {
    const { handle, log } = await loggedFile(path.join(root, "wb.img"), MiB(64));
    const starter = recordingStarter(true);
    const io = await openRawVolumeIO({ file: handle, write: true, holeFinder: trusting(MiB(64)), label: "wb", writebackStarter: starter });
    const chunk = pattern(MiB(1), 4);
    for (let at = 0; at < MiB(16); at += MiB(1)) await io.write(at, chunk);
    // Let the rejected start settle before the next 16 MiB.
    await new Promise((r) => setTimeout(r, 0));
    for (let at = MiB(16); at < MiB(32); at += MiB(1)) await io.write(at, chunk);
    expect([starter.calls.length, log]).toEqual([1, ["datasync"]]);
    await io.flush();
    await io.close();
  });

  it("is not used without a trusted hole finder (the descriptor may not be the OS one)", async () => {
    const { handle, log } = await loggedFile(path.join(root, "wb.img"), MiB(32));
    const starter = recordingStarter();
    const io = await openRawVolumeIO({ file: handle, write: true, holeFinder: undefined, label: "wb", writebackStarter: starter });
    for (let at = 0; at < MiB(16); at += MiB(1)) await io.write(at, pattern(MiB(1), 5));
    expect([starter.calls, log]).toEqual([[], ["datasync"]]);
    await io.close();
  });

  it("the runtime's starter (addon on Node, FFI on Deno) starts writeback of a real file and rejects a bad descriptor", async () => {
    const starter = runtimeWritebackStarter();
    if (starter === undefined) return expect(runtimeHoleFinder()).toBeUndefined(); // no binding: no lseek either
    const handle = await fsp.open(path.join(root, "real.img"), "w+");
    try {
      await handle.write(pattern(MiB(1), 6), 0, MiB(1), 0);
      await expect(starter.start(handle.fd, 0, MiB(1))).resolves.toBeUndefined();
    } finally {
      await handle.close();
    }
    await expect(starter.start(-1, 0, MiB(1))).rejects.toThrow();
  });
});

describe("copyFrom (copy_file_range)", () => {
  async function sparseSource(): Promise<string> {
    const file = path.join(root, "src.img");
    await fsp.writeFile(file, "");
    await fsp.truncate(file, MiB(8));
    await writeAt(file, MiB(1), pattern(MiB(2), 7));
    await writeAt(file, MiB(6), pattern(KiB(64), 8));
    return file;
  }

  async function openPair(copyFileRange = nodeDirFs.copyFileRange) {
    const finder = runtimeHoleFinder();
    const src = await sparseSource();
    const input = await openRawVolumeIO({ file: await nodeDirFs.open(src, OPEN_FLAGS.read), write: false, holeFinder: finder, label: "src" });
    const out = path.join(root, "out.img");
    const file = await nodeDirFs.open(out, OPEN_FLAGS.createNew, 0o600);
    await file.truncate(MiB(8));
    const output = await openRawVolumeIO({ file, write: true, holeFinder: finder, label: "out", ...(copyFileRange ? { copyFileRange } : {}) });
    return { src, out, input, output, finder };
  }

  it("copies a range between two raw files inside the kernel (or declines where this runtime cannot)", async () => {
    const { src, out, input, output, finder } = await openPair();
    const copied = await output.copyFrom!(input, MiB(1), MiB(1), MiB(2));
    if (runtimeFileCopier() === undefined || finder === undefined) {
      expect(copied).toBeUndefined();
    } else {
      expect(copied).toBeGreaterThan(0);
      let at = MiB(1) + copied!;
      while (at < MiB(3)) at += (await output.copyFrom!(input, at, at, MiB(3) - at))!;
      const [a, b] = [await fsp.readFile(src), await fsp.readFile(out)];
      expect(Buffer.compare(a.subarray(MiB(1), MiB(3)), b.subarray(MiB(1), MiB(3)))).toBe(0);
    }
    await input.close();
    await output.close();
  });

  it("declines a source that is not a raw volume, a range past the source's end, and (for good) after the kernel declined", async () => {
    let calls = 0;
    const declining = async () => (calls++, undefined);
    const { input, output, finder } = await openPair(declining);
    const memory = { read: async (_o: number, t: Uint8Array) => t.byteLength };
    expect(await output.copyFrom!(memory, 0, 0, MiB(1))).toBeUndefined();
    expect(calls).toBe(0);
    expect(await output.copyFrom!(input, MiB(8), 0, MiB(1))).toBeUndefined();
    expect(calls).toBe(0);
    expect(await output.copyFrom!(input, 0, 0, MiB(1))).toBeUndefined();
    expect(await output.copyFrom!(input, 0, 0, MiB(1))).toBeUndefined();
    // Once with a trusted finder (the one call that declined), never without one.
    expect(calls).toBe(finder ? 1 : 0);
    await expect(output.copyFrom!(input, 0, MiB(8), 1)).rejects.toThrow(RangeError);
    await input.close();
    await output.close();
  });

  it("counts toward the background writeback like a write", async () => {
    const finder = trusting(MiB(32));
    const src = path.join(root, "dense.img");
    await fsp.writeFile(src, pattern(MiB(32), 9));
    const input = await openRawVolumeIO({ file: await nodeDirFs.open(src, OPEN_FLAGS.read), write: false, holeFinder: finder, label: "src" });
    const { handle } = await loggedFile(path.join(root, "out.img"), MiB(32));
    const starter = recordingStarter();
    const copyFileRange = async (_f: DirFile, _fp: number, _t: DirFile, _tp: number, length: number) => length;
    const output = await openRawVolumeIO({ file: handle, write: true, holeFinder: finder, label: "out", writebackStarter: starter, copyFileRange });
    for (let at = 0; at < MiB(20); at += MiB(4)) expect(await output.copyFrom!(input, at, at, MiB(4))).toBe(MiB(4));
    expect(starter.calls).toEqual([[0, MiB(16)]]);
    await input.close();
    await output.close();
  });
});

describe("clone between raw files", () => {
  /** 12 MiB with data in four places, one of them an allocated run of zeros. */
  async function templateIn(dir: string): Promise<string> {
    const file = path.join(dir, "tpl.img");
    await fsp.writeFile(file, "");
    await fsp.truncate(file, MiB(12));
    await writeAt(file, 0, pattern(MiB(3), 10));
    await writeAt(file, MiB(5), new Uint8Array(MiB(1)));
    await writeAt(file, MiB(8), pattern(KiB(192), 11));
    await writeAt(file, MiB(12) - KiB(64), pattern(KiB(64), 12));
    return file;
  }

  const cases = [
    { name: "the runtime's kernel copy", copyFileRange: undefined },
    { name: "a kernel that declines at once (EXDEV)", copyFileRange: async () => undefined },
    { name: "a kernel that declines after 2 chunks", copyFileRange: "after-2" as const },
  ];
  for (const { name, copyFileRange } of cases) it.skipIf(!QEMU)(`with ${name}: identical to the source and at most as allocated as the source`, async () => {
    let calls = 0;
    const fs = copyFileRange === undefined
      ? nodeDirFs
      : {
        ...nodeDirFs,
        copyFileRange: copyFileRange === "after-2"
          ? async (...args: Parameters<NonNullable<typeof nodeDirFs.copyFileRange>>) => (++calls > 2 ? undefined : await nodeDirFs.copyFileRange!(...args))
          : copyFileRange,
      };
    const registry = registryWithDir(createDirBackend({ fs }));
    await using conn = await connect("test:///empty", { registry });
    const pool = await conn.pools.create({ name: "images", type: "dir", path: path.join(root, "pool") });
    await templateIn(path.join(root, "pool"));
    await pool.refresh();
    const tpl = await pool.volumes.get("tpl.img");
    const clone = await (await pool.volumes.clone(tpl, { name: "copy.img" })).wait();
    await run("qemu-img", ["compare", "-f", "raw", "-F", "raw", tpl.path, clone.path]);
    const [a, b] = [await tpl.info(), await clone.info()];
    expect(b.capacityBytes).toBe(a.capacityBytes);
    if (copyFileRange === undefined && runtimeFileCopier() !== undefined && runtimeHoleFinder() !== undefined) {
      // In the kernel, data extents are copied as they are: the allocated zeros stay allocated.
      expect(b.allocationBytes).toBe(a.allocationBytes);
    } else if (copyFileRange === "after-2") {
      expect(calls).toBe(runtimeHoleFinder() ? 3 : 0);
    }
    // Never more than the source, never the full capacity.
    expect(b.allocationBytes).toBeLessThanOrEqual(a.allocationBytes);
    expect(b.allocationBytes).toBeGreaterThanOrEqual(MiB(3) + KiB(256));
  });
});
