/**
 * The live block copy (mirror) of a 1 GiB qcow2 disk with 512 MiB of data on real QEMU, through
 * `dom.blockCopy()` to `ready` and to completed after `finalize()`, against the same work over a raw QMP
 * socket on an identical QEMU: `qemu-img create` of the destination, two `blockdev-add`s,
 * `blockdev-mirror`, `BLOCK_JOB_READY`, `job-complete`, `BLOCK_JOB_COMPLETED`. Both sides make their
 * destination inside the timed span (virtkit with its image engine, the raw side with `qemu-img create`,
 * as one would by hand), so creating it counts against each.
 *
 * Pairs run interleaved, alternating which side goes first, each settled alike; the figures are the
 * per-pair ratios (median and best) and the medians of each side, then a table of the phases outside
 * QEMU's job (from a trace of the QMP commands each side sent and the events it received).
 * `BENCH_MIRROR_PAIRS` sets the number of pairs (default 15); `BENCH_MIRROR_MACHINE=none` runs both
 * QEMUs without a guest (no firmware booting under the first QMP commands and beside the copy; the
 * default is QEMU's default machine with a virtio disk); `BENCH_MIRROR_DIR=/dev/shm` puts the images
 * on tmpfs, out of reach of the other disk traffic of a shared machine (QEMU's copy is then far less
 * noisy, and shorter, so the time outside it weighs more); `npm run bench -- mirror` runs it alone.
 *
 * Needs `qemu-system-x86_64`, `qemu-img` and `qemu-io`; prints a note and returns without them.
 *
 * @module
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import process from "node:process";
import { join } from "node:path";
import { createDefaultRegistry } from "../mod.ts";
import type { Connection } from "../core/connection.ts";
import { buildQemuArgs, pickAccelerator, QEMU_BINARY } from "../drivers/qemu/command_line.ts";
import { QmpClient } from "../drivers/qemu/qmp/client.ts";
import { findExecutable } from "../drivers/qemu/qmp/testing/mod.ts";
import {
  fmt,
  halfFull,
  img,
  loadAverage,
  median,
  MiB,
  printTwoPhase,
  qemuImgExit,
  settle,
  timeTwoPhase,
  type TwoPhase,
  twoPhase,
} from "./_block_job_runs.ts";
import { spawnByHand, stopByHand } from "./_raw_qmp.ts";

const PAIRS = Number(process.env.BENCH_MIRROR_PAIRS ?? 15);
const MACHINE = process.env.BENCH_MIRROR_MACHINE;

/** The moments of one run, in order; a side that has no such step (raw: no `job-finalize`) repeats the one before. */
const MARKS = ["t0", "addSent", "mirrorSent", "created", "readyEvent", "readySeen", "completeSent", "pending", "finalizeSent", "completed", "done"] as const;
type Mark = typeof MARKS[number];
type Marks = Partial<Record<Mark, number>>;

/** The phases between the marks; `qemu` ones are QEMU's own job, the rest is the caller's (or its library's) time. */
const PHASES: ReadonlyArray<{ name: string; from: Mark; to: Mark; qemu: boolean }> = [
  { name: "create (call to 1st blockdev-add)", from: "t0", to: "addSent", qemu: false },
  { name: "adds (to blockdev-mirror sent)", from: "addSent", to: "mirrorSent", qemu: false },
  { name: "mirror start (to 1st JSC)", from: "mirrorSent", to: "created", qemu: false },
  { name: "[QEMU: copy to BLOCK_JOB_READY]", from: "created", to: "readyEvent", qemu: true },
  { name: "ready event (to caller sees ready)", from: "readyEvent", to: "readySeen", qemu: false },
  { name: "complete (to job-complete sent)", from: "readySeen", to: "completeSent", qemu: false },
  { name: "[QEMU: pivot to JSC pending]", from: "completeSent", to: "pending", qemu: true },
  { name: "finalize (to job-finalize sent)", from: "pending", to: "finalizeSent", qemu: false },
  { name: "[QEMU: finalize to COMPLETED]", from: "finalizeSent", to: "completed", qemu: true },
  { name: "pivot (COMPLETED to wait() resolved)", from: "completed", to: "done", qemu: false },
];

/** Fills a side's missing marks with the one before (that step takes no time there). */
function complete(marks: Marks): Record<Mark, number> {
  const full = {} as Record<Mark, number>;
  let last = marks.t0!;
  for (const mark of MARKS) last = full[mark] = marks[mark] ?? last;
  return full;
}

interface Run {
  readonly times: TwoPhase;
  readonly marks: Record<Mark, number>;
  /** Every QMP command sent and event received from t0 on, with its time after t0 (virtkit only). */
  readonly trace: string[];
}

/**
 * Traces the QMP commands virtkit sends (`QmpClient.execute`, which writes the command before it
 * first awaits) and the events it receives (`qmp:event`), for the phase table.
 */
