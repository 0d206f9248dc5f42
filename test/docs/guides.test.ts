/**
 * Every ```ts block of the guides in docs/ runs, on Node and on Deno, the way the JSDoc examples do:
 * written to a scratch module with `"virtkit"` pointed at the sources, and imported. A guide that says
 * something the code does not do fails here.
 */
import fs from "node:fs";
import fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { ROOT, withAbsoluteImports } from "./_imports.ts";

/** The guides this suite owns; each must hold at least one example. */
export const GUIDES = ["getting-started", "domains", "storage", "jobs-and-events", "block-jobs", "bandwidth", "qemu-driver", "testing", "remote"];

const examples = GUIDES.flatMap((guide) => {
  const text = fs.readFileSync(path.join(ROOT, "docs", `${guide}.md`), "utf8");
  return [...text.matchAll(/```ts\n([\s\S]*?)```/g)].map((block, i) => ({ name: `docs/${guide}.md #${i + 1}`, guide, code: block[1]! }));
});
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "virtkit-guides-"));
afterAll(() => fsp.rm(scratch, { recursive: true, force: true }));

describe("guide examples", () => {
  it("every guide has examples", () => {
    for (const guide of GUIDES) expect(examples.some((e) => e.guide === guide), guide).toBe(true);
  });

  it.each(examples.map((example, index) => ({ ...example, index })))("$name runs", async (example) => {
    const module = path.join(scratch, `guide_${example.index}.ts`);
    await fsp.writeFile(module, `${withAbsoluteImports(example.code, path.join(ROOT, "docs"))}\nexport {};\n`);
    await import(pathToFileURL(module).href);
  });
});
