/**
 * Shared pieces of the `logical` suites: the real-tools check (skip locally, fail under CI=true), a loop
 * device each suite makes on a temporary file and always detaches, unique VG names, and a runner that
 * replays recorded LVM2 output.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { CommandError } from "../../../core/errors.ts";
import type { CommandRunner } from "../../../drivers/command_runner.ts";
import { findExecutable } from "../../../drivers/qemu/qmp/testing/mod.ts";

const TOOLS = ["losetup", "pvcreate", "vgcreate", "lvcreate", "lvs", "vgs", "pvs", "dmsetup"];
/** What this machine lacks to run the real-tools cases. */
export const missing = [
  ...TOOLS.filter((tool) => findExecutable(tool) === undefined),
  ...(process.getuid?.() === 0 ? [] : ["root (LVM2 and losetup need it)"]),
];
/** Skip the real-tools cases locally when something is missing; under CI=true they run (and fail). */
export const skipReal = missing.length > 0 && process.env.CI !== "true";

/** A unique VG name for one suite. */
export function uniqueVgName(prefix: string): string {
  return `${prefix}${process.pid}${Math.random().toString(36).slice(2, 8)}`;
}

/** A sparse file attached to a free loop device (`losetup -f --show`). */
export class LoopDevice {
  readonly dir: string;
  readonly device: string;

  /** @param sizeMiB Size of the backing file. */
  constructor(sizeMiB: number) {
    if (missing.length > 0) throw new Error(`The real LVM2 suite needs ${missing.join(", ")} (CI=true forbids skipping)`);
    this.dir = mkdtempSync(join(tmpdir(), "vk-lvm-"));
    const file = join(this.dir, "pv.img");
    execFileSync("truncate", ["-s", `${sizeMiB}M`, file]);
    try {
      this.device = execFileSync("losetup", ["-f", "--show", file], { encoding: "utf8" }).trim();
    } catch (error) {
      rmSync(this.dir, { recursive: true, force: true });
      throw error;
    }
  }

  /**
   * Removes whatever is left of the VG on the device (a failed test may leave one), detaches the device
   * and removes the file. Never throws: it runs in afterAll.
   */
  cleanup(vg: string): void {
    const quiet = { stdio: "ignore" as const };
    try {
      execFileSync("vgremove", ["--driverloaded", "n", "-f", vg], quiet);
    } catch { /* no such VG */ }
    try {
      execFileSync("pvremove", ["-y", this.device], quiet);
    } catch { /* no PV label */ }
    try {
      execFileSync("losetup", ["-d", this.device], quiet);
    } catch { /* detached already */ }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** One recorded tool run. */
export interface Recording {
  argv: string[];
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** The recordings of one fixture file in test/fixtures/lvm/. */
export function recordings(name: string): Recording[] {
  const url = new URL(`../../fixtures/lvm/${name}.json`, import.meta.url);
  return (JSON.parse(readFileSync(url, "utf8")) as { runs: Recording[] }).runs;
}

/**
 * A runner answering each argv with what the real tool printed for it (first unused match first); a
 * command that was not recorded fails the test loudly.
 */
export function replayRunner(runs: readonly Recording[], calls: string[][] = []): CommandRunner {
  const unused = [...runs];
  return {
    run(argv) {
      calls.push([...argv]);
      const same = (r: Recording) => r.argv.join("\0") === argv.join("\0");
      const at = unused.findIndex(same);
      // Once every recording of a command is used, its last one answers again (a re-read of a report).
      const found = at < 0 ? runs.filter(same).pop() : unused.splice(at, 1)[0];
      if (!found) return Promise.reject(new Error(`No recording for ${JSON.stringify(argv)}`));
      if (found.exitCode === 0) return Promise.resolve(found.stdout);
      return Promise.reject(new CommandError({ argv, exitCode: found.exitCode, stderr: found.stderr, driver: "logical" }));
    },
  };
}
