/**
 * Every relative link in the README and the guides points at a file that exists (TypeDoc checks the
 * guides it renders too, with `validation.invalidPath`; this also covers the README's links).
 */
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "./_imports.ts";

const documents = ["README.md", ...fs.readdirSync(path.join(ROOT, "docs")).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`)];

describe("links in the README and the guides", () => {
  it.each(documents)("%s links only to files that exist", (document) => {
    const text = fs.readFileSync(path.join(ROOT, document), "utf8");
    const broken: string[] = [];
    for (const [, target] of text.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) {
      if (/^[a-z]+:/.test(target!)) continue; // an absolute URL
      const file = path.normalize(path.join(path.dirname(document), target!));
      if (!fs.existsSync(path.join(ROOT, file))) broken.push(target!);
    }
    expect(broken).toEqual([]);
  });
});
