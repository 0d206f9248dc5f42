import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { start, tsEntry } from "./cli/_spawn.ts";
import { withAbsoluteImports } from "./docs/_imports.ts";

const root = new URL("..", import.meta.url);
const readme = readFileSync(new URL("README.md", root), "utf8");
const example = readFileSync(new URL("docs/examples/first_taste.mjs", root), "utf8");

describe("README", () => {
  it("shows the first-taste example exactly as docs/examples/first_taste.mjs has it", () => {
    expect(/```js\n([\s\S]*?)```/.exec(readme)?.[1]).toBe(example);
  });

  it("runs the first-taste example: the job completes and the disk has no backing chain left", async () => {
    // The packed-package test runs it on plain Node; here it runs against the sources on this runtime.
    const dir = await mkdtemp(join(tmpdir(), "vk-readme-"));
    try {
      const file = join(dir, "first_taste.mjs");
      await writeFile(file, withAbsoluteImports(example, dir));
      const [runtime, ...args] = tsEntry("cli/main.ts");
      const ran = await start([runtime!, ...args.slice(0, -1), file]).done;
      expect(ran.stderr).toBe("");
      expect(ran.stdout).toBe("job-1 done\n0\n");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("opens with the two commands for a fresh machine, the second being npm test", () => {
    const commands = /```sh\n([\s\S]*?)```/.exec(readme)?.[1]?.trim().split("\n").map((line) => line.split("#")[0]!.trim());
    expect(commands).toEqual(["npm ci && npm start", "npm test"]);
  });

  it("links every guide in docs/ that exists", () => {
    const linked = [...readme.matchAll(/\]\((docs\/[^)]+\.md)\)/g)].map((m) => m[1]);
    for (const guide of ["getting-started", "domains", "storage", "jobs-and-events", "bandwidth", "qemu-driver", "testing", "cli"]) {
      expect(linked).toContain(`docs/${guide}.md`);
    }
  });
});
