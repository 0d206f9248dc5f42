/**
 * The raw VolumeIO and its allocation map: extents agree with `qemu-img map`, with the runtime's hole
 * finder and with the reading fallback; reads past the end, hole punching, closed and read-only IO.
 */
import fsp from "node:fs/promises";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { StateError } from "../../../core/errors.ts";
import type { Extent } from "../../../core/volume.ts";
import { KiB, MiB } from "../../../mod.ts";
import { nodeDirFs, runtimeHoleFinder, type HoleFinder } from "../../../drivers/dir/mod.ts";
import { rawExtents } from "../../../drivers/dir/raw_extents.ts";
import { openRawVolumeIO } from "../../../drivers/dir/raw_volume_io.ts";
import { OPEN_FLAGS } from "../../../drivers/dir/dir_fs.ts";
import { loadLseekAddon } from "../../../drivers/dir/node_lseek.ts";
import { hasQemuImg, pattern, qemuDataRuns, removeDir, scratchDir, writeAt } from "./_support.ts";

const QEMU = await hasQemuImg();
const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";

let root: string;
beforeEach(async () => {
  root = await scratchDir();
});
afterEach(() => removeDir(root));

async function collect(iterable: AsyncIterable<Extent>): Promise<Extent[]> {
  const out: Extent[] = [];
  for await (const e of iterable) out.push(e);
  return out;
}

function dataRuns(extents: readonly Extent[]): Array<[number, number]> {
  return extents.filter((e) => e.data).map((e) => [e.offset, e.length]);
}

function assertCovers(extents: readonly Extent[], offset: number, length: number): void {
  let at = offset;
  for (const e of extents) {
    expect(e.offset).toBe(at);
    expect(e.length).toBeGreaterThan(0);
    expect(e.zero).toBe(!e.data);
    at += e.length;
  }
  expect(at).toBe(offset + length);
}

/** 16 MiB with data at [1 MiB, 3 MiB), [8 MiB, 8 MiB + 64 KiB) and the last 128 KiB. */
async function sparseFile(): Promise<string> {
  const file = path.join(root, "sparse.img");
  await fsp.writeFile(file, "");
  await fsp.truncate(file, MiB(16));
  await writeAt(file, MiB(1), pattern(MiB(2), 1));
  await writeAt(file, MiB(8), pattern(KiB(64), 2));
  await writeAt(file, MiB(16) - KiB(128), pattern(KiB(128), 3));
  return file;
}

async function open(file: string, finder: HoleFinder | undefined, write = false) {
  const handle = await nodeDirFs.open(file, write ? OPEN_FLAGS.readWrite : OPEN_FLAGS.read);
  return await openRawVolumeIO({ file: handle, write, holeFinder: finder, label: "volume \"sparse.img\"" });
}

const EXPECTED: Array<[number, number]> = [[MiB(1), MiB(2)], [MiB(8), KiB(64)], [MiB(16) - KiB(128), KiB(128)]];
const finders: Array<{ name: string; finder: () => HoleFinder | undefined }> = [
  { name: "the runtime's finder", finder: () => runtimeHoleFinder() },
  { name: "the reading fallback", finder: () => undefined },
];

