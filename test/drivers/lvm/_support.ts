/**
 * Shared pieces of the `logical` suites: the real-tools check (skip locally, fail under CI=true), a loop
 * device each suite makes on a temporary file and always detaches, unique VG names, and a runner that
 * replays recorded LVM2 output.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
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

/** Whether this kernel's device-mapper works (`dmsetup version` succeeds). */
export function deviceMapperWorks(): boolean {
  try {
    execFileSync("dmsetup", ["version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** A random LVM2 id (32 letters and digits, grouped 6-4-4-4-4-4-6 as LVM prints them). */
function lvmId(): string {
  const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  const pick = (n: number) => Array.from(crypto.getRandomValues(new Uint8Array(n)), (b) => chars[b % chars.length]).join("");
  return [6, 4, 4, 4, 4, 4, 6].map(pick).join("-");
}

/**
 * Puts a thin pool `pool` (its data `dataMiB`) holding thin volumes into a VG's metadata, where
 * device-mapper is missing and `lvcreate --type thin-pool` refuses: linear LVs for the pool's data,
 * metadata and spare, `vgcfgbackup`, their sections turned into a thin pool's hidden sub-LVs plus the
 * `thin-pool` and `thin` LVs in LVM2's own text format, then `vgcfgrestore --force` (which LVM2 needs
 * for thin pools). What LVM2 then reports (`lvs`) is its own reading of a genuine thin layout.
 */
export function restoreThinPool(vg: string, dir: string, pool: string, dataMiB: number, thins: ReadonlyArray<{ name: string; sizeMiB: number }>): void {
  const quiet = { stdio: "ignore" as const, env: { ...process.env, LVM_SUPPRESS_FD_WARNINGS: "1" } };
  const parts = [["vkdata", dataMiB, `${pool}_tdata`], ["vkmeta", 4, `${pool}_tmeta`], ["vkspare", 4, "lvol0_pmspare"]] as const;
  for (const [name, sizeMiB] of parts) execFileSync("lvcreate", ["--driverloaded", "n", "-an", "-Zn", "-y", "-n", name, "-L", `${sizeMiB}m`, vg], quiet);
  const file = join(dir, `${vg}.vg`);
  execFileSync("vgcfgbackup", ["-f", file, vg], quiet);
  let text = readFileSync(file, "utf8");
  for (const [name, , renamed] of parts) {
    const head = new RegExp(`(\\t\\t)${name}( \\{\\n\\t\\t\\tid = "[^"]+"\\n\\t\\t\\tstatus = \\["READ", "WRITE"), "VISIBLE"\\]`);
    if (!head.test(text)) throw new Error(`vgcfgbackup of ${vg} has no section for ${name} in the expected form`);
    text = text.replace(head, `$1${renamed}$2]`); // sub-LVs of a thin pool are hidden
  }
  const lv = (name: string, extents: number, segment: string) =>
    `\t\t${name} {\n\t\t\tid = "${lvmId()}"\n\t\t\tstatus = ["READ", "WRITE", "VISIBLE"]\n\t\t\tflags = []\n\t\t\tsegment_count = 1\n\n` +
    `\t\t\tsegment1 {\n\t\t\t\tstart_extent = 0\n\t\t\t\textent_count = ${extents}\n\n${segment}\t\t\t}\n\t\t}\n\n`;
  const extentsOf = (mib: number) => Math.ceil(mib / 4);
  const poolLv = lv(pool, extentsOf(dataMiB),
    `\t\t\t\ttype = "thin-pool"\n\t\t\t\tmetadata = "${pool}_tmeta"\n\t\t\t\tpool = "${pool}_tdata"\n\t\t\t\ttransaction_id = ${thins.length}\n` +
    `\t\t\t\tchunk_size = 128\n\t\t\t\tdiscards = "passdown"\n\t\t\t\tzero_new_blocks = 1\n`);
  const thinLvs = thins.map((thin, i) =>
    lv(thin.name, extentsOf(thin.sizeMiB), `\t\t\t\ttype = "thin"\n\t\t\t\tthin_pool = "${pool}"\n\t\t\t\ttransaction_id = ${i}\n\t\t\t\tdevice_id = ${i + 1}\n`));
  if (!text.includes("\tlogical_volumes {\n")) throw new Error(`vgcfgbackup of ${vg} has no logical_volumes section`);
  text = text.replace("\tlogical_volumes {\n", `\tlogical_volumes {\n\n${poolLv}${thinLvs.join("")}`);
  writeFileSync(file, text);
  execFileSync("vgcfgrestore", ["--force", "-f", file, vg], quiet);
}
