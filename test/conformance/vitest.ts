/**
 * The conformance kit's vitest adapter (`virtkit/testing/vitest`): one `it` per case, skipped cases
 * registered with `it.skip` so the report shows them.
 *
 * @module virtkit/testing/vitest
 */
import { describe, it } from "vitest";
import { allCases } from "./mod.ts";
import type { ConformanceTarget, PlannedCase } from "./types.ts";

/** Per-case time limit handed to the runner; the cases' own waits fail earlier with a clearer message. */
const CASE_TIMEOUT_MS = 60_000;

function register(name: string, planned: readonly PlannedCase[]): void {
  describe(name, () => {
    for (const entry of planned) {
      if (entry.skip === undefined) it(entry.name, () => entry.run(), CASE_TIMEOUT_MS);
      else it.skip(`${entry.name} (${entry.skip})`, () => {});
    }
  });
}

/**
 * Registers the whole conformance kit for a driver as a vitest suite: a `describe(name)` with one `it`
 * per case, and `it.skip` for each case that needs a capability the target does not declare.
 *
 * Pass the target itself, or a function making it. A function returning a promise makes registration
 * asynchronous: `await` the call at the top of the test file (vitest and Deno both allow top-level await).
 *
 * @param name The suite name (the driver, the URI, the clock ...).
 * @param target The driver under test, or a function that makes it.
 * @throws {TypeError} When the target is incomplete for what it declares.
 * @example A storage vendor's test file, test/conformance.test.ts
 * ```ts
 * import { createDefaultRegistry, createVirtualClock, GiB } from "virtkit";
 * import { describeConformance } from "virtkit/testing/vitest";
 * import { sanPlugin } from "../mod.ts";
 *
 * // The built-ins (the `test` driver serves the connection) plus your plugin; use() is async.
 * const registry = createDefaultRegistry();
 * await registry.use(sanPlugin);
 * const clock = createVirtualClock();
 *
 * describeConformance("san backend", {
 *   connect: () => registry.connect("test:///empty", { clock }),
 *   poolConfig: (name) => ({ name, type: "san", array: "lab-array-1", sizeBytes: GiB(8) }),
 *   clock,
 *   capabilities: { storage: true, volumeCreate: true, volumeFormats: ["raw"], volumeStreams: true, volumeClone: true },
 * });
 * ```
 */
export function describeConformance(name: string, target: ConformanceTarget | (() => ConformanceTarget)): void;
/**
 * Registers the conformance kit for a target an async function makes; `await` the call at the top of the file.
 *
 * @param name The suite name.
 * @param target A function resolving to the driver under test.
 * @returns A promise that resolves once the suite is registered.
 * @example
 * ```ts
 * import { describeConformance } from "virtkit/testing/vitest";
 * import { makeSanTarget } from "./san_target.ts";
 * await describeConformance("san backend", () => makeSanTarget());
 * ```
 */
export function describeConformance(name: string, target: () => Promise<ConformanceTarget>): Promise<void>;
export function describeConformance(
  name: string,
  target: ConformanceTarget | (() => ConformanceTarget | Promise<ConformanceTarget>),
): void | Promise<void> {
  const made = typeof target === "function" ? target() : target;
  if (made instanceof Promise) return made.then((resolved) => register(name, allCases(resolved)));
  register(name, allCases(made));
}
