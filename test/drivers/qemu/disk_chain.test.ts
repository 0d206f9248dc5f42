import { describe, expect, it } from "vitest";
import { CommandError } from "../../../core/errors.ts";
import type { CommandRunner } from "../../../drivers/command_runner.ts";
import { readChain } from "../../../drivers/qemu/disk_chain.ts";

/** A runner that replays what `qemu-img info --backing-chain` printed for a qcow2 over a raw image. */
function replay(stdout: string, calls: string[][]): CommandRunner {
  return { run: (argv) => (calls.push([...argv]), Promise.resolve(stdout)) };
}

describe("qemu disk chain", () => {
  it("reads the chain through the CommandRunner it is given, naming every node", async () => {
    const calls: string[][] = [];
    const stdout = JSON.stringify([
      { filename: "/img/top.qcow2", format: "qcow2", "virtual-size": 1048576 },
      { filename: "/img/base.raw", format: "raw", "virtual-size": 1048576 },
    ]);
    const chain = await readChain("/img/top.qcow2", "qcow2", "vda", { runner: replay(stdout, calls) });
    expect(calls).toEqual([["qemu-img", "info", "--output=json", "--backing-chain", "-U", "-f", "qcow2", "/img/top.qcow2"]]);
    expect(chain.map((l) => [l.path, l.format, l.node, l.fileNode])).toEqual([
      ["/img/top.qcow2", "qcow2", "vda-0", "vda-0-file"],
      ["/img/base.raw", "raw", "vda-1", "vda-1-file"],
    ]);
  });

  it("passes the runner's CommandError through", async () => {
    const failure = new CommandError({ argv: ["qemu-img"], exitCode: 1, stderr: "Could not open", driver: "qemu" });
    const runner: CommandRunner = { run: () => Promise.reject(failure) };
    await expect(readChain("/img/missing.qcow2", undefined, "vda", { runner })).rejects.toBe(failure);
  });
});
