/**
 * What the QEMU block job benches share: images made with `qemu-img`/`qemu-io`, the settling of the
 * machine before every timed run (machine-facts §6), and the two-phase run of a job on a new domain
 * (to `ready`, then to completed after `finalize()`) with the time spent outside QEMU's own job.
 *
 * @module
 */
import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import { loadavg } from "node:os";
import type { Connection } from "../core/connection.ts";
import type { Domain } from "../core/domain.ts";
import type { Job } from "../core/job.ts";

export const MiB = 1024 * 1024;
export const fmt = (ms: number) => `${ms.toFixed(1)} ms`;

/** The median (the upper one of an even count). */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

export const img = (...args: string[]) => execFileSync("qemu-img", args, { encoding: "utf8" });
export const io = (format: string, path: string, commands: string[]) =>
  execFileSync("qemu-io", ["-f", format, ...commands.flatMap((c) => ["-c", c]), path], { stdio: "ignore" });

/** A qcow2 image of `sizeMiB` with data in every other MiB. */
export function halfFull(path: string, format: string, sizeMiB: number, pattern = 1): void {
  rmSync(path, { force: true });
  img("create", "-q", "-f", format, path, `${sizeMiB}M`);
  const writes: string[] = [];
  for (let mib = 0; mib < sizeMiB; mib += 2) writes.push(`write -q -P ${((mib + pattern) % 250) + 1} ${mib}M 1M`);
  io(format, path, writes);
}

/**
 * Settles the machine alike before every timed run (machine-facts §6): dirty pages written back, the
 * inputs read once into the page cache, and 1.5 GiB of fresh memory touched so no run pays the
 * balloon's faults (the copy writes 512 MiB into a new file).
 */
export function settle(...inputs: string[]): void {
  execFileSync("sync");
  for (const input of inputs) execFileSync("cat", [input], { stdio: ["ignore", "ignore", "ignore"] });
  execFileSync("dd", ["if=/dev/zero", "of=/dev/null", "bs=1536M", "count=1"], { stdio: "ignore" });
}

/** Waits for a job's state through the events (listening first). */
export function stateOf(conn: Connection, job: Job, state: string): Promise<void> {
  return new Promise((resolve) => {
    const off = conn.events.on("job:state", (e) => {
      if (e.job.id === job.id && e.job.state === state) {
        off();
        resolve();
      }
    });
    void job.info().then((info) => info.state === state && (off(), resolve()));
  });
}

/** The figures of one two-phase run. */
export interface TwoPhase {
  readyMs: number;
  doneMs: number;
  /** Time outside QEMU's job: total minus first JOB_STATUS_CHANGE..BLOCK_JOB_COMPLETED (on arrival). */
  outsideMs: number;
  /** Of that, before QEMU's job: from the call to the first JOB_STATUS_CHANGE. */
  beforeMs: number;
  /** Of that, after QEMU's job: from BLOCK_JOB_COMPLETED to `wait()` resolving (raw: 0, it ends there). */
  afterMs: number;
}

/** The figures of one run, from its marks (all `performance.now()`). */
export function twoPhase(t0: number, ready: number, started: number, completed: number, done: number): TwoPhase {
  return {
    readyMs: ready - t0,
    doneMs: done - t0,
    outsideMs: done - t0 - (completed - started),
    beforeMs: started - t0,
    afterMs: done - completed,
  };
}

/** Marks when QEMU's job started and completed, as the connection's `qmp:event`s arrive. */
export function qemuJobTimes(conn: Connection): { started: () => number; completed: () => number; off: () => void } {
  let started = 0;
  let completed = 0;
  const off = conn.events.on("qmp:event", (e) => {
    if (e.name === "JOB_STATUS_CHANGE" && started === 0) started = performance.now();
    if (e.name === "BLOCK_JOB_COMPLETED") completed = performance.now();
  });
  return { started: () => started, completed: () => completed, off };
}

/**
 * Runs a two-phase job on a new running domain over `disk`: timed from the start to `ready` and to
 * completed after `finalize()`, with the time spent outside QEMU's own job. `marks` (optional) is told
 * when the caller saw `ready` and called `finalize()`, and when `wait()` resolved; `machine` is the
 * domain's machine type (QEMU's default when absent).
 */
export async function timeTwoPhase(
  conn: Connection,
  name: string,
  disk: string,
  begin: (dom: Domain) => Promise<Job<void>>,
  marks?: (what: "t0" | "readySeen" | "done", at: number) => void,
  machine?: string,
): Promise<TwoPhase> {
  const dom = await conn.domains.define({
    name,
    vcpus: 1,
    memoryBytes: 64 * MiB,
    ...(machine ? { machine } : {}),
    disks: [{ target: "vda", path: disk, format: "qcow2" }],
  });
  await dom.start();
  const times = qemuJobTimes(conn);
  const t0 = performance.now();
  marks?.("t0", t0);
  const job = await begin(dom);
  await stateOf(conn, job, "ready");
  const ready = performance.now();
  marks?.("readySeen", ready);
  await job.finalize();
  await job.wait();
  const done = performance.now();
  marks?.("done", done);
  times.off();
  await job.dismiss();
  await dom.destroy();
  await dom.undefine();
  return twoPhase(t0, ready, times.started(), times.completed(), done);
}

export const loadAverage = () => loadavg().map((l) => l.toFixed(2)).join(" ");

/**
 * Prints a two-phase comparison: to ready and to complete (median and best, ratio of medians against the
 * 1.05x target), then the time outside QEMU's job split into before it (the call to the first
 * JOB_STATUS_CHANGE) and after it (BLOCK_JOB_COMPLETED to `wait()` resolving), median and best.
 */
export function printTwoPhase(v: TwoPhase[], h: TwoPhase[], note: string): void {
  const best = (values: number[]) => Math.min(...values);
  const row = (what: string, key: keyof TwoPhase, target: boolean) => {
    const mv = median(v.map((r) => r[key]));
    const mh = median(h.map((r) => r[key]));
    const ratio = target ? `   ratio ${(mv / mh).toFixed(3)}x (target <= 1.05x)` : "";
    console.log(`  ${what.padEnd(26)} virtkit ${fmt(mv)} (best ${fmt(best(v.map((r) => r[key])))})   raw QMP ${fmt(mh)} (best ${fmt(best(h.map((r) => r[key])))})${ratio}`);
  };
  row("to ready", "readyMs", true);
  row("to complete", "doneMs", true);
  console.log(`    runs virtkit ${v.map((r) => fmt(r.doneMs)).join(", ")}; raw ${h.map((r) => fmt(r.doneMs)).join(", ")}`);
  row("outside QEMU's job", "outsideMs", false);
  row("  before (call to 1st JSC)", "beforeMs", false);
  row("  after (COMPLETED to end)", "afterMs", false);
  console.log(`    (${note})`);
}

/** The exit code of a `qemu-img` command (0: clean, identical). */
export function qemuImgExit(args: string[]): number {
  try {
    execFileSync("qemu-img", args, { stdio: "ignore" });
    return 0;
  } catch (error) {
    return (error as { status: number }).status;
  }
}
