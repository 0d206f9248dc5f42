import { afterAll, describe, expect, it } from "vitest";
import { join } from "node:path";
import { writeFileSync } from "node:fs";
import { createMemoryFile } from "../../../../core/image/memory_file.ts";
import { openImage } from "../../../../core/image/open_image.ts";
import type { PositionalFile } from "../../../../core/image/positional_file.ts";
import { createQcow2 } from "../../../../core/image/qcow2/create.ts";
import { openHostImage, qemu, qemuCheck, qemuFlatten, randomBytes, skipWithoutQemu, tempDir } from "../_qemu.ts";

/** A file that counts the writes running at once, and fails the write at `failAt` when set. */
function watched(file: PositionalFile, failAt?: number): PositionalFile & { maxInFlight: number; inFlight: number } {
  const out = {
    ...file,
    maxInFlight: 0,
    inFlight: 0,
    async write(offset: number, data: Uint8Array) {
      out.inFlight++;
      out.maxInFlight = Math.max(out.maxInFlight, out.inFlight);
      try {
        // A turn of the event loop, so a write issued after this one's start overlaps it.
        await new Promise((resolve) => setTimeout(resolve, 0));
        if (offset === failAt) throw new Error("EIO");
        await file.write(offset, data);
      } finally {
        out.inFlight--;
      }
    },
  };
  return out;
}

describe("qcow2 writer: a write over runs in place and new ones", () => {
  it("writes one run after the other and reads back", async () => {
    const memory = await fourThenOne();
    const file = watched(memory);
    const io = await openImage(file, { writable: true });
    // Clusters 0-3 are in place; 4-7 are new, after cluster 256's host: two runs in the file.
    const data = randomBytes(8 * 4096, 3);
    await io.write(0, data);
    expect(file.maxInFlight).toBe(1);
    const back = new Uint8Array(data.byteLength);
    await io.read(0, back);
    expect(back).toEqual(data);
    await io.close();
  });

  it("when one run fails the write rejects with nothing still writing, and the image reads as before", async () => {
    const memory = await fourThenOne();
    const hostOfCluster0 = await hostOf(memory, 0);
    const file = watched(memory, hostOfCluster0);
    const io = await openImage(file, { writable: true });
    await expect(io.write(0, new Uint8Array(8 * 4096).fill(9))).rejects.toThrow("EIO");
    expect(file.inFlight).toBe(0);
    // The new clusters were written but no entry points at them (a leak at worst): the guest sees the old bytes.
    const back = new Uint8Array(8 * 4096);
    await io.read(0, back);
    expect(back.subarray(4 * 4096)).toEqual(new Uint8Array(4 * 4096));
    await io.close().catch(() => {});
  });
});

/**
 * A 4 MiB image of 4 KiB clusters with clusters 0-3 written, then cluster 256 (so the host cluster after
 * cluster 3's is taken), as a fresh memory file.
 */
async function fourThenOne(): Promise<PositionalFile> {
  const setupFile = createMemoryFile();
  await createQcow2(setupFile, { capacityBytes: 4 << 20, clusterBytes: 4096 });
  const setup = await openImage(setupFile, { writable: true });
  await setup.write(0, new Uint8Array(4 * 4096).fill(1));
  await setup.write(1 << 20, new Uint8Array(4096).fill(2));
  await setup.flush();
  const bytes = new Uint8Array(await setupFile.size());
  await setupFile.read(0, bytes);
  await setup.close();
  return createMemoryFile(bytes);
}

/** Host offset of a guest cluster of a 4 KiB-cluster image with one L2 table (L1 entry 0). */
async function hostOf(file: PositionalFile, cluster: number): Promise<number> {
  const header = new Uint8Array(48);
  await file.read(0, header);
  const l1Offset = Number(new DataView(header.buffer).getBigUint64(40));
  const l1 = new Uint8Array(8);
  await file.read(l1Offset, l1);
  const l2Offset = Number(new DataView(l1.buffer).getBigUint64(0) & 0x00fffffffffffe00n);
  const entry = new Uint8Array(8);
  await file.read(l2Offset + cluster * 8, entry);
  return Number(new DataView(entry.buffer).getBigUint64(0) & 0x00fffffffffffe00n);
}

describe.skipIf(skipWithoutQemu)("qcow2 writer: big writes against qemu-img", () => {
  const { dir, cleanup } = tempDir("writer-batch");
  afterAll(cleanup);

  it("big writes over data, zero-allocated, zero and unallocated clusters across L2 tables: qemu-img compare equal, check clean", async () => {
    // 4 KiB clusters: an L2 table covers 2 MiB, so a 3 MiB write spans two or three of them.
    const path = join(dir, "mixed.qcow2");
    qemu("qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", path, "16M");
    qemu("qemu-io", "-f", "qcow2", "-c", "write -q -P 0x11 0 1M", "-c", "write -q -P 0x22 3M 2M", "-c", "write -q -z 3584K 512K",
      "-c", "write -q -P 0x33 9M 64K", "-c", "write -q -z -u 9M 32K", "-c", "write -q -P 0x44 13M 3M", path);
    const model = qemuFlatten(path, dir);
    const io = await openHostImage(path, true);
    const writes: Array<[number, number]> = [[512 * 1024 + 100, 3 << 20], [5 * (1 << 20) - 7, 4 << 20], [(12 << 20) + 4096, 3 << 20]];
    for (const [i, [offset, length]] of writes.entries()) {
      const data = randomBytes(length, 40 + i);
      await io.write(offset, data);
      model.set(data, offset);
    }
    await io.close();
    const reference = join(dir, "mixed-model.raw");
    writeFileSync(reference, model);
    expect(qemuCheck(path).status).toBe(0);
    expect(() => qemu("qemu-img", "compare", "-q", "-f", "qcow2", "-F", "raw", path, reference)).not.toThrow();
  });
});