function traceVirtkit(conn: Connection): { marks: Marks; trace: string[]; mark(what: Mark, at: number): void; stop(): void } {
  const marks: Marks = {};
  const trace: string[] = [];
  const at = () => (performance.now() - (marks.t0 ?? 0)).toFixed(1);
  const first = (what: Mark) => (marks[what] ??= performance.now());
  const original = QmpClient.prototype.execute;
  QmpClient.prototype.execute = function (this: QmpClient, command: string, args?: object, options?: object) {
    if (marks.t0 !== undefined) {
      if (command === "blockdev-add") first("addSent");
      if (command === "blockdev-mirror") first("mirrorSent");
      if (command === "job-complete") first("completeSent");
      if (command === "job-finalize") first("finalizeSent");
      if (command !== "query-jobs") trace.push(`${at()} -> ${command}`);
    }
    const reply = original.call(this, command, args, options) as Promise<never>;
    if (marks.t0 !== undefined && command !== "query-jobs") reply.then(() => trace.push(`${at()} <- ${command}`), () => trace.push(`${at()} <- ${command} (error)`));
    return reply;
  } as typeof original;
  const off = conn.events.on("qmp:event", (e) => {
    if (marks.t0 === undefined) return;
    const status = e.name === "JOB_STATUS_CHANGE" ? String((e.data as { status?: unknown }).status) : "";
    trace.push(`${at()} !! ${e.name}${status ? ` ${status}` : ""}`);
    if (e.name === "JOB_STATUS_CHANGE") first("created");
    if (status === "pending") first("pending");
    if (e.name === "BLOCK_JOB_READY") first("readyEvent");
    if (e.name === "BLOCK_JOB_COMPLETED") first("completed");
  });
  // The library's own events, to place its steps (the definition write, the job's states) between QEMU's.
  const offBus = conn.events.on("*", (e) => {
    if (marks.t0 === undefined || e.type === "qmp:event" || e.type === "job:progress") return;
    const detail = "job" in e ? ` ${(e as { job: { state: string } }).job.state}` : "reason" in e ? ` ${String((e as { reason: unknown }).reason)}` : "";
    trace.push(`${at()} ** ${e.type}${detail}`);
  });
  return {
    marks,
    trace,
    mark: (what, time) => {
      marks[what] = time;
      if (what !== "t0") trace.push(`${at()} == ${what}`);
    },
    stop() {
      QmpClient.prototype.execute = original;
      off();
      offBus();
    },
  };
}

/** The mirror through virtkit: blockCopy() to ready, then finalize() to completed. */
async function mirrorVirtkit(conn: Connection, name: string, source: string, dest: string): Promise<Run> {
  rmSync(dest, { force: true });
  const tracer = traceVirtkit(conn);
  try {
    const times = await timeTwoPhase(conn, name, source, (dom) => dom.blockCopy("vda", { destination: { path: dest }, format: "qcow2" }), tracer.mark, MACHINE);
    return { times, marks: complete(tracer.marks), trace: tracer.trace };
  } finally {
    tracer.stop();
  }
}

/** The same mirror by hand: `qemu-img create`, the two adds, the mirror, `job-complete`. */
async function mirrorByHand(dir: string, source: string, dest: string, accel: "kvm" | "tcg"): Promise<Run> {
  rmSync(dest, { force: true });
  const socket = join(dir, "mirror.qmp");
  const layers = [{ path: source, format: "qcow2", virtualBytes: 0, node: "vda-0", fileNode: "vda-0-file" }];
  const config = { name: "hand", vcpus: 1, memoryBytes: 64 * MiB, ...(MACHINE ? { machine: MACHINE } : {}), disks: [{ target: "vda", path: source }] };
  const args = buildQemuArgs(config, [{ target: "vda", layers }], { socket }, accel);
  const { child, qmp } = await spawnByHand(args, socket);
  await qmp.send("cont");
  const marks: Marks = {};
  marks.t0 = performance.now();
  img("create", "-q", "-f", "qcow2", dest, String(1024 * MiB));
  marks.addSent = performance.now();
  await qmp.send("blockdev-add", { driver: "file", "node-name": "t-file", filename: dest });
  await qmp.send("blockdev-add", { driver: "qcow2", "node-name": "t", file: "t-file", backing: null });
  void qmp.next("JOB_STATUS_CHANGE").then(() => (marks.created = performance.now()));
  void qmp.next("JOB_STATUS_CHANGE", (d) => d.status === "pending").then(() => (marks.pending = performance.now()));
  const ready = qmp.next("BLOCK_JOB_READY");
  marks.mirrorSent = performance.now();
  await qmp.send("blockdev-mirror", { "job-id": "m1", device: "vda-0", target: "t", sync: "full" });
  await ready;
  marks.readyEvent = marks.readySeen = performance.now();
  const done = qmp.next("BLOCK_JOB_COMPLETED");
  marks.completeSent = performance.now();
  await qmp.send("job-complete", { id: "m1" });
  await done;
  marks.completed = marks.done = performance.now();
  await stopByHand(child, qmp);
  const full = complete(marks);
  return { times: twoPhase(full.t0, full.readySeen, full.created, full.completed, full.done), marks: full, trace: [] };
}

