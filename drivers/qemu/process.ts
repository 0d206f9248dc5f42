/**
 * QEMU processes: launching one detached (so it outlives the library's process, as libvirt's guests
 * outlive libvirtd), reaching its QMP socket, and watching it end.
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import process from "node:process";
import type { Clock } from "../../core/clock.ts";
import { ConnectError, VirtError } from "../../core/errors.ts";
import { QmpClient } from "./qmp/client.ts";
import { connectUnixSocket } from "./qmp/transport.ts";
import { missingProgram } from "./disk_chain.ts";

/** A launched QEMU. */
export interface Launched {
  /** Process id. */
  readonly pid: number;
  /** The child (for its exit status). */
  readonly child: ChildProcess;
  /** Settles with the exit code or signal name once the process has ended. */
  readonly exited: Promise<number | string>;
}

/**
 * Spawns QEMU detached, with stdout and stderr going to `logPath`.
 *
 * @param binary The emulator.
 * @param args Its arguments.
 * @param logPath Where its output goes.
 * @returns The process, once it has been spawned.
 * @throws {VirtError} When the binary is not installed (naming the package).
 * @example A missing emulator names the package to install
 * ```ts
 * import { launchQemu } from "./process.ts";
 * const error = await launchQemu("/nonexistent/qemu-system-x86_64", [], "/dev/null").catch((e) => e);
 * if (!String(error.message).includes("apt-get install qemu-system-x86")) throw new Error("unexpected");
 * ```
 */
export function launchQemu(binary: string, args: readonly string[], logPath: string): Promise<Launched> {
  const log = openSync(logPath, "w");
  return new Promise((resolve, reject) => {
    let child: ChildProcess;
    try {
      child = spawn(binary, args, { detached: true, stdio: ["ignore", log, log] });
    } catch (error) {
      closeSync(log);
      return reject(error);
    }
    const exited = new Promise<number | string>((done) => child.once("exit", (code, signal) => done(signal ?? code ?? -1)));
    child.once("error", (error: Error & { code?: string }) => {
      closeSync(log);
      reject(error.code === "ENOENT" ? missingProgram(binary, error) : error);
    });
    child.once("spawn", () => {
      closeSync(log);
      child.unref();
      resolve({ pid: child.pid!, child, exited });
    });
  });
}

/**
 * Whether a process exists (signal 0).
 *
 * @param pid Process id.
 * @returns Whether it is alive.
 * @example
 * ```ts
 * import { processAlive } from "./process.ts";
 * if (!processAlive(process.pid)) throw new Error("unexpected");
 * ```
 */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: string }).code === "EPERM";
  }
}

/**
 * Polls until a process is gone.
 *
 * @param pid Process id.
 * @param clock Clock for the polls.
 * @param timeoutMs Give up after this long.
 * @returns Whether it ended in time.
 * @example
 * ```ts
 * import { waitForExit } from "./process.ts";
 * import { createRealClock } from "virtkit";
 * if (await waitForExit(process.pid, createRealClock(), 20)) throw new Error("this process is alive");
 * ```
 */
export async function waitForExit(pid: number, clock: Clock, timeoutMs: number): Promise<boolean> {
  const deadline = clock.now() + timeoutMs;
  while (processAlive(pid)) {
    if (clock.now() >= deadline) return false;
    await clock.sleep(10);
  }
  return true;
}

/**
 * Connects to a QMP socket, retrying while it is missing or refuses (QEMU creates the socket file a
 * moment before it listens), until the deadline or until `alive()` says the process is gone.
 *
 * @param socket Socket path.
 * @param options Deadline, liveness probe, clock and signal.
 * @returns A negotiated client.
 * @throws {ConnectError} When no connection succeeds in time.
 * @example
 * ```ts
 * import { connectQmp } from "./process.ts";
 * import { createRealClock } from "virtkit";
 * const error = await connectQmp("/nonexistent.qmp", { timeoutMs: 30, clock: createRealClock(), describe: "demo" }).catch((e) => e);
 * if (error.code !== "connect-failed") throw new Error("unexpected");
 * ```
 */
export async function connectQmp(
  socket: string,
  options: { timeoutMs: number; clock: Clock; alive?: () => boolean; signal?: AbortSignal; describe: string },
): Promise<QmpClient> {
  const { clock, signal } = options;
  const deadline = clock.now() + options.timeoutMs;
  let last: unknown;
  for (;;) {
    signal?.throwIfAborted();
    try {
      const transport = await connectUnixSocket(socket, { timeoutMs: Math.max(1, deadline - clock.now()), ...(signal ? { signal } : {}) });
      return await QmpClient.connect(transport, { clock, timeoutMs: Math.max(1, deadline - clock.now()), ...(signal ? { signal } : {}) });
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      last = error;
    }
    if (options.alive && !options.alive()) {
      throw new VirtError("connect-failed", `${options.describe}: QEMU exited before its QMP socket answered`, { driver: "qemu", cause: last });
    }
    if (clock.now() >= deadline) {
      throw new ConnectError(`${options.describe}: QMP socket "${socket}" did not answer within ${options.timeoutMs} ms`, {
        driver: "qemu",
        cause: last,
      });
    }
    await clock.sleep(5);
  }
}
