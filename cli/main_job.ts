#!/usr/bin/env node
/**
 * `npm start`: virtkit's main job on real files. A dir pool under a state directory, a raw template
 * holding real data, a thin qcow2 volume over it, a capped pull of the template into it (the cap
 * raised half-way) with a live progress bar, then a check of every byte and a short summary. Online on
 * a running QEMU domain when `qemu-system-x86_64` is installed, offline through the image engine
 * otherwise. `npm start -- --help` lists the options.
 *
 * @module
 */
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { connect } from "../mod.ts";
import { formatBytes, GiB, MiB } from "../core/units.ts";
import { findExecutable } from "../drivers/qemu/qmp/testing/qemu_process.ts";
import { formatDuration } from "./follow.ts";
import { runMainJob } from "./main_job/pull.ts";
import { createOutput } from "./output.ts";
import { didYouMean, UsageError } from "./usage.ts";
import { parseBandwidthArg, parseSizeArg } from "./values.ts";

const OPTIONS = {
  size: { type: "string", default: "1G" },
  bandwidth: { type: "string", default: "64M" },
  "state-dir": { type: "string" },
  keep: { type: "boolean", default: false },
  offline: { type: "boolean", default: false },
  help: { type: "boolean", short: "h", default: false },
} as const;

const HELP = `usage: npm start -- [--size SIZE] [--bandwidth N] [--keep] [--offline] [--state-dir DIR]

Pulls a template image into a thin qcow2 volume on real files, with a bandwidth cap raised half-way,
then checks every byte. Online on a running QEMU domain when qemu-system-x86_64 is installed, else
offline through virtkit's own image engine.

Options:
  --size SIZE        the template's size (default 1G; at least 8M): 64M, 1G, 2GiB
  --bandwidth N      the first cap, doubled half-way (default 64M): a bare number is MiB/s
  --keep             keep the pool's files and print where they are
  --offline          pull offline even when QEMU is installed
  --state-dir DIR    where the pool goes (default $XDG_STATE_HOME/virtkit/main-job-*, else a temporary directory)
  -h, --help         show this help`;

async function main(argv: string[]): Promise<number> {
  const out = createOutput(process.stdout, process.stderr, false);
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: false }));
  } catch (error) {
    const word = /'(-[^' ]+)/.exec(String(error))?.[1] ?? "";
    throw new UsageError(`${error instanceof Error ? error.message.split("\n")[0] : String(error)}${didYouMean(word.replace(/^-+/, ""), Object.keys(OPTIONS), "--")}`);
  }
  if (values.help) {
    out.line(HELP);
    return 0;
  }
  const sizeBytes = parseSizeArg(values.size, "--size", { min: MiB(8) });
  if (sizeBytes % 65536 !== 0) throw new UsageError(`Invalid --size "${values.size}": use a multiple of 64 KiB`);
  const bandwidth = parseBandwidthArg(values.bandwidth);
  if (bandwidth === 0) throw new UsageError("--bandwidth 0 would lift the cap; the main job shows a cap at work");

  const qemu = findExecutable("qemu-system-x86_64");
  const qemuImg = findExecutable("qemu-img");
  const online = !values.offline && qemu !== undefined && qemuImg !== undefined;
  const stateHome = process.env.XDG_STATE_HOME;
  const base = values["state-dir"] ?? (stateHome ? join(stateHome, "virtkit") : tmpdir());
  await mkdir(base, { recursive: true });
  const stateDir = await mkdtemp(join(base, "main-job-"));
  out.line(`state directory: ${stateDir}`);
  if (!online && !values.offline) {
    out.line("qemu-system-x86_64 is not installed, so the pull runs offline; for the online pull on a running domain install QEMU (Debian/Ubuntu: apt-get install qemu-system-x86 qemu-utils)");
  }
  const interrupt = new AbortController();
  process.on("SIGINT", () => interrupt.abort());
  const startedAt = performance.now();
  let keep = values.keep;
  try {
    await using conn = await connect(online ? "qemu:///session" : "test:///empty", online ? { stateDir: join(stateDir, "qemu") } : {});
    const result = await runMainJob({ conn, online, poolPath: join(stateDir, "pool"), sizeBytes, bandwidth, signal: interrupt.signal, ...(qemuImg ? { qemuImg } : {}) }, out);
    const { info } = result;
    if (info.state !== "completed") {
      keep = true;
      process.stderr.write(`error: ${info.id} ${info.state}${info.error ? `: ${info.error}` : ""}${result.interrupted ? " (interrupted)" : ""}; files kept in ${stateDir}\n`);
      return result.interrupted ? 130 : 1;
    }
    const seconds = result.pullMs / 1000;
    const caps = `against a cap of ${formatBytes(bandwidth)}/s raised to ${formatBytes(bandwidth * 2)}/s half-way`;
    out.line("");
    out.line(`pulled ${formatBytes(info.end)} in ${formatDuration(result.pullMs)} (${formatDuration(performance.now() - startedAt)} in all, template writing and checks included)`);
    if (info.copiedBytes !== undefined) {
      out.line(`  bytes copied:  ${formatBytes(info.copiedBytes)}`);
      out.line(`  holes skipped: ${formatBytes(info.end - info.copiedBytes)} (no I/O, nothing against the cap)`);
      out.line(`  achieved rate: ${formatBytes(Math.round(info.copiedBytes / seconds))}/s of data over the pull, ${caps}`);
    } else {
      // QEMU reports progress only. It reads a raw backing file's holes as zeros, counts them against its
      // cap, and stores them as zero clusters: the volume's allocation is the data it really wrote.
      out.line(`  bytes streamed by QEMU: ${formatBytes(info.end)} (holes included: QEMU reads a raw backing file's holes as zeros and counts them against its cap)`);
      out.line(`  data written:  ${formatBytes(result.allocationBytes)} (the holes became zero clusters, not data)`);
      out.line(`  achieved rate: ${formatBytes(Math.round(info.end / seconds))}/s streamed over the pull, ${caps}`);
    }
    out.line(`  verified:      ${result.identical ? "every byte the guest sees equals the template" : "MISMATCH: the volume differs from the template"}; ${result.backingLeft ? "the volume STILL has a backing file" : "the volume no longer has a backing file"}`);
    out.line(`  qemu-img check: ${result.qemuImgCheck ?? "skipped (qemu-img is not installed)"}`);
    return result.identical && !result.backingLeft ? 0 : 1;
  } finally {
    if (keep) out.line(`files kept in ${stateDir}`);
    else await rm(stateDir, { recursive: true, force: true });
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`${error instanceof UsageError ? "npm start" : "error"}: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(error instanceof UsageError ? 2 : 1);
  },
);
