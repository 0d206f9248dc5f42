import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

const root = new URL("..", import.meta.url);

describe("README", () => {
  it("shows the first-taste example exactly as docs/examples/first_taste.ts has it", () => {
    const readme = readFileSync(new URL("README.md", root), "utf8");
    const block = /```ts\n([\s\S]*?)```/.exec(readme)?.[1];
    const example = readFileSync(new URL("docs/examples/first_taste.ts", root), "utf8")
      .split("\n")
      .filter((line) => !line.startsWith("export const"))
      .slice(1)
      .join("\n");
    expect(block?.split("\n").slice(1).join("\n")).toBe(example);
  });

  it("runs the first-taste example: the pulled disk has no backing chain left", async () => {
    const { backingLayersAfterPull } = await import("../docs/examples/first_taste.ts");
    expect(backingLayersAfterPull).toBe(0);
  });

  it("opens with the two commands for a fresh machine, the second being npm test", () => {
    const readme = readFileSync(new URL("README.md", root), "utf8");
    const commands = /```sh\n([\s\S]*?)```/.exec(readme)?.[1]?.trim().split("\n").map((line) => line.split("#")[0]!.trim());
    expect(commands).toEqual(["npm ci && npm run demo", "npm test"]);
  });
});
