import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { afterAll, describe, expect, it } from "vitest";
import { killAll, missingTools } from "../drivers/qemu/_support.ts";
import { virtkit } from "./_spawn.ts";

const skip = missingTools.length > 0 && process.env.CI !== "true";
const dir = mkdtempSync(join(tmpdir(), "vk-cli-domains-"));
const stateDir = join(dir, "state");
const vk = (...args: string[]) => virtkit(["-c", `qemu:///session?stateDir=${stateDir}`, ...args]);

afterAll(() => {
  killAll(stateDir); // the QEMU a failed test may have left running
  rmSync(dir, { recursive: true, force: true });
});

describe("virtkit domain commands on real QEMU, one process per command as a user runs them", () => {
  it.skipIf(skip)("define FILE.json, start, dominfo, domstate, suspend, resume, destroy, undefine", async () => {
    expect(missingTools).toEqual([]);
    const file = join(dir, "web1.json");
    writeFileSync(file, JSON.stringify({ name: "web1", vcpus: 1, memoryBytes: 64 * 1024 * 1024, machine: "none", disks: [] }));
    expect((await vk("define", file)).stdout).toBe(`Domain 'web1' defined from ${file}\n`);
    expect((await vk("list")).stdout).not.toContain("web1"); // shut off: only with --all
    expect((await vk("list", "--all")).stdout).toMatch(/ web1\s+shut off\s+1\s+64 MiB/);
    expect((await vk("start", "web1")).stdout).toBe("Domain 'web1' started\n");
    expect((await vk("domstate", "web1")).stdout).toBe("running\n");
    const info = JSON.parse((await vk("dominfo", "web1", "--json")).stdout);
    expect(info).toMatchObject({ name: "web1", state: "running", vcpus: 1, memoryBytes: 64 * 1024 * 1024 });
    expect((await vk("suspend", "web1")).code).toBe(0);
    expect((await vk("domstate", "web1")).stdout).toBe("paused\n");
    expect((await vk("resume", "web1")).code).toBe(0);
    const busy = await vk("undefine", "web1");
    expect(busy.code).toBe(1);
    expect(busy.stderr).toMatch(/^error: .*web1.*running/);
    expect((await vk("destroy", "web1")).stdout).toBe("Domain 'web1' destroyed\n");
    const config = JSON.parse((await vk("dumpconfig", "web1")).stdout);
    expect(config).toMatchObject({ name: "web1", vcpus: 1, machine: "none" });
    expect((await vk("undefine", "web1")).stdout).toBe("Domain 'web1' has been undefined\n");
    expect((await vk("list", "--all", "--json")).stdout).toBe("[]\n");
  });

  it("refuses a define file that is not JSON, as a usage error", async () => {
    const file = join(dir, "broken.json");
    writeFileSync(file, "{ name: web1");
    const ran = await virtkit(["define", file]);
    expect(ran.code).toBe(2);
    expect(ran.stderr).toMatch(/^virtkit: define: .*broken\.json is not JSON/);
  });

  it("domblklist shows the backing chain", async () => {
    const ran = await virtkit(["domblklist", "test"]);
    expect(ran.stdout.split("\n")[2]).toMatch(/^ vda\s+\/default-pool\/test\.qcow2\s+qcow2\s+\/default-pool\/template\.img \(raw\)$/);
  });
});
