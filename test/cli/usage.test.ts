import { describe, expect, it } from "vitest";
import { virtkit } from "./_spawn.ts";

describe("virtkit command line: usage errors", () => {
  it("takes -c URI before the command, as virsh does", async () => {
    const ran = await virtkit(["-c", "test:///default", "list"]);
    expect(ran.stderr).toBe("");
    expect(ran.code).toBe(0);
    expect(ran.stdout.split("\n")[2]).toMatch(/^ test\s+running\s+2\s+2 GiB$/);
  });

  it("uses $VIRTKIT_DEFAULT_URI when there is no -c", async () => {
    const ran = await virtkit(["list", "--all"], { VIRTKIT_DEFAULT_URI: "test:///empty" });
    expect(ran.code).toBe(0);
    expect(ran.stdout.trim().split("\n")).toHaveLength(2); // header and rule, no domain
  });

  it("refuses a misspelt option with the nearest name and exit code 2, running nothing", async () => {
    const ran = await virtkit(["blockpull", "test", "vda", "--bandwith", "64M", "--wait"]);
    expect(ran.code).toBe(2);
    expect(ran.stdout).toBe("");
    expect(ran.stderr).toBe('virtkit: blockpull: unknown option "--bandwith" (did you mean "--bandwidth"?); see "virtkit blockpull --help"\n');
  });

  it("refuses an unknown command with a suggestion", async () => {
    const ran = await virtkit(["pool-lsit"]);
    expect(ran.code).toBe(2);
    expect(ran.stderr).toContain('Unknown command "pool-lsit" (did you mean "pool-list"?)');
  });

  it("says a flag does not belong to the command instead of asking for a value", async () => {
    const ran = await virtkit(["dominfo", "test", "--info"]);
    expect(ran.code).toBe(2);
    expect(ran.stderr).toContain('dominfo: unknown option "--info"');
  });

  it("refuses negative, absurd and malformed values before anything happens", async () => {
    const negative = await virtkit(["blockpull", "test", "vda", "--bandwidth=-5", "--wait"]);
    expect([negative.code, negative.stderr]).toEqual([2, 'virtkit: Invalid --bandwidth "-5": it is negative\n']);
    const absurd = await virtkit(["blockpull", "test", "vda", "--bandwidth", "5P", "--wait"]);
    expect(absurd.code).toBe(2);
    expect(absurd.stderr).toContain("above 1 TiB/s");
    const size = await virtkit(["vol-create-as", "default-pool", "x.img", "12 parsecs"]);
    expect(size.code).toBe(2);
    expect(size.stderr).toContain('Invalid SIZE "12 parsecs"');
    const missing = await virtkit(["blockpull", "test"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("blockpull: missing DISK (usage: virtkit blockpull DOMAIN DISK");
  });

  it("has --help on every command with an example, and --version", async () => {
    const help = await virtkit(["vol-create-as", "--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^usage: virtkit vol-create-as POOL NAME SIZE \[--format FORMAT\]/);
    expect(help.stdout).toContain("Example:\n  virtkit vol-create-as default-pool web1.qcow2 20G");
    const version = await virtkit(["--version"]);
    expect(version.stdout).toMatch(/^virtkit \d+\.\d+\.\d+\n$/);
    expect((await virtkit(["pool-list", "--version"])).stdout).toBe(version.stdout);
  });

  it("exits 1 with the error text when the operation fails", async () => {
    const ran = await virtkit(["dominfo", "nosuch"]);
    expect(ran.code).toBe(1);
    expect(ran.stderr).toMatch(/^error: .*nosuch/);
  });
});
