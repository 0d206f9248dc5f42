import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

export default defineConfig({
  // docs/examples import the package by name, as a plugin author does; in this repository it is the sources.
  resolve: {
    alias: [
      { find: /^virtkit$/, replacement: here("./mod.ts") },
      { find: /^virtkit\/testing$/, replacement: here("./test/conformance/mod.ts") },
      { find: /^virtkit\/testing\/vitest$/, replacement: here("./test/conformance/vitest.ts") },
    ],
  },
  test: {
    include: ["test/**/*.test.ts"],
    exclude: ["test/_deno/**", "node_modules/**", "dist/**"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
  },
});
