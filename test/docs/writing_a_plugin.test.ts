/**
 * docs/writing-a-plugin.md shows the example plugin's files as they are: each code block marked
 * `<!-- example: PATH -->` must equal that file (test/docs/ram_pool_example.test.ts runs them).
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

const root = new URL("../../", import.meta.url);
const guide = readFileSync(new URL("docs/writing-a-plugin.md", root), "utf8");
const marked = [...guide.matchAll(/<!-- example: (\S+) -->\n```ts\n([\s\S]*?)```\n/g)];

describe("docs/writing-a-plugin.md", () => {
  it("shows both files of the example plugin", () => {
    expect(marked.map((m) => m[1])).toEqual(["docs/examples/ram_pool/mod.ts", "docs/examples/ram_pool/ram_pool.test.ts"]);
  });

  for (const [, path, block] of marked) {
    it(`shows ${path} exactly as the file has it`, () => {
      expect(block).toBe(readFileSync(new URL(path!, root), "utf8"));
    });
  }

  it("imports only the public package, never a path inside it", () => {
    for (const [, , block] of marked) {
      for (const [, specifier] of block!.matchAll(/from "([^"]+)"/g)) expect(specifier).toMatch(/^(virtkit(\/testing(\/vitest)?)?|\.\/mod\.ts)$/);
    }
  });
});
