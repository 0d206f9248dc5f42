/**
 * The runtime's hole finder: on Node the `native/lseek` addon (built by `npm install`; under CI=true it
 * must be there), on Deno libc's `lseek` through FFI. A 1 GiB file with 1 MiB of data is mapped
 * without a single read; the addon reports ENXIO as -1 and other errors by errno; loading it finds the
 * build from both the source and the `dist/` layout and never throws.
 */
import fsp from "node:fs/promises";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Extent } from "../../../core/volume.ts";
import { GiB, MiB } from "../../../mod.ts";
import { type DirFile, nodeDirFs, OPEN_FLAGS } from "../../../drivers/dir/dir_fs.ts";
import { runtimeHoleFinder } from "../../../drivers/dir/hole_finder.ts";
import { loadLseekAddon } from "../../../drivers/dir/node_lseek.ts";
import { openRawVolumeIO } from "../../../drivers/dir/raw_volume_io.ts";
import { pattern, removeDir, scratchDir, writeAt } from "./_support.ts";

const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";
const SOURCE_DIR = new URL("../../../drivers/dir/node_lseek.ts", import.meta.url);
const addon = isDeno ? undefined : loadLseekAddon(SOURCE_DIR);
if (!isDeno && !addon && process.env.CI === "true") {
  throw new Error("native/lseek is not built (npm install runs native/build.mjs): under CI=true Node must find holes with lseek");
}
const finder = runtimeHoleFinder();

let root: string;
beforeEach(async () => {
  root = await scratchDir("virtkit-holes-");
});
afterEach(() => removeDir(root));

/** A DirFile that counts the bytes read through it. */
function counting(file: DirFile): DirFile & { readonly reads: number } {
  let reads = 0;
  return {
    fd: file.fd,
    get reads() {
      return reads;
    },
    read: (buffer, offset, length, position) => {
      reads++;
      return file.read(buffer, offset, length, position);
    },
    write: (buffer, offset, length, position) => file.write(buffer, offset, length, position),
    truncate: (size) => file.truncate(size),
    datasync: () => file.datasync(),
    sync: () => file.sync(),
    stat: () => file.stat(),
    close: () => file.close(),
  };
}

describe("runtime hole finder", () => {
  it.skipIf(!isDeno && !addon)("maps 1 GiB with 1 MiB of data at 512 MiB without reading", async () => {
    expect(finder?.name).toBe("lseek");
    const file = path.join(root, "big.img");
    await fsp.writeFile(file, "");
    await fsp.truncate(file, GiB(1));
    await writeAt(file, MiB(512), pattern(MiB(1), 7));
    const handle = counting(await nodeDirFs.open(file, OPEN_FLAGS.read));
    const io = await openRawVolumeIO({ file: handle, write: false, holeFinder: finder, label: 'volume "big.img"' });
    const extents: Extent[] = [];
    try {
      for await (const e of io.extents(0, GiB(1))) extents.push(e);
    } finally {
      await io.close();
    }
    expect(extents.map((e) => [e.offset, e.length, e.data])).toEqual([
      [0, MiB(512), false],
      [MiB(512), MiB(1), true],
      [MiB(513), GiB(1) - MiB(513), false],
    ]);
    expect(handle.reads).toBe(0);
  });

  it.skipIf(!isDeno && !addon)("answers for a file with no data and one that is all data", async () => {
    const empty = path.join(root, "empty.img");
    await fsp.writeFile(empty, "");
    await fsp.truncate(empty, MiB(4));
    const full = path.join(root, "full.img");
    await fsp.writeFile(full, pattern(MiB(1), 3));
    const a = await fsp.open(empty, "r");
    const b = await fsp.open(full, "r");
    try {
      expect(finder!.nextData(a.fd, 0)).toBeUndefined();
      expect(finder!.nextHole(a.fd, 0)).toBe(0);
      expect(finder!.endOffset(a.fd)).toBe(MiB(4));
      expect(finder!.nextData(b.fd, 100)).toBe(100);
      expect(finder!.nextHole(b.fd, 100)).toBe(MiB(1));
      expect(finder!.nextData(b.fd, MiB(1))).toBeUndefined();
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe.skipIf(isDeno)("native lseek addon (Node)", () => {
  it.skipIf(!addon)("returns offsets, -1 for ENXIO, and throws with the errno otherwise", async () => {
    const file = path.join(root, "f.img");
    await fsp.writeFile(file, "");
    await fsp.truncate(file, MiB(2));
    await writeAt(file, MiB(1), pattern(4096, 1));
    const handle = await fsp.open(file, "r");
    try {
      expect(addon!.lseek(handle.fd, 0, 3)).toBe(MiB(1));
      expect(addon!.lseek(handle.fd, MiB(1), 4)).toBeGreaterThan(MiB(1));
      expect(addon!.lseek(handle.fd, MiB(3), 3)).toBe(-1);
      expect(addon!.lseek(handle.fd, 0, 2)).toBe(MiB(2));
      expect(() => addon!.lseek(handle.fd, 0, 99)).toThrow(expect.objectContaining({ code: "EINVAL", syscall: "lseek" }));
    } finally {
      await handle.close();
    }
    expect(() => addon!.lseek(-1, 0, 3)).toThrow(expect.objectContaining({ code: "EBADF", errno: -9 }));
    // endOffset's contract: -1 for a descriptor that is not valid, rather than a throw.
    expect(finder!.endOffset(-1)).toBe(-1);
    expect(() => finder!.nextHole(-1, 0)).toThrow(/EBADF/);
  });

  it.skipIf(!addon)("rejects arguments that are not three numbers", () => {
    const lseek = addon!.lseek as unknown as (...args: unknown[]) => number;
    expect(() => lseek(0, 0)).toThrow(TypeError);
    expect(() => lseek("0", 0, 3)).toThrow(TypeError);
    expect(() => lseek(0, 0n, 3)).toThrow(TypeError);
  });

  it.skipIf(!addon)("is found from the dist/ layout too", () => {
    const dist = new URL("../../../dist/drivers/dir/node_lseek.js", import.meta.url);
    expect(typeof loadLseekAddon(dist)?.lseek).toBe("function");
  });

  it("is undefined, without throwing, where nothing is built", () => {
    expect(loadLseekAddon(new URL("file:///nonexistent/a/b/c/node_lseek.js"))).toBeUndefined();
  });
});

describe.skipIf(!isDeno)("Deno", () => {
  it("uses its FFI, never the addon", () => {
    expect(loadLseekAddon(SOURCE_DIR)).toBeUndefined();
    expect(finder?.name).toBe("lseek");
  });
});
