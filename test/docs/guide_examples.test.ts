/**
 * The ```ts examples of the hand-written guides run, on Node and on Deno: each block is written to a
 * scratch module with `"virtkit"` pointed at the source tree's mod.ts, and imported. An example throws
 * when what it shows is not what the code does.
 */
import fs from "node:fs";
import fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
/** Guides whose every ```ts block is an example that runs on its own. */
const GUIDES = ["docs/block-jobs.md"];

const examples = GUIDES.flatMap((guide) => {
  const text = fs.readFileSync(path.join(ROOT, guide), "utf8");
  return [...text.matchAll(/```ts\n([\s\S]*?)```/g)].map((m, i) => ({ name: `${guide} #${i + 1}`, code: m[1]! }));
});
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "virtkit-guides-"));
afterAll(() => fsp.rm(scratch, { recursive: true, force: true }));
const mod = pathToFileURL(path.join(ROOT, "mod.ts")).href;

describe("guide examples", () => {
  it("are found", () => {
    expect(examples.length).toBeGreaterThanOrEqual(3);
  });

  it.each(examples.map((example, index) => ({ ...example, index })))("$name runs", async (example) => {
    const file = path.join(scratch, `guide_${example.index}.ts`);
    await fsp.writeFile(file, `${example.code.replace(/from "virtkit"/g, `from "${mod}"`)}\nexport {};\n`);
    await import(pathToFileURL(file).href);
  });
});
