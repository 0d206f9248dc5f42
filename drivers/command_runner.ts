/**
 * Running host programs (`qemu-img`, LVM2 tools) behind one small interface (design §1), so a driver
 * never calls `node:child_process` itself and tests can replay recorded output instead.
 *
 * @module
 */
import { execFile } from "node:child_process";
import { CommandError, VirtError } from "../core/errors.ts";

/** Runs one program with an argument array (never a shell). */
export interface CommandRunner {
  /**
   * Runs `argv` and resolves with its stdout.
   *
   * @param argv Program and arguments.
   * @param options `signal` stops the program; the rejection is then the signal's reason.
   * @throws {CommandError} When the program exits with a failure (argv, exit code, stderr).
   * @throws {VirtError} (`connect-failed`) When the program is not installed.
   */
  run(argv: readonly string[], options?: { signal?: AbortSignal }): Promise<string>;
}

/** Options of {@linkcode createNodeCommandRunner}. */
export interface NodeCommandRunnerOptions {
  /** Driver name recorded in errors (`"qemu"`). */
  readonly driver: string;
  /** The Debian package that brings each program, named when one is missing. */
  readonly packages?: Readonly<Record<string, string>>;
}

/**
 * The error for a program that is not installed.
 *
 * @param program Its name or path.
 * @param options The driver and its package table.
 * @param cause The spawn error.
 * @returns A `VirtError` (`connect-failed`) naming the package to install.
 * @example
 * ```ts
 * import { missingProgram } from "./command_runner.ts";
 * const error = missingProgram("/usr/bin/qemu-img", { driver: "qemu", packages: { "qemu-img": "qemu-utils" } });
 * if (!error.message.includes("apt-get install qemu-utils") || error.driver !== "qemu") throw new Error("unexpected");
 * ```
 */
export function missingProgram(program: string, options: NodeCommandRunnerOptions, cause?: unknown): VirtError {
  const pkg = options.packages?.[program.split("/").pop()!] ?? program;
  return new VirtError("connect-failed", `Cannot run "${program}": it is not installed (on Debian: apt-get install ${pkg})`, {
    driver: options.driver,
    cause,
  });
}

/**
 * The runner over `node:child_process` `execFile` (also on Deno, which provides that module).
 *
 * @param options The driver name and package table for errors.
 * @returns The runner.
 * @example
 * ```ts
 * import { createNodeCommandRunner } from "./command_runner.ts";
 * const runner = createNodeCommandRunner({ driver: "demo" });
 * if ((await runner.run(["echo", "hi"])).trim() !== "hi") throw new Error("unexpected");
 * const failed = await runner.run(["false"]).catch((e) => e);
 * if (failed.code !== "command-failed" || failed.exitCode !== 1) throw new Error("unexpected");
 * ```
 */
export function createNodeCommandRunner(options: NodeCommandRunnerOptions): CommandRunner {
  return Object.freeze({
    run(argv: readonly string[], runOptions?: { signal?: AbortSignal }): Promise<string> {
      const signal = runOptions?.signal;
      return new Promise<string>((resolve, reject) => {
        execFile(argv[0]!, argv.slice(1), { maxBuffer: 64 << 20, encoding: "utf8", ...(signal ? { signal } : {}) }, (error, stdout, stderr) => {
          if (!error) return resolve(stdout);
          if (signal?.aborted) return reject(signal.reason);
          if ((error as NodeJS.ErrnoException).code === "ENOENT") return reject(missingProgram(argv[0]!, options, error));
          const exitCode = typeof error.code === "number" ? error.code : null;
          reject(new CommandError({ argv, exitCode, stderr: String(stderr), driver: options.driver, cause: error }));
        });
      });
    },
  });
}
