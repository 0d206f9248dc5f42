#!/usr/bin/env node
/**
 * The `virtkitd` command: a virtkit host that libvirt clients (`virsh`, `python3-libvirt`) and virtkit's
 * remote driver drive over libvirt's RPC protocol. `virtkitd --help` shows the options. It prints one
 * line on stdout once every listener accepts calls (`virtkitd: ready on unix:/run/x.sock`), logs one line
 * per client connect and disconnect on stderr, and stops cleanly on SIGTERM or SIGINT: replies in flight
 * are finished, clients disconnected, connections closed; QEMU processes keep running, as with libvirtd.
 *
 * @module
 */
import process from "node:process";
import { setFlagsFromString } from "node:v8";
import { connect } from "../mod.ts";
import { startDaemon } from "../daemon/daemon.ts";
import { DAEMON_USAGE, parseDaemonArgs } from "../daemon/options.ts";
import { remoteProgram, SERVED_REMOTE_GROUPS } from "../daemon/remote/program.ts";
import { createSessionFactory } from "../daemon/session.ts";
import { VIRTKIT_SERVED_PROGRAM } from "../daemon/virtkit_program.ts";

// V8's young-generation collections (scavenges, every ~50 ms under a load of many clients) run on
// helper threads by default, and the main thread waits for the slowest. On a busy machine a helper
// may not get a core for tens of milliseconds, and every client waits with it: the daemon bench measured
// scavenge pauses of up to 100 ms and 340-450 ms of them per 12 s round with the helpers, under 40 ms
// and ~160 ms without, at no cost in CPU per call (a few MiB of survivors copy fast on one thread).
// Node only: Deno takes V8 flags on its command line (`--v8-flags=--no-parallel-scavenge`), and V8
// reads this one at each collection, so setting it after start-up takes effect.
if (!("Deno" in globalThis)) setFlagsFromString("--no-parallel-scavenge");

async function main(argv: readonly string[]): Promise<number> {
  const options = parseDaemonArgs(argv);
  if (options === "help") {
    console.log(DAEMON_USAGE);
    return 0;
  }
  // One write of a finished line: console.error formats and probes the terminal's colours each time,
  // which cost ~0.2 ms per line, two lines (connect, disconnect) per `virsh` run.
  const log = (line: string) => void process.stderr.write(`virtkitd: ${line}\n`);
  const daemon = await startDaemon(options, {
    open: connect,
    log,
    createSession: createSessionFactory({
      programs: [remoteProgram(...SERVED_REMOTE_GROUPS), VIRTKIT_SERVED_PROGRAM],
      maxBacklogBytes: options.maxClientBacklogBytes,
    }),
  });
  console.log(`virtkitd: ready on ${daemon.addresses.join(" ")}`);
  // `on`, not `once`: the handlers stay installed until exit, so a second signal during the stop does
  // not kill the daemon by the default action before its replies in flight are out.
  const stopped = new Promise<string>((resolve) => {
    process.on("SIGTERM", () => resolve("SIGTERM"));
    process.on("SIGINT", () => resolve("SIGINT"));
  });
  const signal = await stopped;
  log(`${signal}: stopping`);
  await daemon.stop();
  log("stopped");
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`virtkitd: error: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
