import { describe, expect, it } from "vitest";
import { CorruptImageError } from "../../../core/image/errors.ts";
import { createMemoryFile } from "../../../core/image/memory_file.ts";
import { probeImage } from "../../../core/image/probe.ts";
import { createQcow2 } from "../../../core/image/qcow2/create.ts";

const ascii = (text: string) => Uint8Array.from(text, (c) => c.charCodeAt(0));

function withHeader(size: number, parts: Array<[number, Uint8Array]>): Uint8Array {
  const bytes = new Uint8Array(size);
  for (const [at, part] of parts) bytes.set(part, at);
  return bytes;
}

describe("probeImage", () => {
  it("reports a qcow2 header: version, cluster size, backing with format, features", async () => {
    const file = createMemoryFile();
    await createQcow2(file, { capacityBytes: 5 << 20, clusterBytes: 4096, backing: { path: "base.raw", format: "raw" } });
    const probe = await probeImage(file, "disk.qcow2");
    expect(probe).toMatchObject({
      format: "qcow2",
      virtualSizeBytes: 5 << 20,
      qcow2: { version: 3, clusterBytes: 4096, backing: { path: "base.raw", format: "raw" }, encrypted: false, extendedL2: false, compressionType: "zlib", refcountBits: 16 },
    });
  });

  it("names other formats by their magic and falls back to the file size", async () => {
    const le64 = (n: number) => {
      const b = new Uint8Array(8);
      new DataView(b.buffer).setUint32(0, n % 4294967296, true);
      new DataView(b.buffer).setUint32(4, Math.floor(n / 4294967296), true);
      return b;
    };
    const vdiMagic = new Uint8Array(4);
    new DataView(vdiMagic.buffer).setUint32(0, 0xbeda107f, true);
    const cases: Array<[Uint8Array, string, number]> = [
      [withHeader(1024, [[0, ascii("KDMV")], [12, le64(2048)]]), "vmdk", 2048 * 512],
      [withHeader(1024, [[0, ascii("# Disk DescriptorFile\n")]]), "vmdk", 1024],
      [withHeader(1024, [[0x40, vdiMagic], [0x170, le64(1 << 30)]]), "vdi", 1 << 30],
      [withHeader(1024, [[0, ascii("vhdxfile")]]), "vhdx", 1024],
      [withHeader(1024, [[0, ascii("conectix")]]), "vpc", 1024],
      [withHeader(1024, [[0, ascii("QEF\0")], [48, le64(7 << 20)]]), "qed", 7 << 20],
      [withHeader(1024, [[0, Uint8Array.of(0x4c, 0x55, 0x4b, 0x53, 0xba, 0xbe)]]), "luks", 1024],
      [withHeader(1024, [[0, Uint8Array.of(0x51, 0x46, 0x49, 0xfb, 0, 0, 0, 1)], [24, Uint8Array.of(0, 0, 0, 0, 0, 1, 0, 0)]]), "qcow", 65536],
      [withHeader(3000, [[0, ascii("hello")]]), "raw", 3000],
      [new Uint8Array(0), "raw", 0],
    ];
    for (const [bytes, format, size] of cases) {
      expect(await probeImage(createMemoryFile(bytes))).toMatchObject({ format, virtualSizeBytes: size, fileBytes: bytes.byteLength });
    }
  });

  it("a qcow2 magic with a damaged header is corrupt, not raw", async () => {
    const file = createMemoryFile();
    await createQcow2(file, { capacityBytes: 1 << 20 });
    await file.truncate(100);
    await expect(probeImage(file, "cut.qcow2")).rejects.toBeInstanceOf(CorruptImageError);
    await expect(probeImage(file, "cut.qcow2")).rejects.toThrow(/cut\.qcow2/);
  });
});
