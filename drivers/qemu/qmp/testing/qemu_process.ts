/**
 * A throwaway QEMU for tests and for recording transcripts: `qemu-system-x86_64 -machine none` with a
 * QMP socket, plus a small image set for block-stream runs. Uses `node:` built-ins (Node and Deno 2).
 *
 * @module
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { accessSync, constants, existsSync } from "node:fs";
import { delimiter, join } from "node:path";
import { CommandError, ConnectError } from "../../../../core/errors.ts";
import { connectUnixSocket, type QmpTransport } from "../transport.ts";

/** Options of {@linkcode startQmpQemu}. */
export interface QmpQemuOptions {
  /** Directory for the socket (must exist; the caller removes it). */
  readonly dir: string;
  /** Emulator binary (default `qemu-system-x86_64` from `PATH`). */
  readonly binary?: string;
  /** How long to wait for the socket to appear (default 10 000 ms). */
  readonly timeoutMs?: number;
}

/** A running QEMU. */
export interface QmpQemu extends AsyncDisposable {
  /** The QMP socket path. */
  readonly socketPath: string;
  /** Process id. */
  readonly pid: number;
  /** Settles with the exit code (or signal name) when the process ends. */
  readonly exited: Promise<number | string>;
  /** What QEMU wrote to stderr so far. */
  stderr(): string;
  /**
   * Connects to the QMP socket, retrying while it refuses: QEMU binds the socket file before it
   * listens, so the file can exist a moment before a connection succeeds.
   */
  connect(): Promise<QmpTransport>;
  /** Kills the process (SIGKILL) unless it has exited, and waits for the exit. */
  stop(): Promise<void>;
}

/**
 * Finds an executable on `PATH`.
 *
 * @param name Executable name.
 * @returns Its full path, or `undefined` when it is not installed.
 * @example
 * ```ts
 * import { findExecutable } from "./qemu_process.ts";
 * if (findExecutable("surely-not-installed-xyz") !== undefined) throw new Error("unexpected");
 * ```
 */
export function findExecutable(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir === "") continue;
    try {
      accessSync(join(dir, name), constants.X_OK);
      return join(dir, name);
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

/**
 * Starts `qemu-system-x86_64 -machine none -nodefaults -nographic -display none -qmp unix:...` and
 * waits (polling with a deadline) until its socket exists. Connect with `connect()`, which also
 * rides out the moment between QEMU binding the socket and listening on it.
 *
 * @param options Directory, binary, timeout.
 * @returns The running process; stop it with `stop()` or `await using`.
 * @throws {CommandError} When QEMU exits before its socket appears.
 * @throws {ConnectError} When the socket does not appear in time.
 * @example
 * ```ts
 * import { startQmpQemu } from "./qemu_process.ts";
 * const failure = await startQmpQemu({ dir: "/tmp", binary: "/nonexistent/qemu" }).catch((error) => error);
 * if (failure.code !== "command-failed") throw new Error("unexpected");
 * ```
 */
export async function startQmpQemu(options: QmpQemuOptions): Promise<QmpQemu> {
  const socketPath = join(options.dir, "qmp.sock");
  const argv = [
    options.binary ?? "qemu-system-x86_64",
    ...["-machine", "none", "-nodefaults", "-nographic", "-display", "none"],
    ...["-qmp", `unix:${socketPath},server=on,wait=off`],
  ];
  const child: ChildProcess = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr!.setEncoding("utf8").on("data", (text: string) => (stderr += text));
  let exitCode: number | string | undefined;
  const exited = new Promise<number | string>((resolve) => {
    child.once("error", (error) => {
      stderr += String(error);
      exitCode ??= 127;
      resolve(exitCode);
    });
    child.once("exit", (code, signal) => {
      exitCode = code ?? signal ?? -1;
      resolve(exitCode);
    });
  });
  const stop = async () => {
    if (exitCode === undefined) child.kill("SIGKILL");
    await exited;
  };
  const timeoutMs = options.timeoutMs ?? 10_000;
  const deadline = performance.now() + timeoutMs;
  const connect = async (): Promise<QmpTransport> => {
    for (;;) {
      try {
        return await connectUnixSocket(socketPath, { timeoutMs });
      } catch (error) {
        const code = (error as { cause?: { code?: string } }).cause?.code;
        if ((code !== "ECONNREFUSED" && code !== "ENOENT") || exitCode !== undefined || performance.now() > deadline) throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  };
  while (!existsSync(socketPath)) {
    if (exitCode !== undefined) throw new CommandError({ argv, exitCode: typeof exitCode === "number" ? exitCode : null, stderr, driver: "qemu" });
    if (performance.now() > deadline) {
      await stop();
      throw new ConnectError(`QMP socket "${socketPath}" did not appear within ${timeoutMs} ms`, { driver: "qemu" });
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return { socketPath, pid: child.pid ?? -1, exited, stderr: () => stderr, connect, stop, [Symbol.asyncDispose]: stop };
}

/** Paths made by {@linkcode createStreamImages}. */
export interface StreamImages {
  /** 64 MiB raw base: 0x11 at [0, 8 MiB), 0x22 at [32, 40 MiB), holes elsewhere. */
  readonly base: string;
  /** qcow2 overlay over `base` (raw) with its own 0xab at [0, 1 MiB) and 0xcd at [48, 49 MiB). */
  readonly overlay: string;
  /** `overlay` flattened to raw before any stream: what the overlay must read as afterwards. */
  readonly reference: string;
  /** The virtual size of all three. */
  readonly sizeBytes: number;
}

/**
 * Makes a small base/overlay/reference image set with `qemu-img` and `qemu-io`.
 *
 * @param dir Existing directory to put them in.
 * @param prefix File name prefix, so several sets can share a directory.
 * @returns The paths.
 * @throws {Error} From `execFileSync` when a tool fails.
 * @example
 * ```ts
 * import { createStreamImages, findExecutable } from "./qemu_process.ts";
 * import { mkdtempSync, rmSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * if (findExecutable("qemu-img") && findExecutable("qemu-io")) {
 *   const dir = mkdtempSync(join(tmpdir(), "vk-img-"));
 *   try {
 *     if (createStreamImages(dir).sizeBytes !== 64 * 1024 * 1024) throw new Error("unexpected");
 *   } finally {
 *     rmSync(dir, { recursive: true, force: true });
 *   }
 * }
 * ```
 */
export function createStreamImages(dir: string, prefix = ""): StreamImages {
  const base = join(dir, `${prefix}base.raw`);
  const overlay = join(dir, `${prefix}overlay.qcow2`);
  const reference = join(dir, `${prefix}reference.raw`);
  const run = (tool: string, ...args: string[]) => execFileSync(tool, args, { stdio: ["ignore", "pipe", "pipe"] });
  run("qemu-img", "create", "-q", "-f", "raw", base, "64M");
  run("qemu-io", "-f", "raw", "-c", "write -P 0x11 0 8M", "-c", "write -P 0x22 32M 8M", base);
  run("qemu-img", "create", "-q", "-f", "qcow2", "-b", base, "-F", "raw", overlay);
  run("qemu-io", "-f", "qcow2", "-c", "write -P 0xab 0 1M", "-c", "write -P 0xcd 48M 1M", overlay);
  run("qemu-img", "convert", "-f", "qcow2", "-O", "raw", overlay, reference);
  return { base, overlay, reference, sizeBytes: 64 * 1024 * 1024 };
}
