import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { NotFoundError } from "../../../core/errors.ts";
import { encodeQcow2Header, parseQcow2Header } from "../../../core/image/qcow2/header.ts";
import type { CommandRunner } from "../../../drivers/command_runner.ts";
import { qemuCommandRunner, readChain } from "../../../drivers/qemu/disk_chain.ts";
import { readHeaderChain } from "../../../drivers/qemu/header_chain.ts";
import { findExecutable } from "../../../drivers/qemu/qmp/testing/mod.ts";

const skip = findExecutable("qemu-img") === undefined;
const dir = mkdtempSync(join(tmpdir(), "vk-header-chain-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const img = (...args: string[]) => execFileSync("qemu-img", args, { encoding: "utf8" });

/** What `qemu-img info --backing-chain` says of a chain, in the fields the driver keeps. */
function qemuImgChain(path: string, format?: string): Array<{ path: string; format: string; virtualBytes: number }> {
  const info = JSON.parse(img("info", "--output=json", "--backing-chain", "-U", ...(format ? ["-f", format] : []), path)) as Array<{ filename: string; format: string; "virtual-size": number }>;
  return info.map((l) => ({ path: l.filename, format: l.format, virtualBytes: l["virtual-size"] }));
}

/**
 * Creates a qcow2 whose header names a backing file but not its format (qemu-img no longer makes such
 * images, but older ones are about): created with one, which is then taken out of the header.
 */
function withoutBackingFormat(path: string, backing: string): void {
  img("create", "-q", "-f", "qcow2", "-u", "-b", backing, "-F", "qcow2", path, "1M");
  const bytes = readFileSync(path);
  const header = parseQcow2Header(bytes, bytes.byteLength, path);
  const old = encodeQcow2Header(header).byteLength;
  delete header.backingFormat;
  const area = new Uint8Array(old);
  area.set(encodeQcow2Header(header));
  bytes.set(area, 0);
  writeFileSync(path, bytes);
}

/** The real runner, counting its runs. */
function counting(): CommandRunner & { runs: string[][] } {
  const runs: string[][] = [];
  return { runs, run: (argv, options) => (runs.push([...argv]), qemuCommandRunner.run(argv, options)) };
}

describe.skipIf(skip)("qemu disk chain from the image headers", () => {
  it("a qcow2 over a qcow2 named relative to it (with ..) over a raw base: what qemu-img info says, without running it", async () => {
    mkdirSync(join(dir, "a/sub"), { recursive: true });
    mkdirSync(join(dir, "b"), { recursive: true });
    // 1000 bytes: QEMU counts a raw image in whole sectors, so it is 1024 bytes for it.
    img("create", "-q", "-f", "raw", join(dir, "b/base.raw"), "1000");
    img("create", "-q", "-f", "qcow2", "-b", "../../b/base.raw", "-F", "raw", join(dir, "a/sub/mid.qcow2"), "1M");
    img("create", "-q", "-f", "qcow2", "-b", "sub/mid.qcow2", "-F", "qcow2", join(dir, "a/top.qcow2"), "2M");
    const top = join(dir, "a/top.qcow2");
    const expected = qemuImgChain(top, "qcow2");
    expect(expected.map((l) => l.path)).toEqual([top, join(dir, "a/sub/mid.qcow2"), `${dir}/a/sub/../../b/base.raw`]);
    expect(expected[2]!.virtualBytes).toBe(1024);
    expect(await readHeaderChain(top, "qcow2", 64)).toEqual(expected);
    const runner = counting();
    const chain = await readChain(top, "qcow2", "vda", { runner });
    expect(runner.runs).toEqual([]);
    expect(chain.map((l) => [l.path, l.format, l.virtualBytes, l.node, l.fileNode])).toEqual(
      expected.map((l, i) => [l.path, l.format, l.virtualBytes, `vda-${i}`, `vda-${i}-file`]),
    );
  });

  it("a backing with no format recorded is qcow2 by its header; with no format given the top is recognised too", async () => {
    img("create", "-q", "-f", "qcow2", join(dir, "nf-base.qcow2"), "1M");
    withoutBackingFormat(join(dir, "nf-top.qcow2"), join(dir, "nf-base.qcow2"));
    const top = join(dir, "nf-top.qcow2");
    expect(qemuImgChain(top).map((l) => l.format)).toEqual(["qcow2", "qcow2"]);
    expect(await readHeaderChain(top, undefined, 64)).toEqual(qemuImgChain(top));
  });

  it("a raw top given as raw is one layer, even when its bytes look like a qcow2 header", async () => {
    const path = join(dir, "looks-qcow2.raw");
    img("create", "-q", "-f", "qcow2", "-b", join(dir, "nowhere.qcow2"), "-F", "qcow2", "-u", path, "1M");
    expect(await readHeaderChain(path, "raw", 64)).toEqual(qemuImgChain(path, "raw"));
  });

  it("a missing backing file is a NotFoundError naming it and the image that records it", async () => {
    const top = join(dir, "orphan.qcow2");
    img("create", "-q", "-f", "qcow2", "-u", "-b", "gone.qcow2", "-F", "qcow2", top, "1M");
    const error = await readChain(top, "qcow2", "vda", { runner: counting() }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NotFoundError);
    expect((error as NotFoundError).objectName).toBe(join(dir, "gone.qcow2"));
    expect((error as Error).message).toContain(`the backing file of "${top}" does not exist`);
  });

  it("leaves to qemu-img what the headers cannot tell: a raw backing without a recorded format, another format, a protocol, a loop", async () => {
    img("create", "-q", "-f", "raw", join(dir, "probe.raw"), "1M");
    withoutBackingFormat(join(dir, "probe-top.qcow2"), join(dir, "probe.raw"));
    expect(await readHeaderChain(join(dir, "probe-top.qcow2"), "qcow2", 64)).toBeUndefined();
    const runner = counting();
    const chain = await readChain(join(dir, "probe-top.qcow2"), "qcow2", "vda", { runner });
    expect(runner.runs).toHaveLength(1);
    expect(chain.map((l) => l.format)).toEqual(["qcow2", "raw"]);

    img("create", "-q", "-f", "vmdk", join(dir, "disk.vmdk"), "1M");
    expect(await readHeaderChain(join(dir, "disk.vmdk"), undefined, 64)).toBeUndefined();
    expect(await readHeaderChain(join(dir, "disk.vmdk"), "vmdk", 64)).toBeUndefined();
    expect(await readHeaderChain(join(dir, "disk.vmdk"), "qcow2", 64)).toBeUndefined();

    img("create", "-q", "-f", "qcow2", "-u", "-b", "nbd://127.0.0.1:10809/x", "-F", "raw", join(dir, "nbd.qcow2"), "1M");
    expect(await readHeaderChain(join(dir, "nbd.qcow2"), "qcow2", 64)).toBeUndefined();
    expect(await readHeaderChain("iscsi://127.0.0.1:3260/iqn.2026-12.test:t/1", "raw", 64)).toBeUndefined();
    expect(await readHeaderChain("relative.qcow2", "qcow2", 64)).toBeUndefined();

    img("create", "-q", "-f", "qcow2", "-u", "-b", "loop-b.qcow2", "-F", "qcow2", join(dir, "loop-a.qcow2"), "1M");
    img("create", "-q", "-f", "qcow2", "-u", "-b", "loop-a.qcow2", "-F", "qcow2", join(dir, "loop-b.qcow2"), "1M");
    expect(await readHeaderChain(join(dir, "loop-a.qcow2"), "qcow2", 64)).toBeUndefined();
    // A chain longer than the limit is not answered either.
    img("create", "-q", "-f", "qcow2", join(dir, "deep-0.qcow2"), "1M");
    img("create", "-q", "-f", "qcow2", "-b", "deep-0.qcow2", "-F", "qcow2", join(dir, "deep-1.qcow2"), "1M");
    expect(await readHeaderChain(join(dir, "deep-1.qcow2"), "qcow2", 1)).toBeUndefined();
    expect(await readHeaderChain(join(dir, "deep-1.qcow2"), "qcow2", 2)).toHaveLength(2);
  });
});
