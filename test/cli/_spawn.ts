/**
 * Runs the `virtkit` command as a user would: a child process with real output and exit code. On Node
 * it runs the sources through tsx (`node --import tsx`), on Deno through `deno run -A`, so each runtime
 * tests itself.
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import process from "node:process";

export const ROOT = new URL("../..", import.meta.url).pathname;
const isDeno = "Deno" in globalThis;

/** The argv that starts a TypeScript entry point of the repository on this runtime. */
export function tsEntry(file: string): string[] {
  return isDeno
    ? [join(ROOT, "node_modules", ".bin", "deno"), "run", "-A", "--no-check", "--config", join(ROOT, "deno.json"), join(ROOT, file)]
    : [process.execPath, "--import", "tsx", join(ROOT, file)];
}

/** What a finished command left. */
export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A running command whose output can be polled. */
export interface Running {
  readonly pid: number;
  readonly output: { stdout: string; stderr: string };
  readonly done: Promise<Ran>;
}

/** Starts `argv` (a whole command line) in the repository. */
export function start(argv: readonly string[], env: Record<string, string | undefined> = {}): Running {
  const merged: Record<string, string> = {};
  for (const [key, value] of Object.entries({ ...process.env, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1", VIRTKIT_DEFAULT_URI: undefined, ...env })) {
    if (value !== undefined) merged[key] = value;
  }
  const child = spawn(argv[0]!, argv.slice(1), { cwd: ROOT, env: merged, stdio: ["ignore", "pipe", "pipe"] });
  const output = { stdout: "", stderr: "" };
  child.stdout!.on("data", (chunk: Uint8Array) => (output.stdout += new TextDecoder().decode(chunk)));
  child.stderr!.on("data", (chunk: Uint8Array) => (output.stderr += new TextDecoder().decode(chunk)));
  const done = new Promise<Ran>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, ...output }));
  });
  return { pid: child.pid!, output, done };
}

/** Runs `virtkit ARGS...` to its end. */
export function virtkit(args: readonly string[], env: Record<string, string | undefined> = {}): Promise<Ran> {
  return start([...tsEntry("cli/main.ts"), ...args], env).done;
}

/** Polls `check` until it is true, failing after `timeoutMs`. */
export async function until(check: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
