/**
 * Parses a `virtkit` command line: global options, then the command, then that command's own
 * arguments and options (with `node:util`'s `parseArgs` in strict mode, so an unknown or misspelt option
 * is an error, never silently ignored).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { COMMON_OPTIONS, type CommandSpec, type OptionSpec } from "./spec.ts";
import { didYouMean, UsageError } from "./usage.ts";

/** A parsed command line. */
export type ParsedCommandLine =
  | { readonly kind: "help"; readonly command?: CommandSpec }
  | { readonly kind: "version" }
  | {
    readonly kind: "run";
    readonly command: CommandSpec;
    /** `--connect` if given (before or after the command). */
    readonly connect?: string;
    /** `--json` given. */
    readonly json: boolean;
    readonly args: Record<string, string>;
    readonly options: Record<string, string | boolean | undefined>;
  };

const GLOBAL_OPTIONS: Record<string, OptionSpec> = COMMON_OPTIONS;

/**
 * Parses argv (after the program name) against the commands.
 *
 * @param argv The words typed.
 * @param commands Every command.
 * @returns What to do.
 * @throws {UsageError} For an unknown command or option, a missing value, or missing or extra arguments.
 * @example
 * ```ts
 * import { parseCommandLine } from "./parse.ts";
 * import { COMMANDS } from "./commands/mod.ts";
 * const line = parseCommandLine(["-c", "test:///empty", "blockpull", "test", "vda", "--bandwidth", "64"], COMMANDS);
 * if (line.kind !== "run" || line.connect !== "test:///empty" || line.options.bandwidth !== "64") throw new Error("unexpected");
 * let refused = "";
 * try { parseCommandLine(["blockpull", "test", "vda", "--bandwith", "64M"], COMMANDS); } catch (error) { refused = String(error); }
 * if (!refused.includes('did you mean "--bandwidth"')) throw new Error(refused);
 * ```
 */
export function parseCommandLine(argv: readonly string[], commands: readonly CommandSpec[]): ParsedCommandLine {
  const names = commands.map((command) => command.name);
  // Global options come before the command; the first word that is not one is the command.
  let index = 0;
  let connect: string | undefined;
  let json = false;
  while (index < argv.length && argv[index]!.startsWith("-")) {
    const word = argv[index]!;
    const [flag, inline] = word.startsWith("--") ? splitInline(word) : [word, undefined];
    if (flag === "-h" || flag === "--help") return { kind: "help" };
    if (flag === "--version") return { kind: "version" };
    if (flag === "--json") json = true;
    else if (flag === "-c" || flag === "--connect") {
      connect = inline ?? argv[++index];
      if (connect === undefined || connect.startsWith("-")) throw new UsageError(`Option ${flag} needs a URI`);
    } else {
      throw new UsageError(`Unknown option "${word}" before the command${didYouMean(flag.replace(/^-+/, ""), Object.keys(GLOBAL_OPTIONS), "--")}; see "virtkit --help"`);
    }
    index++;
  }
  const name = argv[index];
  if (name === undefined) return { kind: "help" };
  if (name === "help") {
    const topic = argv[index + 1];
    return { kind: "help", command: topic === undefined ? undefined : findCommand(topic, commands, names) };
  }
  const command = findCommand(name, commands, names);
  const rest = argv.slice(index + 1);
  const spec = { ...COMMON_OPTIONS, ...command.options };
  let values: Record<string, string | boolean | undefined>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: [...rest], options: spec as Record<string, OptionSpec>, allowPositionals: true, strict: true }));
  } catch (error) {
    throw explain(error, command, spec);
  }
  if (values.help) return { kind: "help", command };
  if (values.version) return { kind: "version" };
  const args: Record<string, string> = {};
  command.args.forEach((arg, i) => {
    const value = positionals[i];
    if (value !== undefined) args[arg.name] = value;
    else if (!arg.optional) throw new UsageError(`${command.name}: missing ${arg.name} (usage: virtkit ${usageLine(command)})`);
  });
  if (positionals.length > command.args.length) {
    throw new UsageError(`${command.name}: unexpected argument "${positionals[command.args.length]}" (usage: virtkit ${usageLine(command)})`);
  }
  return {
    kind: "run",
    command,
    connect: (values.connect as string | undefined) ?? connect,
    json: json || values.json === true,
    args,
    options: values,
  };
}

/**
 * The usage line of a command: `blockpull DOMAIN DISK [--bandwidth N] [--base PATH] [--wait]`.
 *
 * @param command The command.
 * @returns The line without the program name.
 * @example
 * ```ts
 * import { usageLine } from "./parse.ts";
 * import { COMMANDS } from "./commands/mod.ts";
 * const line = usageLine(COMMANDS.find((c) => c.name === "vol-list")!);
 * if (line !== "vol-list POOL") throw new Error(line);
 * ```
 */
export function usageLine(command: CommandSpec): string {
  const args = command.args.map((arg) => (arg.optional ? `[${arg.name}]` : arg.name));
  const options = Object.entries(command.options ?? {}).map(([name, option]) =>
    `[--${name}${option.type === "string" ? ` ${option.value ?? "VALUE"}` : ""}]`
  );
  return [command.name, ...args, ...options].join(" ");
}

function findCommand(name: string, commands: readonly CommandSpec[], names: readonly string[]): CommandSpec {
  const command = commands.find((c) => c.name === name);
  if (command) return command;
  throw new UsageError(`Unknown command "${name}"${didYouMean(name, names)}; see "virtkit --help"`);
}

function splitInline(word: string): [string, string | undefined] {
  const at = word.indexOf("=");
  return at < 0 ? [word, undefined] : [word.slice(0, at), word.slice(at + 1)];
}

/** Turns parseArgs' errors (Node and Deno word them alike) into one line naming the command. */
function explain(error: unknown, command: CommandSpec, spec: Record<string, OptionSpec>): Error {
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: string } | undefined)?.code;
  const option = /'(-[^' ]+)/.exec(message)?.[1] ?? "";
  const bare = option.replace(/^-+/, "").split("=")[0]!;
  if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" || /Unknown option/.test(message)) {
    return new UsageError(`${command.name}: unknown option "${option}"${didYouMean(bare, Object.keys(spec), "--")}; see "virtkit ${command.name} --help"`);
  }
  if (code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE" || /argument missing|does not take an argument/.test(message)) {
    const known = Object.entries(spec).find(([name, o]) => option === `--${name}` || option === `-${o.short}`);
    if (known?.[1].type === "boolean") return new UsageError(`${command.name}: option --${known[0]} takes no value`);
    if (/ambiguous/.test(message)) {
      return new UsageError(`${command.name}: option ${option} is followed by an option instead of its ${known?.[1].value ?? "value"}; write ${option}=VALUE for a value that starts with "-"`);
    }
    return new UsageError(`${command.name}: option ${option} needs a value (${known?.[1].value ?? "VALUE"})`);
  }
  return new UsageError(`${command.name}: ${message}`);
}
