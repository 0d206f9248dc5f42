import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { afterAll, describe, expect, it } from "vitest";
import { killAll, missingTools } from "../drivers/qemu/_support.ts";
import { start, tsEntry } from "./_spawn.ts";

const skipOnline = missingTools.length > 0 && process.env.CI !== "true";
const base = mkdtempSync(join(tmpdir(), "vk-main-job-"));
const mainJob = (...args: string[]) => start([...tsEntry("cli/main_job.ts"), "--state-dir", base, ...args]).done;

afterAll(() => {
  for (const run of readdirSync(base)) killAll(join(base, run, "qemu"));
  rmSync(base, { recursive: true, force: true });
});

/** The summary lines every successful run ends with. */
function expectVerified(stdout: string): void {
  expect(stdout).toMatch(/^pulled 16 MiB in /m);
  expect(stdout).toMatch(/^ {2}achieved rate: [\d.]+ (KiB|MiB)\/s (of data|streamed) over the pull, against a cap of 64 MiB\/s raised to 128 MiB\/s half-way$/m);
  expect(stdout).toContain("verified:      every byte the guest sees equals the template; the volume no longer has a backing file");
}

describe("npm start: the main job on real files", () => {
  it("offline through the image engine: pulls, verifies every byte, removes its files", async () => {
    const ran = await mainJob("--size", "16M", "--bandwidth", "64", "--offline");
    expect(ran.stderr).not.toContain("error");
    expect(ran.code).toBe(0);
    expect(ran.stdout).toContain("pulling offline through virtkit's image engine");
    expectVerified(ran.stdout);
    // The template is half data, half holes: only the data is copied.
    expect(ran.stdout).toMatch(/^ {2}bytes copied: {2}8 MiB$/m);
    expect(ran.stdout).toMatch(/^ {2}holes skipped: 8 MiB /m);
    const stateDir = /^state directory: (.*)$/m.exec(ran.stdout)![1]!;
    expect(readdirSync(base)).not.toContain(stateDir.split("/").at(-1)); // not --keep: removed
  });

  it.skipIf(skipOnline)("online on a running QEMU domain when QEMU is installed", async () => {
    expect(missingTools).toEqual([]);
    const ran = await mainJob("--size", "16M", "--bandwidth", "64", "--keep");
    expect(ran.code).toBe(0);
    expect(ran.stdout).toMatch(/domain main-job is running in QEMU on the thin disk \(machine none: no guest OS\); pulling online/);
    expectVerified(ran.stdout);
    expect(ran.stdout).toMatch(/^ {2}bytes streamed by QEMU: 16 MiB /m);
    expect(ran.stdout).toMatch(/^ {2}data written: {2}8\.\d+ MiB /m); // 8 MiB of data plus qcow2 metadata
    expect(ran.stdout).toContain("qemu-img check: No errors were found on the image.");
    expect(ran.stdout).toMatch(/^files kept in /m);
  });

  it("--help lists its options; a wrong option is refused with exit code 2", async () => {
    const help = await mainJob("--help");
    expect(help.code).toBe(0);
    for (const option of ["--size", "--bandwidth", "--keep", "--offline", "--state-dir"]) expect(help.stdout).toContain(option);
    const wrong = await mainJob("--sise", "1G");
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain('did you mean "--size"?');
    const small = await mainJob("--size", "1M");
    expect([small.code, small.stderr]).toEqual([2, 'npm start: Invalid --size "1M": it must be at least 8388608 bytes\n']);
  });
});
