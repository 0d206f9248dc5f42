/**
 * The npm package as a user gets it: `npm pack` (which builds dist/ through `prepare`), installed into a
 * scratch project outside the repository, used from plain JavaScript on Node.
 */
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, normalize } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT, start } from "../cli/_spawn.ts";

const scratch = mkdtempSync(join(tmpdir(), "vk-npm-package-"));
let tarball = "";
let files = new Set<string>();

beforeAll(() => {
  const [packed] = JSON.parse(execFileSync("npm", ["pack", "--json", "--pack-destination", scratch], { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] })) as [{ filename: string; files: { path: string }[] }];
  tarball = join(scratch, packed.filename);
  files = new Set(packed.files.map((f) => f.path));
}, 300_000);
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe("the npm package", () => {
  it("ships the guides the README links, and no test files", () => {
    const readme = readFileSync(join(ROOT, "README.md"), "utf8");
    for (const [, link] of readme.matchAll(/\]\((docs\/[^)]+\.md)\)/g)) {
      // Guides of features not in this build yet are not in the repository either.
      if (existsSync(join(ROOT, link!))) expect(files, link).toContain(link);
    }
    expect([...files].filter((f) => f.endsWith(".test.ts"))).toEqual([]);
    expect(files).toContain("dist/cli/main.js");
  });

  it("has source maps whose sources are files in the package", () => {
    const maps = [...files].filter((f) => f.endsWith(".js.map"));
    expect(maps.length).toBeGreaterThan(50);
    for (const map of maps) {
      const { sources } = JSON.parse(readFileSync(join(ROOT, map), "utf8")) as { sources: string[] };
      for (const source of sources) expect(files, `${map} -> ${source}`).toContain(normalize(join(dirname(map), source)));
    }
  });

  it("runs the README's plain-JavaScript example and the virtkit bin on plain Node", async () => {
    const project = join(scratch, "project");
    mkdirSync(project);
    writeFileSync(join(project, "package.json"), JSON.stringify({ name: "scratch", private: true, type: "module" }));
    execFileSync("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", tarball], { cwd: project, stdio: "ignore" });
    copyFileSync(join(ROOT, "docs", "examples", "first_taste.mjs"), join(project, "first_taste.mjs"));
    const node = "node"; // plain Node from PATH, whichever runtime runs this suite
    const ran = await start([node, join(project, "first_taste.mjs")]).done;
    expect(ran.stderr).toBe("");
    expect(ran.stdout).toBe("job-1 done\n0\n");
    const bin = await start([node, join(project, "node_modules", ".bin", "virtkit"), "-c", "test:///default", "list", "--json"]).done;
    expect(bin.code).toBe(0);
    expect(JSON.parse(bin.stdout)[0]).toMatchObject({ name: "test", state: "running" });
  }, 300_000);
});
