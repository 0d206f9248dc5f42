/**
 * Runs one `virtkit` command line and returns its exit code; `main.ts` wires it to the process.
 *
 * @module
 */
import { connect } from "../mod.ts";
import type { Connection } from "../core/connection.ts";
import { COMMANDS } from "./commands/mod.ts";
import { renderCommandHelp, renderOverview } from "./help.ts";
import { createOutput, type TextSink } from "./output.ts";
import { parseCommandLine } from "./parse.ts";
import { UsageError } from "./usage.ts";

/** The version `virtkit --version` prints (test/cli checks it matches package.json). */
export const VERSION = "0.1.0";

/** The URI used without `-c` and without `$VIRTKIT_DEFAULT_URI`. */
export const DEFAULT_URI = "test:///default";

/** What a command line runs against. */
export interface CliIo {
  /** Standard output. */
  readonly stdout: TextSink;
  /** Standard error. */
  readonly stderr: TextSink;
  /** Environment (`VIRTKIT_DEFAULT_URI`). */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Aborted on Ctrl-C. */
  readonly signal?: AbortSignal;
}

/**
 * Runs a command line: 0 success, 1 the operation failed, 2 usage error, 130 interrupted.
 *
 * @param argv The words after the program name.
 * @param io Output streams, environment and the interrupt signal.
 * @returns The exit code.
 * @example
 * ```ts
 * import { runCli } from "./run.ts";
 * let out = "", err = "";
 * const io = { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) }, env: {} };
 * if (await runCli(["dominfo", "test", "--json"], io) !== 0 || JSON.parse(out).state !== "running") throw new Error(err);
 * if (await runCli(["dominfo", "test", "--bogus"], io) !== 2) throw new Error("an unknown option must be refused");
 * ```
 */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const write = (sink: TextSink, lines: readonly string[]) => sink.write(`${lines.join("\n")}\n`);
  let conn: Connection | undefined;
  try {
    const line = parseCommandLine(argv, COMMANDS);
    if (line.kind === "version") {
      write(io.stdout, [`virtkit ${VERSION}`]);
      return 0;
    }
    if (line.kind === "help") {
      write(io.stdout, line.command ? renderCommandHelp(line.command) : renderOverview(COMMANDS));
      return 0;
    }
    const uri = line.connect ?? io.env.VIRTKIT_DEFAULT_URI ?? DEFAULT_URI;
    const signal = io.signal ?? new AbortController().signal;
    const code = await line.command.run({
      connect: async () => (conn ??= await connect(uri, { signal })),
      args: line.args,
      options: line.options,
      out: createOutput(io.stdout, io.stderr, line.json),
      signal,
      env: io.env,
    });
    return code ?? 0;
  } catch (error) {
    if (error instanceof UsageError) {
      write(io.stderr, [`virtkit: ${error.message}`]);
      return 2;
    }
    if (io.signal?.aborted && error === io.signal.reason) {
      write(io.stderr, ["interrupted"]);
      return 130;
    }
    write(io.stderr, [`error: ${error instanceof Error ? error.message : String(error)}`]);
    return 1;
  } finally {
    await conn?.close().catch(() => {});
  }
}
