import { describe, expect, it } from "vitest";
import { parseArgs } from "../../cli/args.ts";
import { COMMANDS, describeJob } from "../../cli/commands.ts";
import { runDemo } from "../../cli/demo.ts";
import { connect, MiB } from "../../mod.ts";

async function run(name: string, argv: string[]): Promise<string[]> {
  const lines: string[] = [];
  await using conn = await connect("test:///default");
  await COMMANDS[name]!.run(conn, parseArgs([name, ...argv]), (line) => lines.push(line));
  return lines;
}

describe("virtkit command", () => {
  it("parses words, --name value, --name=value and flags", () => {
    const args = parseArgs(["blockpull", "test", "vda", "--bandwidth", "64M", "--wait", "--connect=test:///empty"]);
    expect(args.positional).toEqual(["blockpull", "test", "vda"]);
    expect(Object.fromEntries(args.options)).toEqual({ bandwidth: "64M", wait: "true", connect: "test:///empty" });
    expect(() => parseArgs(["blockpull", "--bandwidth"])).toThrow(TypeError);
  });

  it("lists the seeded domain, pool, volumes and the disk's backing chain", async () => {
    expect(await run("list", [])).toEqual([expect.stringMatching(/^test\s+running\s+2 vCPU 2 GiB$/)]);
    expect((await run("pool-list", []))[0]).toMatch(/^default-pool\s+memory\s+active/);
    expect((await run("vol-list", ["default-pool"])).map((line) => line.split(/\s+/)[0])).toEqual(["template.img", "test.qcow2"]);
    expect(await run("domblklist", ["test"])).toEqual(["vda    /default-pool/test.qcow2 (qcow2) <- /default-pool/template.img (raw)"]);
  });

  it("blockpull --wait follows the job to its end", async () => {
    const lines = await run("blockpull", ["test", "vda", "--bandwidth", "1G", "--wait"]);
    expect(lines[0]).toBe("started job-1");
    expect(lines.at(-1)).toMatch(/^job-1 block-pull completed 256 MiB \/ 256 MiB \(100%\)/);
  });

  it("names what is missing", async () => {
    await expect(run("domblklist", [])).rejects.toThrow("Missing domain name");
    await expect(run("blockpull", ["test", "vdz"])).rejects.toThrow(/disk "vdz"/);
  });

  it("describes a failed job with its error", () => {
    const line = describeJob({ id: "job-2", type: "volume-clone", state: "failed", target: {}, cur: 0, end: MiB(1), bandwidth: 0, bytesPerSecond: 0, createdAt: 0, error: "disk full" });
    expect(line).toBe("job-2 volume-clone failed 0 B / 1 MiB (0%) error: disk full");
  });

  it("runs the story-1 demo: the new VM's disk ends with no backing chain", async () => {
    await using conn = await connect("test:///default");
    const lines: string[] = [];
    expect(await runDemo(conn, (line) => lines.push(line), { bandwidth: MiB(1024) })).toBe("completed");
    expect(lines.at(-1)).toMatch(/backing chain after the pull: none/);
    expect(lines.some((line) => line.startsWith("event job:completed"))).toBe(true);
  });
});
