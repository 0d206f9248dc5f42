import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createMemoryFile } from "../../../../core/image/memory_file.ts";
import { openImage } from "../../../../core/image/open_image.ts";
import { createQcow2 } from "../../../../core/image/qcow2/create.ts";
import { resizeQcow2 } from "../../../../core/image/qcow2/resize.ts";
import { copyExtents } from "../../../../core/copy/copy_loop.ts";
import { StateError, UnsupportedError } from "../../../../core/errors.ts";
import {
  allExtents, firstDifference, openHostImage, openNodeFile, qemu, qemuCheck, qemuFlatten, qemuMap, randomBytes, readAll, skipWithoutQemu, tempDir,
} from "../_qemu.ts";

/** A deterministic sequence of writes and zeroings applied to an image and to a flat model of it. */
async function scribble(io: Awaited<ReturnType<typeof openImage>>, model: Uint8Array, seed: number, steps: number, maxBytes: number) {
  let x = seed;
  const next = (n: number) => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return x % n;
  };
  for (let step = 0; step < steps; step++) {
    const length = 1 + next(maxBytes);
    const offset = next(model.byteLength - length);
    const op = next(6);
    if (op < 4) {
      const data = randomBytes(length, seed * 1000 + step);
      await io.write(offset, data);
      model.set(data, offset);
    } else {
      await io.writeZeroes(offset, length, { allocate: op === 5 });
      model.fill(0, offset, offset + length);
    }
  }
}

