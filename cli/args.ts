/**
 * Argument parsing for the `virtkit` command: positional words and `--name value` / `--flag` options.
 *
 * @module
 */

/** Parsed command line. */
export interface ParsedArgs {
  /** Words that are not options, in order. */
  readonly positional: string[];
  /** `--name value` options (a bare `--flag` maps to `"true"`). */
  readonly options: ReadonlyMap<string, string>;
}

/** Options that never take a value. */
const FLAGS = new Set(["wait", "help", "json", "shrink"]);

/**
 * Splits argv into positional words and options.
 *
 * @param argv Arguments after the program name.
 * @returns The parsed words and options.
 * @throws {TypeError} When an option that needs a value has none.
 * @example
 * ```ts
 * import { parseArgs } from "./args.ts";
 * const args = parseArgs(["blockpull", "test", "vda", "--bandwidth", "64M", "--wait"]);
 * if (args.options.get("bandwidth") !== "64M" || args.positional.length !== 3) throw new Error("unexpected");
 * ```
 */
export function parseArgs(argv: readonly string[]): ParsedArgs {
  const positional: string[] = [];
  const options = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]!;
    if (!word.startsWith("--")) {
      positional.push(word);
      continue;
    }
    const [name, inline] = word.slice(2).split("=", 2) as [string, string | undefined];
    if (inline !== undefined) options.set(name, inline);
    else if (FLAGS.has(name)) options.set(name, "true");
    else {
      const value = argv[++i];
      if (value === undefined) throw new TypeError(`Option --${name} needs a value`);
      options.set(name, value);
    }
  }
  return { positional, options };
}
