/**
 * Read-ahead advice for a copy's source: `posix_fadvise(WILLNEED)` a window in front of the reads, on the
 * real runtime binding (addon on Node, FFI on Deno) and through a recording advisor.
 */
import fsp from "node:fs/promises";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { nodeDirFs, runtimeHoleFinder } from "../../../drivers/dir/mod.ts";
import { OPEN_FLAGS } from "../../../drivers/dir/dir_fs.ts";
import { openRawVolumeIO } from "../../../drivers/dir/raw_volume_io.ts";
import { ReadAhead, type ReadAdvisor, runtimeReadAdvisor } from "../../../drivers/dir/read_advisor.ts";
import { removeDir, scratchDir } from "./_support.ts";

const MiB = 1 << 20;
let dir: string;
beforeEach(async () => {
  dir = await scratchDir("virtkit-advise-");
});
afterEach(() => removeDir(dir));

function recorder(fail = false): ReadAdvisor & { calls: Array<[number, number, number]> } {
  const calls: Array<[number, number, number]> = [];
  return {
    name: "recorder",
    calls,
    willNeed(fd, offset, length) {
      calls.push([fd, offset, length]);
      if (fail) throw new Error("EINVAL");
    },
  };
}

describe("ReadAhead", () => {
  it("keeps a window ahead of sequential reads in half-window steps, across skipped holes", () => {
    const advisor = recorder();
    const ahead = new ReadAhead(advisor, 5, 100 * MiB, 8 * MiB);
    for (let at = 0; at < 8 * MiB; at += MiB) ahead.after(at, MiB);
    // A hole skipped inside the advised range continues the run.
    ahead.after(10 * MiB, MiB);
    expect(advisor.calls).toEqual([[5, MiB, 8 * MiB], [5, 9 * MiB, 4 * MiB], [5, 13 * MiB, 6 * MiB]]);
  });

  it("starts again after a jump back or past the advice, stops at the end of the file", () => {
    const advisor = recorder();
    const ahead = new ReadAhead(advisor, 5, 20 * MiB, 8 * MiB);
    ahead.after(0, MiB);
    ahead.after(18 * MiB, MiB);
    ahead.after(2 * MiB, MiB);
    expect(advisor.calls).toEqual([[5, MiB, 8 * MiB], [5, 19 * MiB, MiB], [5, 3 * MiB, 8 * MiB]]);
  });

  it("with a hole finder, advises only the data runs inside the window", () => {
    const advisor = recorder();
    // Data at [0, 2), [4, 5) and [9, 12) MiB of a 16 MiB file.
    const runs = [[0, 2], [4, 5], [9, 12]].map(([a, b]) => [a! * MiB, b! * MiB] as const);
    const finder = {
      nextData: (_fd: number, at: number) => runs.map(([a, b]) => (at < b ? Math.max(a, at) : -1)).find((x) => x >= 0),
      nextHole: (_fd: number, at: number) => runs.find(([, b]) => at < b)?.[1] ?? 16 * MiB,
    };
    const ahead = new ReadAhead(advisor, 5, 16 * MiB, 10 * MiB, finder);
    ahead.after(0, MiB);
    expect(advisor.calls).toEqual([[5, MiB, MiB], [5, 4 * MiB, MiB], [5, 9 * MiB, 2 * MiB]]);
  });

  it("a failing advisor is not called again and the reads go on", () => {
    const advisor = recorder(true);
    const ahead = new ReadAhead(advisor, 5, 100 * MiB);
    ahead.after(0, MiB);
    ahead.after(20 * MiB, MiB);
    expect(advisor.calls).toHaveLength(1);
  });
});

describe("read advice on a raw volume", () => {
  async function sourceFile(): Promise<string> {
    const file = path.join(dir, "src.img");
    await fsp.writeFile(file, new Uint8Array(4 * MiB).fill(3));
    return file;
  }

  it("the runtime's advisor (addon on Node, FFI on Deno) advises a real descriptor without error", async () => {
    const advisor = runtimeReadAdvisor();
    if (advisor === undefined) return expect(runtimeHoleFinder()).toBeUndefined(); // no binding: no lseek either
    const handle = await fsp.open(await sourceFile(), "r");
    try {
      advisor.willNeed(handle.fd, 0, 4 * MiB);
    } finally {
      await handle.close();
    }
    expect(() => advisor.willNeed(-1, 0, MiB)).toThrow();
  });

  it("a read-only volume advises ahead of its reads; a writable one and one without a trusted finder do not", async () => {
    const file = await sourceFile();
    const finder = runtimeHoleFinder();
    if (finder === undefined) return;
    const advisor = recorder();
    const reader = await openRawVolumeIO({ file: await nodeDirFs.open(file, OPEN_FLAGS.read), write: false, holeFinder: finder, label: "src", readAdvisor: advisor });
    const buffer = new Uint8Array(MiB);
    await reader.read(0, buffer);
    await reader.close();
    expect(advisor.calls.map(([, offset, length]) => [offset, length])).toEqual([[MiB, 3 * MiB]]);
    expect(buffer[MiB - 1]).toBe(3);
    const writable = await openRawVolumeIO({ file: await nodeDirFs.open(file, OPEN_FLAGS.readWrite), write: true, holeFinder: finder, label: "w", readAdvisor: advisor });
    await writable.read(0, buffer);
    await writable.close();
    const unfound = await openRawVolumeIO({ file: await nodeDirFs.open(file, OPEN_FLAGS.read), write: false, holeFinder: undefined, label: "u", readAdvisor: advisor });
    await unfound.read(0, buffer);
    await unfound.close();
    expect(advisor.calls).toHaveLength(1);
  });
});
