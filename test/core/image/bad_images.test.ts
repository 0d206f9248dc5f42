import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFileSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { UnsupportedError, VirtError } from "../../../core/errors.ts";
import { CorruptImageError } from "../../../core/image/errors.ts";
import { createMemoryFile } from "../../../core/image/memory_file.ts";
import { openImage } from "../../../core/image/open_image.ts";
import { probeImage } from "../../../core/image/probe.ts";
import { createQcow2 } from "../../../core/image/qcow2/create.ts";
import { allExtents, openHostImage, openNodeFile, qemu, readAll, skipWithoutQemu, tempDir } from "./_qemu.ts";

/** Overwrites bytes of a file in place. */
function patch(path: string, offset: number, bytes: number[] | Uint8Array): void {
  const content = new Uint8Array(readFileSync(path));
  content.set(bytes, offset);
  writeFileSync(path, content);
}

const be32 = (n: number) => [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
const be64 = (n: number) => [...be32(Math.floor(n / 4294967296)), ...be32(n % 4294967296)];

/** Opens an image, reads it all and maps it: whatever fails must fail with a typed error. */
async function openReadMap(path: string, options: { maxChainDepth?: number } = {}): Promise<void> {
  const io = await openHostImage(path, false, options);
  try {
    await readAll(io);
    await allExtents(io);
  } finally {
    await io.close();
  }
}

describe("bad images in memory", () => {
  it("a file too short for a header, and one with absurd cluster bits, are corrupt", async () => {
    const short = createMemoryFile(new Uint8Array([0x51, 0x46, 0x49, 0xfb, 0, 0, 0, 3]));
    await expect(probeImage(short)).rejects.toBeInstanceOf(CorruptImageError);
    for (const bits of [0, 8, 22, 63, 0xffffffff]) {
      const file = createMemoryFile();
      await createQcow2(file, { capacityBytes: 1 << 20 });
      await file.write(20, new Uint8Array(be32(bits)));
      await expect(openImage(file)).rejects.toBeInstanceOf(CorruptImageError);
    }
  });

  it("a backing image without a way to open it is a TypeError; an opener's error propagates and files are closed", async () => {
    const file = createMemoryFile();
    await createQcow2(file, { capacityBytes: 1 << 20, backing: { path: "../../etc/passwd", format: "raw" } });
    await expect(openImage(file)).rejects.toBeInstanceOf(TypeError);
    const file2 = createMemoryFile();
    await createQcow2(file2, { capacityBytes: 1 << 20, backing: { path: "../../etc/passwd", format: "raw" } });
    const refused = new VirtError("not-found", "outside the pool");
    await expect(openImage(file2, { openBacking: () => Promise.reject(refused) })).rejects.toBe(refused);
    await expect(file2.size()).rejects.toThrow(/closed/);
  });

  it("a backing loop is found by key, and a chain deeper than maxChainDepth is refused", async () => {
    const a = createMemoryFile();
    await createQcow2(a, { capacityBytes: 1 << 20, backing: { path: "b", format: "qcow2" } });
    const b = createMemoryFile();
    await createQcow2(b, { capacityBytes: 1 << 20, backing: { path: "a", format: "qcow2" } });
    const copy = async (file: ReturnType<typeof createMemoryFile>) => {
      const bytes = new Uint8Array(await file.size());
      await file.read(0, bytes);
      return createMemoryFile(bytes);
    };
    const opener = async (ref: { path: string }) => ({ file: await copy(ref.path === "a" ? a : b), key: ref.path });
    await expect(openImage(await copy(a), { key: "a", openBacking: opener })).rejects.toThrow(/loops/);
    // Without keys only the depth limit stops it.
    const keyless = async (ref: { path: string }) => ({ file: await copy(ref.path === "a" ? a : b) });
    await expect(openImage(await copy(a), { openBacking: keyless, maxChainDepth: 5 })).rejects.toThrow(/deeper than 5/);
    await expect(openImage(await copy(a), { maxChainDepth: -1 })).rejects.toBeInstanceOf(RangeError);
  });
});

describe.skipIf(skipWithoutQemu)("a corpus of damaged images gives typed errors, never a hang or a crash", () => {
  let root: { dir: string; cleanup(): void };
  let n = 0;
  const image = (opts: string[] = [], size = "4M", writes: string[] = ["write -P 1 0 1M", "write -P 2 2M 64k"]) => {
    const path = join(root.dir, `img${n++}.qcow2`);
    qemu("qemu-img", "create", "-f", "qcow2", ...opts, path, size);
    for (const w of writes) qemu("qemu-io", "-c", w, path);
    return path;
  };
  beforeAll(() => {
    root = tempDir("image-bad");
  });
  afterAll(() => root.cleanup());

  const corrupt = (make: () => string) => async () => {
    await expect(openReadMap(make())).rejects.toBeInstanceOf(CorruptImageError);
  };

  it("truncated to half a header", corrupt(() => {
    const p = image();
    truncateSync(p, 50);
    return p;
  }));
  it("truncated after the first cluster (tables past the end)", corrupt(() => {
    const p = image();
    truncateSync(p, 65536);
    return p;
  }));
  it("a virtual size the L1 table cannot map", corrupt(() => {
    const p = image();
    patch(p, 24, be64(2 ** 50));
    return p;
  }));
  it("a virtual size beyond 2^53", corrupt(() => {
    const p = image();
    patch(p, 24, [0x7f, 255, 255, 255, 255, 255, 255, 255]);
    return p;
  }));
  it("a huge l1_size (no 32 GiB allocation)", corrupt(() => {
    const p = image();
    patch(p, 36, be32(0x7fffffff));
    return p;
  }));
  it("an L1 table offset past the end", corrupt(() => {
    const p = image();
    patch(p, 40, be64(2 ** 40));
    return p;
  }));
  it("an L1 entry pointing past the end of the file", corrupt(() => {
    const p = image();
    const l1 = Number(new DataView(readFileSync(p).buffer).getBigUint64(40));
    patch(p, l1, be64(2 ** 40 + 2 ** 63 * 0));
    return p;
  }));
  it("an unaligned L2 entry", corrupt(() => {
    const p = image([], "4M", ["write -P 1 0 64k"]);
    const view = new DataView(readFileSync(p).buffer);
    const l2 = Number(view.getBigUint64(Number(view.getBigUint64(40))) & 0x00fffffffffffe00n);
    patch(p, l2, [0x80, 0, 0, 0, 0, 0x05, 0x02, 0]);
    return p;
  }));
  it("a refcount table past the end", corrupt(() => {
    const p = image();
    patch(p, 48, be64(2 ** 36));
    return p;
  }));
  it("a backing name longer than 1023 bytes", corrupt(() => {
    const p = image();
    patch(p, 8, [...be64(512), ...be32(4000)]);
    return p;
  }));
  it("a header extension running past the first cluster", corrupt(() => {
    const p = image();
    patch(p, 112, [0x12, 0x34, 0x56, 0x78, ...be32(70000)]);
    return p;
  }));
  it("a compressed cluster holding garbage", corrupt(() => {
    const raw = join(root.dir, `c${n}.raw`);
    writeFileSync(raw, new Uint8Array(65536 * 2).fill(7));
    const p = join(root.dir, `c${n++}.qcow2`);
    qemu("qemu-img", "convert", "-c", "-O", "qcow2", raw, p);
    const bytes = new Uint8Array(readFileSync(p));
    const view = new DataView(bytes.buffer);
    const l2 = Number(view.getBigUint64(Number(view.getBigUint64(40))) & 0x00fffffffffffe00n);
    const entry = view.getBigUint64(l2) & ((1n << 54n) - 1n);
    bytes.fill(0xff, Number(entry), Number(entry) + 64);
    writeFileSync(p, bytes);
    return p;
  }));

  it("encryption, extended L2 entries, unknown incompatible features and qcow v1 are unsupported", async () => {
    const ext = image(["-o", "extended_l2=on"], "4M", []);
    await expect(openReadMap(ext)).rejects.toBeInstanceOf(UnsupportedError);
    const crypt = image();
    patch(crypt, 32, be32(1));
    await expect(openReadMap(crypt)).rejects.toBeInstanceOf(UnsupportedError);
    const unknown = image();
    patch(unknown, 72, be64(2 ** 40));
    await expect(openReadMap(unknown)).rejects.toBeInstanceOf(UnsupportedError);
    const v1 = image();
    patch(v1, 4, be32(1));
    await expect(openReadMap(v1)).rejects.toBeInstanceOf(UnsupportedError);
    const file = await openNodeFile(ext);
    const probe = await probeImage(file);
    await file.close();
    expect(probe.qcow2?.extendedL2).toBe(true);
  });

  it("a backing loop between host files (A -> B -> A)", async () => {
    const a = join(root.dir, "loop-a.qcow2");
    const b = join(root.dir, "loop-b.qcow2");
    qemu("qemu-img", "create", "-f", "qcow2", a, "1M");
    qemu("qemu-img", "create", "-f", "qcow2", "-u", "-b", "loop-a.qcow2", "-F", "qcow2", b, "1M");
    qemu("qemu-img", "rebase", "-u", "-b", "loop-b.qcow2", "-F", "qcow2", a);
    await expect(openReadMap(a)).rejects.toThrow(/loops/);
    await expect(openReadMap(a)).rejects.toBeInstanceOf(CorruptImageError);
  });

  it("200 random byte flips in the metadata of a chain: every outcome is a result or a typed error", async () => {
    const source = image(["-o", "cluster_size=4096"], "2M", ["write -P 1 0 300k", "write -z 400k 64k", "write -P 3 1M 8k"]);
    const pristine = new Uint8Array(readFileSync(source));
    let seed = 12345;
    const next = (max: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % max;
    };
    let failures = 0;
    const target = join(root.dir, "fuzz.qcow2");
    for (let i = 0; i < 200; i++) {
      const bytes = pristine.slice();
      for (let k = 0; k < 4; k++) bytes[next(5 * 4096)] = next(256);
      writeFileSync(target, bytes);
      try {
        await openReadMap(target);
      } catch (error) {
        failures++;
        const typed = error instanceof VirtError || error instanceof RangeError || error instanceof TypeError;
        expect(typed, String(error)).toBe(true);
      }
    }
    expect(failures).toBeGreaterThan(0);
  }, 60_000);
});
