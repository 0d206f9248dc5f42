import { existsSync, readFileSync, statSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { CommandError, ConnectError, UnsupportedError } from "../../../core/errors.ts";
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

  it("with CHAP accounts at hand, a chain without a CHAP layer is still one --backing-chain run", async () => {
    const calls: string[][] = [];
    const stdout = JSON.stringify([{ filename: "/img/top.qcow2", format: "qcow2", "virtual-size": 1 }, { filename: "/img/b.raw", format: "raw", "virtual-size": 1 }]);
    const asked: string[] = [];
    const chain = await readChain("/img/top.qcow2", "qcow2", "vda", { runner: replay(stdout, calls), authOf: (l) => (asked.push(l), Promise.resolve(undefined)) });
    expect(calls).toHaveLength(1);
    expect(asked).toEqual([]);
    expect(chain.map((l) => l.path)).toEqual(["/img/top.qcow2", "/img/b.raw"]);
  });

  it("passes the runner's CommandError through", async () => {
    const failure = new CommandError({ argv: ["qemu-img"], exitCode: 1, stderr: "Could not open", driver: "qemu" });
    const runner: CommandRunner = { run: () => Promise.reject(failure) };
    await expect(readChain("/img/missing.qcow2", undefined, "vda", { runner })).rejects.toBe(failure);
  });

  it("a chain --backing-chain cannot open is walked a layer at a time, a CHAP LUN opened with a secret file, never the password in argv", async () => {
    const lun = "iscsi://127.0.0.1:3261/iqn.2026-12.test:t/1";
    const calls: string[][] = [];
    const seen: { mode: number; text: string }[] = [];
    const runner: CommandRunner = {
      run: (argv) => {
        calls.push([...argv]);
        if (argv.includes("--backing-chain")) {
          // What qemu-img says when it meets the CHAP backing without credentials.
          return Promise.reject(new CommandError({ argv, exitCode: 1, stderr: `qemu-img: Could not open '${lun}': iSCSI: Failed to connect to LUN : Failed to log in to target. Status: Authentication failure(513)`, driver: "qemu" }));
        }
        const object = argv[argv.indexOf("--object") + 1];
        if (argv.includes("--object") && object) {
          const file = /file=(.*),format=raw$/.exec(object)![1]!;
          seen.push({ mode: statSync(file).mode & 0o777, text: readFileSync(file, "utf8") });
          return Promise.resolve(JSON.stringify({ filename: `json:{"driver": "raw", "file": {"driver": "iscsi", "portal": "127.0.0.1:3261", "target": "iqn.2026-12.test:t", "lun": "1", "user": "alice", "password-secret": "vda-1-secret"}}`, format: "raw", "virtual-size": 4096 }));
        }
        return Promise.resolve(JSON.stringify({ filename: "/img/top.qcow2", format: "qcow2", "virtual-size": 4096, "full-backing-filename": lun, "backing-filename-format": "raw" }));
      },
    };
    const secrets = new Map<string, string>();
    const authOf = (location: string) => Promise.resolve(location === lun ? { type: "chap" as const, username: "alice", password: "s3cret" } : undefined);
    const chain = await readChain("/img/top.qcow2", "qcow2", "vda", { runner, authOf, secrets });
    expect(calls[0]).toEqual(["qemu-img", "info", "--output=json", "--backing-chain", "-U", "-f", "qcow2", "/img/top.qcow2"]);
    expect(calls[1]).toEqual(["qemu-img", "info", "--output=json", "-U", "-f", "qcow2", "/img/top.qcow2"]);
    expect(calls[2]!.slice(0, 5)).toEqual(["qemu-img", "info", "--output=json", "-U", "--object"]);
    expect(calls[2]!.at(-1)).toBe(
      "driver=raw,file.driver=iscsi,file.transport=tcp,file.portal=127.0.0.1:3261,file.target=iqn.2026-12.test:t,file.lun=1,file.user=alice,file.password-secret=vda-1-secret",
    );
    expect(calls.flat().join(" ")).not.toContain("s3cret");
    expect(seen).toEqual([{ mode: 0o600, text: "s3cret" }]);
    const file = /file=(.*),format=raw$/.exec(calls[2]![5]!)![1]!;
    expect(existsSync(file)).toBe(false);
    expect(chain.map((l) => [l.path, l.format, l.node, l.auth])).toEqual([
      ["/img/top.qcow2", "qcow2", "vda-0", undefined],
      [lun, "raw", "vda-1", { username: "alice", secret: "vda-1-secret" }],
    ]);
    expect(secrets).toEqual(new Map([["vda-1-secret", "s3cret"]]));
  });

  it("turns a refused CHAP login into a ConnectError naming the LUN", async () => {
    const lun = "iscsi://127.0.0.1:3261/iqn.2026-12.test:t/1";
    const refused = new CommandError({ argv: ["qemu-img"], exitCode: 1, stderr: "iSCSI: Failed to connect to LUN : Failed to log in to target. Status: Authentication failure(513)", driver: "qemu" });
    const runner: CommandRunner = { run: () => Promise.reject(refused) };
    const authOf = () => Promise.resolve({ type: "chap" as const, username: "alice", password: "wrong" });
    const error = await readChain(lun, "raw", "vda", { runner, authOf }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).message).toBe(`Cannot open disk layer ${lun}: the target refused CHAP account "alice" (wrong password, or the account is not bound to the target)`);
    expect((error as ConnectError).cause).toBe(refused);
  });

  it("a LUN of a pool with mutual CHAP is an UnsupportedError before qemu-img runs: QEMU cannot check the target", async () => {
    const lun = "iscsi://127.0.0.1:3261/iqn.2026-12.test:t/1";
    const calls: string[][] = [];
    const runner: CommandRunner = { run: (argv) => (calls.push([...argv]), Promise.reject(new Error("not reached"))) };
    const authOf = () => Promise.resolve({ type: "chap" as const, username: "alice", password: "a", mutual: { username: "tgt", password: "b" } });
    const error = await readChain(lun, "raw", "vda", { runner, authOf }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnsupportedError);
    expect((error as Error).message).toContain("one-way CHAP only");
    expect(calls).toEqual([]);
  });
});
