/**
 * virtkit from a Deno project outside the repository, the way the README says (a `links` entry in the
 * project's deno.json), and the JSR package check (`deno publish --dry-run`).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ROOT, start } from "../cli/_spawn.ts";

const deno = join(ROOT, "node_modules", ".bin", "deno");
const scratch = mkdtempSync(join(tmpdir(), "vk-deno-project-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe("virtkit on Deno, as a dependency", () => {
  it("a Deno project outside the repository imports it and pulls a disk", async () => {
    writeFileSync(join(scratch, "deno.json"), JSON.stringify({ imports: { "@virtkit/virtkit": "jsr:@virtkit/virtkit@^0.1.0" }, links: [ROOT] }));
    writeFileSync(join(scratch, "main.ts"), [
      'import { connect, MiB } from "@virtkit/virtkit";',
      'await using conn = await connect("test:///default");',
      'const dom = await conn.domains.get("test");',
      "await (await dom.blockPull(\"vda\", { bandwidth: MiB(1024) })).wait();",
      "console.log((await dom.disks())[0]!.backingChain.length);",
    ].join("\n"));
    const ran = await start([deno, "run", "-A", join(scratch, "main.ts")], { DENO_NO_UPDATE_CHECK: "1" }).done;
    expect(ran.stderr).not.toMatch(/error/i);
    expect(ran.stdout).toBe("0\n");
  }, 300_000);

  // The valibot schemas (core/config) export their types by inference, which JSR calls "slow types":
  // publishing is allowed with them (the package scores lower). Spelling every schema's type out by hand
  // would be a second copy of each schema, which is what deriving types from schemas avoids.
  it("is ready for JSR: deno publish --dry-run passes without warnings (slow types allowed)", async () => {
    const ran = await start([deno, "publish", "--dry-run", "--allow-dirty", "--allow-slow-types"], { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" }).done;
    expect(ran.stderr + ran.stdout).toContain("Success Dry run complete");
    const warnings = (ran.stderr + ran.stdout).split("\n").filter((line) => /warning/i.test(line));
    expect(warnings.filter((line) => !line.includes("Publishing a library with slow types"))).toEqual([]);
    expect(ran.code).toBe(0);
  }, 300_000);
});
