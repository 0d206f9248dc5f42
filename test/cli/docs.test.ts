import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { COMMANDS } from "../../cli/commands/mod.ts";
import { renderCliReference } from "../../cli/help.ts";
import { VERSION } from "../../cli/run.ts";
import { ROOT, virtkit } from "./_spawn.ts";

describe("the CLI reference", () => {
  it("docs/cli.md is what the commands' help says (run npm run docs:cli after changing a command)", () => {
    expect(readFileSync(`${ROOT}/docs/cli.md`, "utf8")).toBe(renderCliReference(COMMANDS));
  });

  it("holds exactly what virtkit --help prints", async () => {
    const help = await virtkit(["--help"]);
    expect(readFileSync(`${ROOT}/docs/cli.md`, "utf8")).toContain(help.stdout.trimEnd());
  });

  it("every command has an example, and the issue's commands all exist", () => {
    for (const command of COMMANDS) expect(command.examples.length, command.name).toBeGreaterThan(0);
    const names = COMMANDS.map((c) => c.name);
    for (const name of ["list", "dominfo", "domstate", "domblklist", "dumpconfig", "define", "undefine", "start", "shutdown", "destroy", "suspend", "resume",
      "pool-list", "pool-info", "pool-define-as", "pool-create-as", "pool-build", "pool-start", "pool-destroy", "pool-delete", "pool-undefine", "pool-refresh", "pool-autostart",
      "vol-list", "vol-info", "vol-create-as", "vol-clone", "vol-upload", "vol-download", "vol-wipe", "vol-resize", "vol-delete", "vol-extents",
      "blockpull", "blockcopy", "blockcommit", "blockjob", "jobs", "job-info", "job-abort", "job-pause", "job-resume", "job-dismiss", "events", "demo"]) {
      expect(names).toContain(name);
    }
  });

  it("--version is package.json's version", () => {
    expect(VERSION).toBe(JSON.parse(readFileSync(`${ROOT}/package.json`, "utf8")).version);
  });
});
