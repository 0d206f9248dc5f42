/**
 * Usage errors of the `virtkit` command: what the user typed is wrong, nothing was done, exit code 2.
 *
 * @module
 */
import { closest, distance } from "fastest-levenshtein";

/** A command line that cannot be run as typed (unknown command or option, bad value). Exit code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/**
 * The nearest of `names` to a misspelt `word`, when it is near enough to be what was meant.
 *
 * @param word What the user typed (`"bandwith"`).
 * @param names The valid names.
 * @returns The suggestion, or `undefined` when nothing is close.
 * @example
 * ```ts
 * import { suggest } from "./usage.ts";
 * if (suggest("bandwith", ["bandwidth", "base", "wait"]) !== "bandwidth") throw new Error("unexpected");
 * if (suggest("frobnicate", ["list", "start"]) !== undefined) throw new Error("unexpected");
 * ```
 */
export function suggest(word: string, names: readonly string[]): string | undefined {
  if (names.length === 0) return undefined;
  const prefixed = names.filter((name) => name.startsWith(word) || word.startsWith(name));
  if (prefixed.length === 1) return prefixed[0];
  const best = closest(word, [...names]);
  // Up to a third of the word may differ (at least 2 edits): "bandwith", "pool-lsit" and "dominf" qualify.
  return distance(word, best) <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

/**
 * ` (did you mean "X"?)` for a suggestion, or nothing.
 *
 * @param word What the user typed.
 * @param names The valid names.
 * @param prefix Put before the suggestion (`"--"` for options).
 * @returns The hint text.
 * @example
 * ```ts
 * import { didYouMean } from "./usage.ts";
 * if (didYouMean("lsit", ["list"]) !== ' (did you mean "list"?)') throw new Error("unexpected");
 * ```
 */
export function didYouMean(word: string, names: readonly string[], prefix = ""): string {
  const best = suggest(word, names);
  return best === undefined ? "" : ` (did you mean "${prefix}${best}"?)`;
}
