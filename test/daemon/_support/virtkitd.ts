/**
 * Runs the real `virtkitd` (cli/virtkitd.ts) in a child process for tests, on a Unix socket in a fresh
 * temporary directory, and drives it with Debian's `virsh` and `/usr/bin/python3 -c 'import libvirt'`.
 * The daemon is stopped by its PID (SIGTERM, then SIGKILL after a deadline) in `stop()`, which every
 * suite calls from `afterAll`/`finally`. Peers missing: the suites skip locally and fail under CI=true.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { afterAll, beforeAll } from "vitest";
import { findExecutable } from "../../../drivers/qemu/qmp/testing/mod.ts";

const ROOT = new URL("../../../", import.meta.url).pathname;

/** Peers the daemon suites drive. */
export const missingPeers = ["virsh", "openssl"].filter((tool) => findExecutable(tool) === undefined);
/** Skip locally when a peer is missing; under CI=true the suites run and fail. */
export const skipDaemon = missingPeers.length > 0 && process.env.CI !== "true";

/** A running daemon. */
export interface VirtkitdProcess {
  /** Scratch directory (removed by `stop()`). */
  readonly dir: string;
  /** Its Unix socket. */
  readonly socket: string;
  /** The child's PID. */
  readonly pid: number;
  /** The readiness line's addresses. */
  readonly addresses: string[];
  /** Everything it wrote on stderr so far (connect/disconnect log). */
  stderr(): string;
  /** The URI for `virsh -c`: `DRIVER+unix:///PATH?socket=...` for a driver URI such as `test:///default`. */
  uri(driverUri?: string): string;
  /** Sends SIGTERM and waits for the exit (SIGKILL after `timeoutMs`); removes the scratch directory. */
  stop(timeoutMs?: number): Promise<{ code: number | null; signal: string | null }>;
}

/** The command that runs a TypeScript entry point on this runtime (tsx on Node, deno itself on Deno). */
function runner(entry: string): [string, string[]] {
  const deno = (globalThis as { Deno?: { execPath(): string } }).Deno;
  if (deno) return [deno.execPath(), ["run", "-A", "--no-check", entry]];
  return [join(ROOT, "node_modules/.bin/tsx"), [entry]];
}

/**
 * Starts virtkitd and waits for its readiness line.
 *
 * @param extraArgs More options (`--allow`, `--listen tcp:...`, `--state-dir`).
 * @param options `listenUnix: false` to omit the default Unix listener.
 */
export async function startVirtkitd(extraArgs: string[] = [], options: { listenUnix?: boolean; dir?: string; readyTimeoutMs?: number } = {}): Promise<VirtkitdProcess> {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), "vk-daemon-"));
  const socket = join(dir, "virtkitd.sock");
  const args = [...(options.listenUnix === false ? [] : ["--listen", `unix:${socket}`]), ...extraArgs];
  const [command, prefix] = runner(join(ROOT, "cli/virtkitd.ts"));
  const child: ChildProcess = spawn(command, [...prefix, ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d) => (stdout += d));
  child.stderr!.on("data", (d) => (stderr += d));
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal }))
  );
  // "exit" can come before the last lines the daemon wrote are read from its pipes ("stopped"); a stop
  // waits for both pipes to end too, with a deadline in case an orphaned grandchild still holds them.
  const pipesEnded = Promise.all([child.stdout!, child.stderr!].map((pipe) => new Promise((resolve) => pipe.once("close", resolve))));
  const deadline = Date.now() + (options.readyTimeoutMs ?? 30_000);
  const kill = () => {
    try {
      child.kill("SIGKILL");
    } catch {
      // gone
    }
  };
  // Woken by the daemon's output, its exit, or the deadline; never by a polling timer.
  while (!/ready on (.*)\n/.test(stdout)) {
    let deadlineTimer: ReturnType<typeof setTimeout> | undefined;
    const state = await Promise.race([
      exited,
      new Promise<undefined>((resolve) => child.stdout!.once("data", () => resolve(undefined))),
      new Promise<"late">((resolve) => (deadlineTimer = setTimeout(() => resolve("late"), Math.max(0, deadline - Date.now())))),
    ]);
    clearTimeout(deadlineTimer);
    if (state === "late") {
      kill();
      throw new Error(`virtkitd was not ready within the deadline: ${stderr}`);
    }
    if (state) throw new Error(`virtkitd exited (${state.code ?? state.signal}) before it was ready: ${stderr}`);
  }
  const addresses = /ready on (.*)\n/.exec(stdout)![1]!.split(" ");
  let stopped: Promise<{ code: number | null; signal: string | null }> | undefined;
  return {
    dir,
    socket,
    pid: child.pid!,
    addresses,
    stderr: () => stderr,
    uri(driverUri = "test:///default") {
      const [scheme, rest] = driverUri.split("://") as [string, string];
      return `${scheme}+unix://${rest}${rest.includes("?") ? "&" : "?"}socket=${socket}`;
    },
    stop(timeoutMs = 15_000) {
      stopped ??= (async () => {
        child.kill("SIGTERM");
        const timer = setTimeout(kill, timeoutMs);
        const result = await exited;
        clearTimeout(timer);
        let pipeTimer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([pipesEnded, new Promise((resolve) => (pipeTimer = setTimeout(resolve, 2000)))]);
        clearTimeout(pipeTimer);
        if (!options.dir) rmSync(dir, { recursive: true, force: true });
        return result;
      })();
      return stopped;
    },
  };
}

/** What a command printed. */
/**
 * Starts one virtkitd (default options) for the enclosing `describe` and stops it by PID after it, also
 * when a test failed: what every suite of this folder that needs a plain daemon would write again.
 *
 * @param started Receives the daemon once it is ready (assign the suite's variables there).
 */
export function useVirtkitd(started: (daemon: VirtkitdProcess) => void): void {
  let daemon: VirtkitdProcess | undefined;
  beforeAll(async () => {
    daemon = await startVirtkitd();
    started(daemon);
  });
  afterAll(async () => {
    await daemon?.stop();
  });
}

export interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command with a deadline (never throws for a non-zero exit). */
export function run(command: string, args: readonly string[], timeoutMs = 60_000, input?: string): Promise<CommandResult> {
  return new Promise((resolve) => {
    const child = execFile(command, [...args], { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof (error as { code?: unknown }).code === "number" ? (error as { code: number }).code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** Runs `virsh -c URI ARGS...` (add `-r` in `args` for read-only). */
export function virsh(uri: string, args: readonly string[], timeoutMs = 60_000): Promise<CommandResult> {
  return run("virsh", ["-c", uri, ...args], timeoutMs);
}

/** Runs a Python 3 snippet with Debian's libvirt module; `URI` is bound to the given URI. */
export function python(uri: string, code: string, timeoutMs = 60_000): Promise<CommandResult> {
  return run("/usr/bin/python3", ["-c", `import libvirt, sys\nURI = ${JSON.stringify(uri)}\n${code}`], timeoutMs);
}