describe("extents", () => {
  it.each(finders)("with $name: data runs match the file, cover the range, and agree with qemu-img map", async ({ finder }) => {
    const file = await sparseFile();
    const io = await open(file, finder());
    try {
      const all = await collect(io.extents(0, MiB(16)));
      assertCovers(all, 0, MiB(16));
      expect(dataRuns(all)).toEqual(EXPECTED);
      if (QEMU) expect(await qemuDataRuns(file)).toEqual(EXPECTED);
      const part = await collect(io.extents(MiB(2), MiB(7)));
      assertCovers(part, MiB(2), MiB(7));
      expect(dataRuns(part)).toEqual([[MiB(2), MiB(1)], [MiB(8), KiB(64)]]);
    } finally {
      await io.close();
    }
  });

  it("Deno finds holes through lseek (FFI); Node through the native/lseek addon when built, else reads", () => {
    const finder = runtimeHoleFinder();
    if (isDeno) expect(finder?.name).toBe("lseek");
    else expect(finder?.name).toBe(loadLseekAddon() ? "lseek" : undefined);
  });

  it("the fallback never reads a file without allocated blocks, nor one that is fully allocated", async () => {
    let reads = 0;
    const source = (blocks: number) => ({
      fd: -1,
      stat: () => Promise.resolve({ size: MiB(4), blocks }),
      read: () => {
        reads++;
        return Promise.resolve(0);
      },
    });
    expect(dataRuns(await collect(rawExtents(source(0), 0, MiB(4), undefined)))).toEqual([]);
    expect(dataRuns(await collect(rawExtents(source(MiB(4) / 512), 0, MiB(4), undefined)))).toEqual([[0, MiB(4)]]);
    expect(reads).toBe(0);
  });

  it("a finder that disagrees about the descriptor's size is not trusted", async () => {
    const file = await sparseFile();
    const liar: HoleFinder = { name: "liar", nextData: () => undefined, nextHole: (_fd, o) => o, endOffset: () => 1 };
    const io = await open(file, liar);
    try {
      expect(dataRuns(await collect(io.extents(0, MiB(16))))).toEqual(EXPECTED);
    } finally {
      await io.close();
    }
  });

  it("an aborted signal stops extents with its reason", async () => {
    const io = await open(await sparseFile(), undefined);
    const controller = new AbortController();
    const reason = new Error("stop");
    controller.abort(reason);
    await expect(collect(io.extents(0, MiB(16), { signal: controller.signal }))).rejects.toBe(reason);
    await io.close();
  });
});

describe("read, write, writeZeroes", () => {
  it("reads stop at the capacity; writes past it are RangeError", async () => {
    const io = await open(await sparseFile(), undefined, true);
    const target = new Uint8Array(KiB(256));
    expect(await io.read(MiB(16) - KiB(128), target)).toBe(KiB(128));
    expect(Buffer.compare(Buffer.from(target.subarray(0, KiB(128))), Buffer.from(pattern(KiB(128), 3)))).toBe(0);
    await expect(io.write(MiB(16) - 1, new Uint8Array(2))).rejects.toBeInstanceOf(RangeError);
    await expect(io.writeZeroes(-1, 1)).rejects.toBeInstanceOf(RangeError);
    await io.close();
  });

  it("writeZeroes at the end punches a hole; inside a hole it allocates nothing; allocate: true allocates", async () => {
    const file = await sparseFile();
    const io = await open(file, runtimeHoleFinder(), true);
    const blocks = async () => (await fsp.stat(file)).blocks * 512;
    const start = await blocks();
    await io.writeZeroes(MiB(16) - KiB(128), KiB(128));
    expect(await blocks()).toBe(start - KiB(128));
    expect((await fsp.stat(file)).size).toBe(MiB(16));
    await io.writeZeroes(MiB(4), MiB(1), { allocate: true });
    expect(await blocks()).toBe(start - KiB(128) + MiB(1));
    await io.writeZeroes(MiB(1), KiB(64));
    const head = new Uint8Array(KiB(64));
    await io.read(MiB(1), head);
    expect(head.every((b) => b === 0)).toBe(true);
    await io.flush();
    await io.close();
  });

  it("a read-only IO refuses writes; a closed one refuses everything with StateError", async () => {
    const io = await open(await sparseFile(), undefined, false);
    await expect(io.write(0, new Uint8Array(1))).rejects.toBeInstanceOf(StateError);
    await expect(io.writeZeroes(0, 1)).rejects.toBeInstanceOf(StateError);
    await io.close();
    await io.close();
    await expect(io.read(0, new Uint8Array(1))).rejects.toBeInstanceOf(StateError);
  });
});

