#!/usr/bin/env node
/**
 * The `virtkit` command: `virtkit [-c URI] COMMAND [ARGS] [--json]`, virsh's commands for domains,
 * pools, volumes and jobs (docs/cli.md). Runs on Node (`npx virtkit`) and Deno (`deno run -A cli/main.ts`).
 *
 * @module
 */
import process from "node:process";
import { runCli } from "./run.ts";

const interrupt = new AbortController();
// The first Ctrl-C lets the command abort (or detach from) its job and say so; a second one exits at once.
process.on("SIGINT", () => {
  if (interrupt.signal.aborted) process.exit(130);
  interrupt.abort(new DOMException("Interrupted", "AbortError"));
});

const code = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  signal: interrupt.signal,
});
process.exitCode = code;
// Jobs of the finished command may leave timers behind (a test: connection's clock); do not wait for them.
setTimeout(() => process.exit(code), 0).unref?.();