describe("qcow2 writes in memory", () => {
  it("unaligned writes and zeroes read back as written, and extents stay at depth 0", async () => {
    const file = createMemoryFile();
    await createQcow2(file, { capacityBytes: 3 << 20, clusterBytes: 4096 });
    const io = await openImage(file, { writable: true });
    const model = new Uint8Array(3 << 20);
    await scribble(io, model, 7, 300, 50_000);
    expect(firstDifference(await readAll(io), model)).toBe(-1);
    for (const extent of await allExtents(io)) expect(extent.depth).toBe(0);
    await io.close();
  });

  it("a read-only image refuses writes with a StateError; writes past the end are RangeErrors", async () => {
    const file = createMemoryFile();
    await createQcow2(file, { capacityBytes: 1 << 20 });
    const ro = await openImage(file);
    await expect(ro.write(0, new Uint8Array(1))).rejects.toBeInstanceOf(StateError);
    const rw = await openImage(createMemoryFile(await snapshot(file)), { writable: true });
    await expect(rw.write((1 << 20) - 1, new Uint8Array(2))).rejects.toBeInstanceOf(RangeError);
    await expect(rw.writeZeroes(-1, 2)).rejects.toBeInstanceOf(RangeError);
    await rw.close();
    await ro.close();
  });

  it("an aborted signal rejects with its own reason", async () => {
    const file = createMemoryFile();
    await createQcow2(file, { capacityBytes: 1 << 20 });
    const io = await openImage(file, { writable: true });
    const reason = new Error("stop");
    await expect(io.write(0, new Uint8Array(8), { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    await io.close();
  });

  it("raw images cannot take a backing file", async () => {
    const io = await openImage(createMemoryFile(new Uint8Array(4096)), { format: "raw", writable: true });
    await expect(io.setBacking!({ path: "x", format: "raw" })).rejects.toBeInstanceOf(UnsupportedError);
    await io.close();
  });
});

async function snapshot(file: ReturnType<typeof createMemoryFile>): Promise<Uint8Array> {
  const bytes = new Uint8Array(await file.size());
  await file.read(0, bytes);
  return bytes;
}

describe.skipIf(skipWithoutQemu)("qcow2 writes checked by qemu-img", () => {
  let root: { dir: string; cleanup(): void };
  let counter = 0;
  const fresh = () => {
    const dir = join(root.dir, String(counter++));
    mkdirSync(dir);
    return dir;
  };
  beforeAll(() => {
    root = tempDir("image-write");
  });
  afterAll(() => root.cleanup());

  for (const cluster of [512, 4096, 65536, 2097152]) {
    for (const compat of ["0.10", "1.1"]) {
      it(`${cluster} B clusters, compat=${compat}, over a raw base: check is clean and compare is identical`, async () => {
        const dir = fresh();
        const base = join(dir, "base.raw");
        qemu("qemu-img", "create", "-f", "raw", base, "4M");
        qemu("qemu-io", "-f", "raw", "-c", "write -P 0x5a 0 3M", base);
        const top = join(dir, "top.qcow2");
        qemu("qemu-img", "create", "-f", "qcow2", "-b", "base.raw", "-F", "raw", "-o", `cluster_size=${cluster},compat=${compat}`, top, "5M");
        const model = qemuFlatten(top, dir);
        const io = await openHostImage(top, true);
        await scribble(io, model, cluster + compat.length, 120, 300_000);
        await io.flush();
        await io.close();
        expect(qemuCheck(top).status).toBe(0);
        const expected = join(dir, "expected.raw");
        writeFileSync(expected, model);
        expect(qemu("qemu-img", "compare", "-f", "qcow2", "-F", "raw", top, expected)).toContain("identical");
        const again = await openHostImage(top);
        expect(await allExtents(again)).toEqual(qemuMap(top));
        await again.close();
      });
    }
  }

  for (const bits of [1, 8, 32, 64]) {
    it(`refcount_bits=${bits}: writes keep the image clean`, async () => {
      const dir = fresh();
      const top = join(dir, "rc.qcow2");
      qemu("qemu-img", "create", "-f", "qcow2", "-o", `refcount_bits=${bits},cluster_size=4096`, top, "3M");
      const model = new Uint8Array(3 << 20);
      const io = await openHostImage(top, true);
      await scribble(io, model, bits, 60, 100_000);
      await io.close();
      expect(qemuCheck(top).status).toBe(0);
      expect(firstDifference(qemuFlatten(top, dir), model)).toBe(-1);
    });
  }

  it("an image with internal snapshots reads but refuses writes", async () => {
    const dir = fresh();
    const top = join(dir, "snap.qcow2");
    qemu("qemu-img", "create", "-f", "qcow2", top, "1M");
    qemu("qemu-io", "-c", "write -P 4 0 64k", top);
    qemu("qemu-img", "snapshot", "-c", "s1", top);
    const io = await openHostImage(top, true);
    const one = new Uint8Array(1);
    await io.read(100, one);
    expect(one[0]).toBe(4);
    await expect(io.write(0, one)).rejects.toBeInstanceOf(UnsupportedError);
    await io.close();
    expect(qemuCheck(top).status).toBe(0);
  });

  it("an odd virtual size (not a cluster multiple): writes and zeroes up to the last byte stay clean", async () => {
    const dir = fresh();
    const top = join(dir, "odd.qcow2");
    qemu("qemu-img", "create", "-f", "qcow2", "-o", "cluster_size=65536", top, "1000000");
    qemu("qemu-io", "-c", "write -P 8 900000 100000", top);
    const model = qemuFlatten(top, dir);
    const io = await openHostImage(top, true);
    await scribble(io, model, 77, 40, 200_000);
    const tail = randomBytes(1000, 1);
    await io.write(1_000_000 - 1000, tail);
    model.set(tail, 1_000_000 - 1000);
    await io.writeZeroes(1_000_000 - 70_000, 30_000);
    model.fill(0, 1_000_000 - 70_000, 1_000_000 - 40_000);
    await io.close();
    expect(qemuCheck(top).status).toBe(0);
    expect(firstDifference(qemuFlatten(top, dir), model)).toBe(-1);
  });

  it("grows the refcount table (512 B clusters, 12 MiB written) and stays clean", async () => {
    const dir = fresh();
    const top = join(dir, "grow.qcow2");
    writeFileSync(top, "");
    const file = await openNodeFile(top, true);
    await createQcow2(file, { capacityBytes: 16 << 20, clusterBytes: 512 });
    const io = await openImage(file, { writable: true });
    const model = randomBytes(12 << 20, 99);
    for (let at = 0; at < model.byteLength; at += 1 << 20) await io.write(at, model.subarray(at, at + (1 << 20)));
    await io.close();
    expect(qemuCheck(top)).toMatchObject({ status: 0 });
    const flat = qemuFlatten(top, dir);
    expect(firstDifference(flat.subarray(0, model.byteLength), model)).toBe(-1);
  });

  it("overwrites compressed clusters (whole and partial) and frees them without leaks", async () => {
    const dir = fresh();
    const raw = join(dir, "src.raw");
    writeFileSync(raw, randomBytes(1 << 20, 5).map((b, i) => (i % 3 === 0 ? b : 0)));
    const top = join(dir, "comp.qcow2");
    qemu("qemu-img", "convert", "-c", "-O", "qcow2", "-o", "cluster_size=4096", raw, top);
    const model = new Uint8Array(readFileSync(raw));
    const io = await openHostImage(top, true);
    await scribble(io, model, 3, 60, 20_000);
    await io.close();
    expect(qemuCheck(top).status).toBe(0);
    expect(firstDifference(qemuFlatten(top, dir), model)).toBe(-1);
  });

  it("an offline pull through copyExtents fills the top, drops the backing, and matches qemu-img", async () => {
    const dir = fresh();
    const base = join(dir, "base.raw");
    qemu("qemu-img", "create", "-f", "raw", base, "8M");
    qemu("qemu-io", "-f", "raw", "-c", "write -P 1 0 1M", "-c", "write -P 2 3M 2M", base);
    const top = join(dir, "top.qcow2");
    qemu("qemu-img", "create", "-f", "qcow2", "-b", "base.raw", "-F", "raw", top, "10M");
    qemu("qemu-io", "-c", "write -P 3 512k 1M", "-c", "write -z 4M 64k", top);
    const before = qemuFlatten(top, dir);
    const io = await openHostImage(top, true);
    await copyExtents({
      source: io, target: io, length: io.capacityBytes,
      plan: (e) => (e.depth === 0 ? "skip" : e.data && !e.zero ? "copy" : "skip"), zeroChunks: "skip",
    });
    await io.flush();
    await io.setBacking!(undefined);
    expect(io.formats).toEqual(["qcow2"]);
    expect(firstDifference(await readAll(io), before)).toBe(-1);
    await io.close();
    expect(qemuCheck(top).status).toBe(0);
    const info = JSON.parse(qemu("qemu-img", "info", "--output=json", top)) as { "backing-filename"?: string };
    expect(info["backing-filename"]).toBeUndefined();
    expect(firstDifference(qemuFlatten(top, dir), before)).toBe(-1);
    for (const run of qemuMap(top)) expect(run.depth).toBe(0);
  });

  it("pull with a base: zeros above the base become zero clusters and the backing moves to the base", async () => {
    const dir = fresh();
    const base = join(dir, "base.raw");
    qemu("qemu-img", "create", "-f", "raw", base, "4M");
    qemu("qemu-io", "-f", "raw", "-c", "write -P 1 0 4M", base);
    const mid = join(dir, "mid.qcow2");
    qemu("qemu-img", "create", "-f", "qcow2", "-b", "base.raw", "-F", "raw", mid, "4M");
    qemu("qemu-io", "-c", "write -P 2 1M 1M", "-c", "write -z 2M 1M", mid);
    const top = join(dir, "top.qcow2");
    qemu("qemu-img", "create", "-f", "qcow2", "-b", "mid.qcow2", "-F", "qcow2", top, "4M");
    const before = qemuFlatten(top, dir);
    const io = await openHostImage(top, true);
    await copyExtents({
      source: io, target: io, length: io.capacityBytes,
      plan: (e) => (e.depth === 0 || e.depth >= 2 ? "skip" : e.data && !e.zero ? "copy" : "zero"), zeroChunks: "zero",
    });
    await io.setBacking!({ path: "base.raw", format: "raw" });
    expect(io.formats).toEqual(["qcow2", "raw"]);
    await io.close();
    expect(qemuCheck(top).status).toBe(0);
    expect(qemu("qemu-img", "info", top)).toContain("backing file: base.raw");
    expect(firstDifference(qemuFlatten(top, dir), before)).toBe(-1);
  });

  it("resizeQcow2 grows (moving the L1 table) and keeps data; shrinking is unsupported", async () => {
    const dir = fresh();
    const top = join(dir, "r.qcow2");
    qemu("qemu-img", "create", "-f", "qcow2", "-o", "cluster_size=4096", top, "1M");
    qemu("qemu-io", "-c", "write -P 7 0 1M", top);
    const file = await openNodeFile(top, true);
    await resizeQcow2(file, 3 * 2 ** 30);
    await expect(resizeQcow2(file, 1 << 20)).rejects.toBeInstanceOf(UnsupportedError);
    await file.close();
    expect(qemuCheck(top).status).toBe(0);
    const info = JSON.parse(qemu("qemu-img", "info", "--output=json", top)) as { "virtual-size": number };
    expect(info["virtual-size"]).toBe(3 * 2 ** 30);
    expect(qemu("qemu-io", "-c", "read -P 7 0 1M", "-c", "read -P 0 1M 1M", top)).not.toContain("fail");
    const io = await openHostImage(top, true);
    await io.write((3 * 2 ** 30) - 4096, new Uint8Array(4096).fill(9));
    await io.close();
    expect(qemuCheck(top).status).toBe(0);
    expect(qemu("qemu-io", "-c", `read -P 9 ${(3 * 2 ** 30) - 4096} 4096`, top)).not.toContain("fail");
  });
});

describe("qcow2 group commit", () => {
  it("metadata reaches the file only on flush; a second opener sees the data after it", async () => {
    const file = createMemoryFile();
    await createQcow2(file, { capacityBytes: 4 << 20, clusterBytes: 65536 });
    const io = await openImage(file, { writable: true });
    const data = randomBytes(200_000, 4);
    await io.write(70_000, data);
    const before = await openImage(createMemoryFile(await snapshot(file)));
    expect((await allExtents(before)).every((e) => !e.data)).toBe(true);
    await before.close();
    const flushes = file.flushCount;
    await io.flush();
    expect(file.flushCount).toBeGreaterThan(flushes);
    const after = await openImage(createMemoryFile(await snapshot(file)));
    const back = new Uint8Array(data.byteLength);
    await after.read(70_000, back);
    expect(firstDifference(back, data)).toBe(-1);
    await after.close();
    await io.close();
  });

  it("a commit of new clusters costs two flushes (one barrier, one final); a flush with nothing new costs none", async () => {
    const file = createMemoryFile();
    await createQcow2(file, { capacityBytes: 64 << 20, clusterBytes: 65536 });
    const io = await openImage(file, { writable: true });
    // The first write loads the refcounts; its table and refcount block exist already (no new block).
    await io.write(0, randomBytes(65536, 7));
    await io.flush();
    let flushes = file.flushCount;
    await io.write(4 << 20, randomBytes(1 << 20, 8));
    await io.flush();
    expect(file.flushCount - flushes).toBe(2);
    flushes = file.flushCount;
    await io.flush();
    const saved = await snapshot(file);
    await io.close();
    expect(file.flushCount).toBe(flushes);
    // In-place writes into allocated clusters change no metadata: one flush.
    const reopened = createMemoryFile(saved);
    const again = await openImage(reopened, { writable: true });
    await again.write(4 << 20, randomBytes(4096, 9));
    await again.flush();
    const check = await openImage(createMemoryFile(await snapshot(reopened)));
    await again.close();
    expect(reopened.flushCount).toBe(1);
    const back = new Uint8Array(4096);
    await check.read(4 << 20, back);
    await check.close();
    expect(firstDifference(back, randomBytes(4096, 9))).toBe(-1);
  });

  it("2 MiB clusters: many small writes across tables stay bounded and read back", async () => {
    const file = createMemoryFile();
    await createQcow2(file, { capacityBytes: 2 ** 45, clusterBytes: 2 << 20 });
    const io = await openImage(file, { writable: true });
    // Each write needs its own 2 MiB L2 table: past 32 MiB of them a commit happens before any flush.
    const flushes = file.flushCount;
    for (let i = 0; i < 24; i++) await io.write(i * 2 ** 39 + 12345, Uint8Array.of(i + 1));
    expect(file.flushCount).toBeGreaterThan(flushes);
    const one = new Uint8Array(1);
    for (let i = 0; i < 24; i++) {
      await io.read(i * 2 ** 39 + 12345, one);
      expect(one[0]).toBe(i + 1);
    }
    await io.close();
  });
});

describe("qcow2 writer after a failed metadata write", () => {
  it("refuses further writes with a StateError instead of diverging from the file", async () => {
    const inner = createMemoryFile();
    await createQcow2(inner, { capacityBytes: 1 << 20, clusterBytes: 4096 });
    let failFlush = false;
    const file = { ...inner, read: inner.read, write: inner.write, size: inner.size, truncate: inner.truncate, close: inner.close,
      flush: () => (failFlush ? Promise.reject(new Error("EIO")) : inner.flush()) };
    const io = await openImage(file, { writable: true });
    await io.write(0, new Uint8Array(5000).fill(1));
    failFlush = true;
    await expect(io.flush()).rejects.toThrow("EIO");
    failFlush = false;
    await expect(io.write(8192, new Uint8Array(10))).rejects.toBeInstanceOf(StateError);
    await expect(io.close()).rejects.toBeInstanceOf(StateError);
  });
});