describe("background writeback", () => {
  /** A real file whose fdatasync calls are held until the test lets them go, and may fail. */
  async function heldSync(file: string) {
    const handle = await nodeDirFs.open(file, OPEN_FLAGS.readWrite);
    const log: string[] = [];
    const held: Array<{ release: () => void; fail: (code: string) => void }> = [];
    const wrapped = {
      fd: handle.fd,
      read: handle.read.bind(handle),
      write: handle.write.bind(handle),
      truncate: handle.truncate.bind(handle),
      sync: handle.sync.bind(handle),
      stat: handle.stat.bind(handle),
      datasync: () => {
        log.push("datasync");
        return new Promise<void>((resolve, reject) =>
          held.push({
            release: () => void handle.datasync().then(resolve, reject),
            fail: (code) => reject(Object.assign(new Error(`${code}: injected`), { code })),
          }));
      },
      close: async () => {
        log.push("close");
        await handle.close();
      },
    };
    return { wrapped, log, held };
  }

  it("starts one fdatasync per 16 MiB written while none runs; flush waits for it and syncs the rest", async () => {
    const file = path.join(root, "wb.img");
    await fsp.writeFile(file, "");
    await fsp.truncate(file, MiB(64));
    const { wrapped, log, held } = await heldSync(file);
    const io = await openRawVolumeIO({ file: wrapped, write: true, holeFinder: undefined, label: 'volume "wb.img"' });
    const chunk = pattern(MiB(1), 5);
    for (let at = 0; at < MiB(40); at += MiB(1)) await io.write(at, chunk);
    // One started at 16 MiB; at 32 MiB it was still held, so no second one.
    expect(log).toEqual(["datasync"]);
    held[0]!.release();
    const flushed = io.flush();
    for (const deadline = Date.now() + 5000; held.length < 2 && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 1));
    expect(log).toEqual(["datasync", "datasync"]);
    held[1]!.release();
    await flushed;
    await io.close();
    expect(log).toEqual(["datasync", "datasync", "close"]);
  });

  it("writebackBytes sets the pace of background syncs; 0 leaves every sync to flush", async () => {
    const file = path.join(root, "wb.img");
    await fsp.writeFile(file, "");
    await fsp.truncate(file, MiB(64));
    const chunk = pattern(MiB(1), 7);
    const never = await heldSync(file);
    const quiet = await openRawVolumeIO({ file: never.wrapped, write: true, holeFinder: undefined, label: 'volume "wb.img"', writebackBytes: 0 });
    for (let at = 0; at < MiB(40); at += MiB(1)) await quiet.write(at, chunk);
    expect(never.log).toEqual([]);
    const flushed = quiet.flush();
    for (const deadline = Date.now() + 5000; never.held.length < 1 && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 1));
    never.held[0]!.release();
    await flushed;
    await quiet.close();
    expect(never.log).toEqual(["datasync", "close"]);

    const often = await heldSync(file);
    const eager = await openRawVolumeIO({ file: often.wrapped, write: true, holeFinder: undefined, label: 'volume "wb.img"', writebackBytes: MiB(4) });
    for (let at = 0; at < MiB(3); at += MiB(1)) await eager.write(at, chunk);
    expect(often.log).toEqual([]);
    await eager.write(MiB(3), chunk);
    expect(often.log).toEqual(["datasync"]);
    often.held[0]!.release();
    await eager.close();

    const handle = await nodeDirFs.open(file, OPEN_FLAGS.readWrite);
    for (const bad of [-1, 1.5, Number.NaN]) {
      await expect(openRawVolumeIO({ file: handle, write: true, holeFinder: undefined, label: 'volume "wb.img"', writebackBytes: bad }))
        .rejects.toThrow(RangeError);
    }
    await handle.close();
  });

  it("a failed background fdatasync fails the next flush with its error; close waits for a running one", async () => {
    const file = path.join(root, "wb.img");
    await fsp.writeFile(file, "");
    await fsp.truncate(file, MiB(64));
    const { wrapped, log, held } = await heldSync(file);
    const io = await openRawVolumeIO({ file: wrapped, write: true, holeFinder: undefined, label: 'volume "wb.img"' });
    const chunk = pattern(MiB(1), 6);
    for (let at = 0; at < MiB(16); at += MiB(1)) await io.write(at, chunk);
    held[0]!.fail("EIO");
    await expect(io.flush()).rejects.toMatchObject({ code: "EIO" });
    for (let at = MiB(16); at < MiB(32); at += MiB(1)) await io.write(at, chunk);
    expect(log).toEqual(["datasync", "datasync"]);
    let closed = false;
    const closing = io.close().then(() => (closed = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(closed).toBe(false);
    held[1]!.release();
    await closing;
    expect(log).toEqual(["datasync", "datasync", "close"]);
  });
});
