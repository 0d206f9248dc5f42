/**
 * Every `@example` in the sources runs, on Node and on Deno: each ```ts block of a JSDoc comment is
 * written to a scratch module, with its relative and `"virtkit"` imports pointed back at the source tree
 * (test/docs/_imports.ts), and imported.
 * An example throws when what it shows is not what the code does, so a stale one fails here.
 * Each runs with `TMPDIR` set to a fresh empty directory, and fails when that directory is not empty
 * afterwards: an example removes what it makes (its `mkdtemp` dirs, sockets), so runs do not pile up
 * leftovers in the machine's temp dir.
 */
import fs from "node:fs";
import fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { ROOT, withAbsoluteImports } from "./_imports.ts";
/** Where examples live: the library's sources and the exported testing kit. */
const SOURCE_DIRS = ["core", "drivers", "daemon", "plugins", "cli", "test/conformance"];

interface Example {
  /** `file.ts #n`, for the test name. */
  name: string;
  /** The source file, absolute. */
  file: string;
  code: string;
}

function sourceFiles(): string[] {
  const files = [path.join(ROOT, "mod.ts")];
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith(".ts") && !entry.name.endsWith(".test.ts") && !entry.name.endsWith(".d.ts")) files.push(full);
    }
  };
  for (const dir of SOURCE_DIRS) walk(path.join(ROOT, dir));
  return files.sort();
}

/** The ```ts blocks inside the JSDoc comments of one file, without their ` * ` margins. */
function examplesOf(file: string): Example[] {
  const text = fs.readFileSync(file, "utf8");
  const found: Example[] = [];
  for (const comment of text.match(/\/\*\*[\s\S]*?\*\//g) ?? []) {
    if (!comment.includes("@example")) continue;
    const lines = comment.split("\n").map((line) => line.replace(/^\s*\*(?: |$)/, ""));
    const body = lines.join("\n");
    for (const block of body.matchAll(/```ts\n([\s\S]*?)```/g)) {
      found.push({ name: `${path.relative(ROOT, file)} #${found.length + 1}`, file, code: block[1]! });
    }
  }
  return found;
}

/**
 * Examples that are a test file of their own: they register vitest suites when imported, which a
 * running test cannot do. What they show runs in every `describeConformance` call of test/drivers.
 */
const SUITE_EXAMPLES = new Set(["test/conformance/vitest.ts"]);

const examples = sourceFiles()
  .filter((file) => !SUITE_EXAMPLES.has(path.relative(ROOT, file)))
  .flatMap(examplesOf);
// Inside the project, so an example's bare imports (`valibot`) resolve as the sources' do.
const scratch = fs.mkdtempSync(path.join(ROOT, ".examples-"));
afterAll(() => fsp.rm(scratch, { recursive: true, force: true }));

/** The machine's temp dir, before any example points `TMPDIR` elsewhere. */
const MACHINE_TMPDIR = os.tmpdir();

/**
 * Runs `run` with `TMPDIR` (what `os.tmpdir()` and `Deno.makeTempDir` read, on every call) set to a
 * fresh directory, and returns what is left in it; the directory itself is removed either way.
 * Examples run one at a time, so setting the process-wide variable is safe here.
 */
async function withFreshTmpdir(run: () => Promise<unknown>): Promise<string[]> {
  const dir = await fsp.mkdtemp(path.join(MACHINE_TMPDIR, "vk-example-tmp-"));
  const previous = process.env.TMPDIR;
  process.env.TMPDIR = dir;
  try {
    await run();
    return await fsp.readdir(dir);
  } finally {
    if (previous === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = previous;
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

describe("JSDoc examples", () => {
  it("are found: the sources have examples to run", () => {
    expect(examples.length).toBeGreaterThan(100);
  });

  it("make their temp dirs under os.tmpdir(), where the leftover check looks", () => {
    const hardcoded = examples.filter((example) => /mkdtemp(?:Sync)?\(\s*["'`]\//.test(example.code)).map((example) => example.name);
    expect(hardcoded).toEqual([]);
  });

  it.each(examples.map((example, index) => ({ ...example, index })))("$name runs", async (example) => {
    const module = path.join(scratch, `example_${example.index}.ts`);
    await fsp.writeFile(module, `${withAbsoluteImports(example.code, path.dirname(example.file))}\nexport {};\n`);
    const leftovers = await withFreshTmpdir(() => import(pathToFileURL(module).href));
    expect(leftovers, "what the example left in its TMPDIR (remove it in a finally)").toEqual([]);
  });
});
