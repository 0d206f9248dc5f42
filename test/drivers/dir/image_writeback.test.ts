/**
 * The background writeback of a writable qcow2 top file (the same as a raw volume's): a starter
 * (`sync_file_range`) every 16 MiB written when the descriptor is trusted, background `fdatasync`s
 * otherwise, and the flush waiting for it.
 */
import { fstatSync } from "node:fs";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createQcow2 } from "../../../core/image/qcow2/create.ts";
import type { HoleFinder } from "../../../drivers/dir/hole_finder.ts";
import { MiB } from "../../../mod.ts";
import { nodeDirFs } from "../../../drivers/dir/mod.ts";
import { type DirFile, OPEN_FLAGS } from "../../../drivers/dir/dir_fs.ts";
import { openQcow2Volume } from "../../../drivers/dir/image_volume.ts";
import { positionalFileOf } from "../../../drivers/dir/positional_handle.ts";
import type { WritebackStarter } from "../../../drivers/dir/writeback_starter.ts";
import { hasQemuImg, loggedHandle, pattern, removeDir, run, scratchDir } from "./_support.ts";

const QEMU = await hasQemuImg();
let root: string;
beforeEach(async () => {
  root = await scratchDir("virtkit-qwb-");
});
afterEach(() => removeDir(root));

/** A finder every descriptor passes `trustedFinder` with: its end is what fstat says, holes nowhere. */
function trusting(): HoleFinder {
  return { name: "all data", nextData: (_fd, offset) => offset, nextHole: (fd) => fstatSync(fd).size, endOffset: (fd) => fstatSync(fd).size };
}

function recordingStarter(): WritebackStarter & { calls: Array<[number, number]> } {
  const calls: Array<[number, number]> = [];
  return { name: "recorder", calls, start: (_fd, offset, length) => (calls.push([offset, length]), Promise.resolve()) };
}

/** A new 64 MiB qcow2 file, opened read-write with its fdatasync calls logged. */
async function loggedQcow2(file: string): Promise<{ handle: DirFile; log: string[] }> {
  const create = positionalFileOf(await nodeDirFs.open(file, OPEN_FLAGS.createNew));
  await createQcow2(create, { capacityBytes: MiB(64) });
  await create.close();
  return await loggedHandle(file);
}

describe("qcow2 top file: background writeback", () => {
  it("with a trusted descriptor, starts writeback every 16 MiB written and syncs only on flush", async () => {
    const file = path.join(root, "wb.qcow2");
    const { handle, log } = await loggedQcow2(file);
    const starter = recordingStarter();
    const io = await openQcow2Volume({ file: handle, path: file, write: true, fs: nodeDirFs, holeFinder: trusting(), label: "wb", writebackStarter: starter });
    const chunk = pattern(MiB(1), 3);
    for (let at = 0; at < MiB(40); at += MiB(1)) await io.write(at, chunk);
    expect(starter.calls).toHaveLength(2);
    // Each covers at least the 16 MiB of data written since the one before.
    for (const [, length] of starter.calls) expect(length).toBeGreaterThanOrEqual(MiB(16));
    expect(log).toEqual([]);
    await io.flush();
    expect(log.length).toBeGreaterThan(0);
    await io.close();
    // qemu-img check exits non-zero on any error or leak, which rejects here.
    if (QEMU) await run("qemu-img", ["check", "-q", file]);
  });

  it("without a trusted descriptor the background writeback is an fdatasync, and the starter is never called", async () => {
    const file = path.join(root, "wb.qcow2");
    const { handle, log } = await loggedQcow2(file);
    const starter = recordingStarter();
    const io = await openQcow2Volume({ file: handle, path: file, write: true, fs: nodeDirFs, holeFinder: undefined, label: "wb", writebackStarter: starter });
    for (let at = 0; at < MiB(17); at += MiB(1)) await io.write(at, pattern(MiB(1), 4));
    expect([starter.calls, log]).toEqual([[], ["datasync"]]);
    await io.close();
  });

  it("a read-only volume starts none", async () => {
    const file = path.join(root, "ro.qcow2");
    const { handle } = await loggedQcow2(file);
    const starter = recordingStarter();
    const io = await openQcow2Volume({ file: handle, path: file, write: false, fs: nodeDirFs, holeFinder: trusting(), label: "ro", writebackStarter: starter });
    await io.read(0, new Uint8Array(MiB(1)));
    await io.close();
    expect(starter.calls).toEqual([]);
  });
});
