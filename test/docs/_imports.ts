/**
 * How the docs suites run an example from a scratch module: its imports are pointed back at the source
 * tree, relative ones (`./x.ts`, as JSDoc examples write them) and the package's own entry points
 * (`"virtkit"`, `"virtkit/testing"`, `"virtkit/testing/vitest"`, as users and the guides write them).
 */
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

/** The package's entry points and the sources they are built from (package.json and deno.json exports). */
const ENTRY_POINTS: Record<string, string> = {
  virtkit: "mod.ts",
  "virtkit/testing": "test/conformance/mod.ts",
  "virtkit/testing/vitest": "test/conformance/vitest.ts",
};

/**
 * Rewrites an example's import specifiers (static and dynamic) to absolute file URLs.
 *
 * @param code The example.
 * @param fromDir The directory its relative imports are relative to.
 */
export function withAbsoluteImports(code: string, fromDir: string): string {
  const absolute = (specifier: string) => {
    const entry = ENTRY_POINTS[specifier];
    return pathToFileURL(entry ? path.join(ROOT, entry) : path.resolve(fromDir, specifier)).href;
  };
  return code.replace(
    /(from\s+|import\s*\(\s*|import\s+)(["'])(\.\.?\/[^"']+|virtkit(?:\/testing(?:\/vitest)?)?)\2/g,
    (_all, lead: string, quote: string, spec: string) => `${lead}${quote}${absolute(spec)}${quote}`,
  );
}