/** Median and best of a list, formatted. */
const mb = (values: number[], f: (n: number) => string) => `${f(median(values))} (best ${f(Math.min(...values))})`;
const ratio = (n: number) => `${n.toFixed(3)}x`;

const phaseMs = (r: Run, p: typeof PHASES[number]) => r.marks[p.to] - r.marks[p.from];
/** A run's time outside QEMU's job: the sum of the phases that are not QEMU's. */
const outsideMs = (r: Run) => PHASES.filter((p) => !p.qemu).reduce((sum, p) => sum + phaseMs(r, p), 0);

function printPhases(v: Run[], h: Run[]): void {
  console.log("  phases, median (best), virtkit vs raw QMP:");
  for (const p of PHASES) {
    console.log(`    ${p.name.padEnd(38)} ${mb(v.map((r) => phaseMs(r, p)), fmt).padEnd(28)} ${mb(h.map((r) => phaseMs(r, p)), fmt)}`);
  }
  console.log(`    ${"outside QEMU's job (sum of the above)".padEnd(38)} ${mb(v.map(outsideMs), fmt).padEnd(28)} ${mb(h.map(outsideMs), fmt)}`);
}

/** Runs the interleaved pairs and prints them. */
export async function run(): Promise<void> {
  const missing = [QEMU_BINARY, "qemu-img", "qemu-io"].filter((tool) => findExecutable(tool) === undefined);
  if (missing.length > 0) {
    console.log(`qemu mirror bench skipped: ${missing.join(", ")} not installed`);
    return;
  }
  const dir = mkdtempSync(join(process.env.BENCH_MIRROR_DIR ?? tmpdir(), "vk-mirror-bench-"));
  const registry = createDefaultRegistry();
  const conn = await registry.connect("qemu:///session", { stateDir: join(dir, "state") });
  const accel = await pickAccelerator();
  try {
    const source = join(dir, "source.qcow2");
    halfFull(source, "qcow2", 1024);
    const dest = join(dir, "dest.qcow2");
    // One unmeasured warm-up of each.
    await mirrorByHand(dir, source, dest, accel);
    await mirrorVirtkit(conn, "warm", source, dest);
    const v: Run[] = [];
    const h: Run[] = [];
    let copied = false;
    let checked = false;
    let shape = "";
    const loadBefore = loadAverage();
    for (let i = 0; i < PAIRS; i++) {
      const virtkit = async () => {
        rmSync(dest, { force: true });
        settle(source);
        v.push(await mirrorVirtkit(conn, `mirror-${i}`, source, dest));
        if (i === PAIRS - 1) {
          copied = qemuImgExit(["compare", "-q", dest, source]) === 0;
          checked = qemuImgExit(["check", "-q", dest]) === 0;
          const info = JSON.parse(img("info", "--output=json", dest)) as { format: string; "virtual-size": number };
          shape = `${info.format}, ${info["virtual-size"] / MiB} MiB`;
        }
      };
      const raw = async () => {
        rmSync(dest, { force: true });
        settle(source);
        h.push(await mirrorByHand(dir, source, dest, accel));
      };
      // Which side goes first alternates, so neither always runs in the slot right after the other's.
      if (i % 2 === 0) await virtkit(), await raw();
      else await raw(), await virtkit();
    }
    console.log(`mirror of a 1 GiB qcow2 disk (512 MiB data) to a new qcow2, unlimited, ${PAIRS} interleaved pairs, alternating which goes first (in ${dir}, machine ${MACHINE ?? "default"}, accel ${accel}, load before ${loadBefore}, after ${loadAverage()}):`);
    const pairs = (key: "readyMs" | "doneMs") => v.map((r, i) => r.times[key] / h[i]!.times[key]);
    console.log(`  per-pair ratio virtkit/raw, median (best): to ready ${mb(pairs("readyMs"), ratio)}   to complete ${mb(pairs("doneMs"), ratio)}   (target <= 1.05x)`);
    console.log(`    to complete, per pair: ${pairs("doneMs").map((r) => r.toFixed(2)).join(" ")}`);
    // QEMU's own job (the copy, bound by a shared disk) varies far more from run to run than the rest;
    // this sets each pair's difference outside QEMU's job against the raw run, QEMU's part taken as equal.
    const outsidePairs = v.map((r, i) => (h[i]!.times.doneMs + outsideMs(r) - outsideMs(h[i]!)) / h[i]!.times.doneMs);
    console.log(`    to complete with QEMU's job taken as raw's in each pair (only the time outside it differs): ${mb(outsidePairs, ratio)}`);
    printTwoPhase(v.map((r) => r.times), h.map((r) => r.times), "both create their destination inside the timed span: virtkit with its image engine, raw with qemu-img create");
    printPhases(v, h);
    console.log(`    result: virtkit's copy: qemu-img compare with the source -> ${copied ? "identical" : "DIFFERENT"}, check -> ${checked ? "clean" : "ERRORS"}, info -> ${shape}`);
    if (process.env.BENCH_MIRROR_TRACE === "1") console.log(`  QMP trace of virtkit's last run (ms after the call):\n    ${v[v.length - 1]!.trace.join("\n    ")}`);
  } finally {
    await conn.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
