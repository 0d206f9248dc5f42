/**
 * How a `virtkit` command describes itself: its arguments, options and examples (which also make its
 * `--help` and docs/cli.md) and the function that runs it.
 *
 * @module
 */
import type { Connection } from "../core/connection.ts";
import type { Output } from "./output.ts";

/** One option of a command. */
export interface OptionSpec {
  /** `"string"` takes a value, `"boolean"` is a flag. */
  readonly type: "string" | "boolean";
  /** One-letter alias (`"c"` for `-c`). */
  readonly short?: string;
  /** Placeholder of the value in help (`"N"`, `"PATH"`). */
  readonly value?: string;
  /** One line for the help. */
  readonly description: string;
}

/** One positional argument. */
export interface ArgSpec {
  /** Its name in help, upper case (`"DOMAIN"`). */
  readonly name: string;
  /** One line for the help. */
  readonly description: string;
  /** May be left out. */
  readonly optional?: boolean;
}

/** What a running command gets. */
export interface CommandContext {
  /** The connection (opened on first use, closed after the command). */
  connect(): Promise<Connection>;
  /** Positional arguments by name (absent optional ones are missing). */
  readonly args: Readonly<Record<string, string>>;
  /** Options as parsed (`true` for a flag that was given). */
  readonly options: Readonly<Record<string, string | boolean | undefined>>;
  /** Where output goes (text or `--json`). */
  readonly out: Output;
  /** Aborted on Ctrl-C. */
  readonly signal: AbortSignal;
  /** Environment variables. */
  readonly env: Readonly<Record<string, string | undefined>>;
}

/** A command: its help and how to run it. */
export interface CommandSpec {
  /** virsh's name (`"dominfo"`). */
  readonly name: string;
  /** Section of the command list. */
  readonly group: "Domains" | "Storage pools" | "Volumes" | "Block jobs" | "Jobs and events" | "Other";
  /** One line for the command list. */
  readonly summary: string;
  /** Positional arguments, in order. */
  readonly args: readonly ArgSpec[];
  /** Options besides the common ones (`--connect`, `--json`, `--help`). */
  readonly options?: Readonly<Record<string, OptionSpec>>;
  /** Command lines shown in help (without the leading `virtkit`). */
  readonly examples: readonly string[];
  /** Runs it; resolves to the exit code (0 when nothing is returned). */
  run(ctx: CommandContext): Promise<number | void>;
}

/** Options every command has. */
export const COMMON_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  connect: { type: "string", short: "c", value: "URI", description: "hypervisor connection URI (default $VIRTKIT_DEFAULT_URI, else test:///default)" },
  json: { type: "boolean", description: "machine-readable output: one JSON document (or one object per line while following a job)" },
  help: { type: "boolean", short: "h", description: "show this help" },
  version: { type: "boolean", description: "print virtkit's version" },
};
