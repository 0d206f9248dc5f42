import { execFileSync } from "node:child_process";
import process from "node:process";
import { describe, expect, it } from "vitest";
import { start, tsEntry, until, virtkit } from "./_spawn.ts";

const MiB = 1024 * 1024;

/** Rates the plain progress lines show, with their caps, in bytes per second. */
function ratesShown(text: string): { rate: number; cap: number }[] {
  const unit = (n: string, u: string) => Number(n) * (u === "GiB" ? 1024 * MiB : u === "MiB" ? MiB : u === "KiB" ? 1024 : 1);
  return [...text.matchAll(/([\d.]+) (B|KiB|MiB|GiB)\/s \(cap ([\d.]+) (B|KiB|MiB|GiB)\/s\)/g)].map((m) => ({
    rate: unit(m[1]!, m[2]!),
    cap: unit(m[3]!, m[4]!),
  }));
}

describe("virtkit command line: following jobs", () => {
  it("blockpull --wait: plain progress lines off a terminal, a transfer rate within the cap, exit 0", async () => {
    const ran = await virtkit(["blockpull", "test", "vda", "--bandwidth", "64", "--wait"]);
    expect(ran.code).toBe(0);
    expect(ran.stdout).toBe("job-1 block-pull completed\n");
    expect(ran.stderr).toMatch(/job-1 block-pull running \d+% .* \(cap 64 MiB\/s\)/);
    expect(ran.stderr.trim().split("\n").at(-1)).toBe("job-1 block-pull completed 100% 256 MiB / 256 MiB");
    // The disk is half holes: progress runs faster than the cap, the transfer rate shown does not.
    const rates = ratesShown(ran.stderr);
    expect(rates.length).toBeGreaterThan(0);
    for (const { rate, cap } of rates) expect(rate).toBeLessThanOrEqual(cap * 1.1);
  });

  it("--json prints one JSON event per line, ending with the outcome", async () => {
    const ran = await virtkit(["blockpull", "test", "vda", "--bandwidth", "1G", "--wait", "--json"]);
    expect(ran.code).toBe(0);
    const events = ran.stdout.trim().split("\n").map((line) => JSON.parse(line));
    expect(events.at(-1).type).toBe("job:completed");
    const last = events.at(-1).job;
    expect(last.copiedBytes).toBeGreaterThan(0);
    expect(last.copiedBytes).toBeLessThan(last.end); // holes were skipped, not copied
  });

  it("shows a live progress bar in a pseudo-terminal", async () => {
    const command = [...tsEntry("cli/main.ts"), "blockpull", "test", "vda", "--bandwidth", "128", "--wait"].map((w) => `'${w}'`).join(" ");
    const text = execFileSync("script", ["-qec", command, "/dev/null"], { encoding: "utf8", env: { ...process.env, NO_COLOR: "1" } });
    expect(text).toContain("\x1b[?25l"); // cursor hidden while the bar draws
    expect(text).toMatch(/job-1 block-pull \|[█░]+\| \d+% [\d.]+ MiB \/ 256 MiB \| [\d.]+ MiB\/s \(cap 128 MiB\/s\) \| ETA/);
    expect(text).toContain("job-1 block-pull completed");
  });

  it("warns that a job of a test: connection ends with the process when not waited for", async () => {
    const ran = await virtkit(["blockpull", "test", "vda"]);
    expect(ran.code).toBe(0);
    expect(ran.stdout).toBe("Started job-1 (block-pull)\n");
    expect(ran.stderr).toContain("it ends when the command exits; add --wait");
  });

  for (const detach of [false, true]) {
    it(`Ctrl-C during --wait ${detach ? "detaches with --detach-on-interrupt" : "aborts the job"} and says so`, async () => {
      const args = ["blockpull", "test", "vda", "--bandwidth", "8", "--wait", ...(detach ? ["--detach-on-interrupt"] : [])];
      const child = start([...tsEntry("cli/main.ts"), ...args]);
      await until(() => /running \d+%/.test(child.output.stderr), "the first progress line");
      process.kill(child.pid, "SIGINT");
      const ran = await child.done;
      expect(ran.code).toBe(130);
      expect(ran.stderr).toContain(detach ? "interrupted: detached from job-1, left running" : "interrupted: aborted job-1 (aborted)");
    });
  }

  it("blockcopy --wait ends when the copy is ready, and blockcommit --pivot needs --wait", async () => {
    const copy = await virtkit(["blockcopy", "test", "vda", "copy.qcow2", "--pool", "default-pool", "--wait"]);
    expect([copy.code, copy.stdout]).toEqual([0, "job-1 block-copy is ready (in sync): finish it with blockjob --pivot or --abort\n"]);
    const pivot = await virtkit(["blockcommit", "test", "vda", "--pivot"]);
    expect(pivot.code).toBe(2);
  });

  it("steers jobs: blockjob on a disk without a job says so, and refuses verbs it cannot apply", async () => {
    const none = await virtkit(["blockjob", "test", "vda"]);
    expect([none.code, none.stdout]).toEqual([0, "No current block job for vda\n"]);
    const abort = await virtkit(["blockjob", "test", "vda", "--abort"]);
    expect(abort.code).toBe(2);
    const both = await virtkit(["blockjob", "test", "vda", "--pause", "--abort"]);
    expect(both.stderr).toContain("cannot be combined");
  });

  it("exits 1 with the error when the volume is not there", async () => {
    const ran = await virtkit(["vol-wipe", "nosuch.img", "--pool", "default-pool"]);
    expect(ran.code).toBe(1);
    expect(ran.stderr).toMatch(/^error: .*nosuch\.img/);
  });

  it("events replays the connection's events and filters them by type", async () => {
    const all = await virtkit(["events"]);
    expect([all.code, all.stdout]).toEqual([0, "1 domain:defined test\n"]);
    const json = await virtkit(["events", "--type", "domain:*", "--json"]);
    expect(JSON.parse(json.stdout)).toMatchObject({ seq: 1, type: "domain:defined", domain: "test" });
    expect((await virtkit(["events", "--type", "job:*"])).stdout).toBe("");
    const bad = await virtkit(["events", "--type", "bogus"]);
    expect(bad.code).toBe(2);
  });

  it("virtkit demo still runs the in-memory story", async () => {
    const ran = await virtkit(["demo", "--bandwidth", "1G"]);
    expect(ran.code).toBe(0);
    expect(ran.stdout.trim().split("\n").at(-1)).toBe("vda backing chain after the pull: none (the VM no longer depends on the template)");
  });
});
