/**
 * Block copy and block commit against the same work done by hand, side by side in one run:
 * 1. mirror of a 1 GiB disk (512 MiB data) on real QEMU through `dom.blockCopy()`, to `ready` and to
 *    completed after `finalize()`, against `qemu-img create` + `blockdev-add` + `blockdev-mirror` +
 *    `job-complete` over a raw QMP socket on an identical QEMU;
 * 2. active commit of a 256 MiB top into its base on real QEMU, against raw QMP `block-commit`;
 * 3. offline commit through the image engine (a shut-off domain on a dir pool) against `qemu-img commit`
 *    of an identical chain, results compared with `qemu-img compare` and checked with `qemu-img check`;
 * 4. an offline copy capped at 64 MiB/s through the copy loop, against bytes / cap.
 *
 * Needs `qemu-system-x86_64`, `qemu-img` and `qemu-io`; prints a note and returns without them.
 *
 * @module
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import process from "node:process";
import { join } from "node:path";
import { createDefaultRegistry } from "../mod.ts";
import type { Connection } from "../core/connection.ts";
import type { Domain } from "../core/domain.ts";
import type { Job } from "../core/job.ts";
import { buildQemuArgs, pickAccelerator, QEMU_BINARY } from "../drivers/qemu/command_line.ts";
import { findExecutable } from "../drivers/qemu/qmp/testing/mod.ts";
import { spawnByHand, stopByHand } from "./_raw_qmp.ts";

const MiB = 1024 * 1024;
const fmt = (ms: number) => `${ms.toFixed(1)} ms`;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

const img = (...args: string[]) => execFileSync("qemu-img", args, { encoding: "utf8" });
const io = (format: string, path: string, commands: string[]) =>
  execFileSync("qemu-io", ["-f", format, ...commands.flatMap((c) => ["-c", c]), path], { stdio: "ignore" });

/** A qcow2 image of `sizeMiB` with data in every other MiB. */
function halfFull(path: string, format: string, sizeMiB: number, pattern = 1): void {
  rmSync(path, { force: true });
  img("create", "-q", "-f", format, path, `${sizeMiB}M`);
  const writes: string[] = [];
  for (let mib = 0; mib < sizeMiB; mib += 2) writes.push(`write -q -P ${((mib + pattern) % 250) + 1} ${mib}M 1M`);
  io(format, path, writes);
}

/**
 * Settles the machine alike before every timed run (machine-facts §6): dirty pages written back, the
 * inputs read once into the page cache, and fresh memory touched so no run pays the balloon's faults.
 */
function settle(...inputs: string[]): void {
  execFileSync("sync");
  for (const input of inputs) execFileSync("cat", [input], { stdio: ["ignore", "ignore", "ignore"] });
  execFileSync("dd", ["if=/dev/zero", "of=/dev/null", "bs=1024M", "count=1"], { stdio: "ignore" });
}

/** Waits for a job's state through the events (listening first). */
function stateOf(conn: Connection, job: Job, state: string): Promise<void> {
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

interface TwoPhase {
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
function twoPhase(t0: number, ready: number, started: number, completed: number, done: number): TwoPhase {
  return {
    readyMs: ready - t0,
    doneMs: done - t0,
    outsideMs: done - t0 - (completed - started),
    beforeMs: started - t0,
    afterMs: done - completed,
  };
}

/** Marks when QEMU's job started and completed, as the connection's `qmp:event`s arrive. */
function qemuJobTimes(conn: Connection): { started: () => number; completed: () => number; off: () => void } {
  let started = 0;
  let completed = 0;
  const off = conn.events.on("qmp:event", (e) => {
    if (e.name === "JOB_STATUS_CHANGE" && started === 0) started = performance.now();
    if (e.name === "BLOCK_JOB_COMPLETED") completed = performance.now();
  });
  return { started: () => started, completed: () => completed, off };
}

/** 1. Mirror through virtkit: blockCopy() to ready, then finalize() to completed. */
async function mirrorVirtkit(conn: Connection, name: string, source: string, dest: string): Promise<TwoPhase> {
  rmSync(dest, { force: true });
  return await timeTwoPhase(conn, name, source, (dom) => dom.blockCopy("vda", { destination: { path: dest }, format: "qcow2" }));
}

/**
 * Runs a two-phase job on a new running domain over `disk`: timed from the start to `ready` and to
 * completed after `finalize()`, with the time spent outside QEMU's own job.
 */
async function timeTwoPhase(conn: Connection, name: string, disk: string, begin: (dom: Domain) => Promise<Job<void>>): Promise<TwoPhase> {
  const dom = await conn.domains.define({ name, vcpus: 1, memoryBytes: 64 * MiB, disks: [{ target: "vda", path: disk, format: "qcow2" }] });
  await dom.start();
  const times = qemuJobTimes(conn);
  const t0 = performance.now();
  const job = await begin(dom);
  await stateOf(conn, job, "ready");
  const ready = performance.now();
  await job.finalize();
  await job.wait();
  const done = performance.now();
  times.off();
  await job.dismiss();
  await dom.destroy();
  await dom.undefine();
  return twoPhase(t0, ready, times.started(), times.completed(), done);
}

/** 1. The same mirror by hand. */
async function mirrorByHand(dir: string, source: string, dest: string, accel: "kvm" | "tcg"): Promise<TwoPhase> {
  rmSync(dest, { force: true });
  const socket = join(dir, "mirror.qmp");
  const layers = [{ path: source, format: "qcow2", virtualBytes: 0, node: "vda-0", fileNode: "vda-0-file" }];
  const args = buildQemuArgs({ name: "hand", vcpus: 1, memoryBytes: 64 * MiB, disks: [{ target: "vda", path: source }] }, [{ target: "vda", layers }], { socket }, accel);
  const { child, qmp } = await spawnByHand(args, socket);
  await qmp.send("cont");
  const t0 = performance.now();
  img("create", "-q", "-f", "qcow2", dest, String(1024 * MiB));
  await qmp.send("blockdev-add", { driver: "file", "node-name": "t-file", filename: dest });
  await qmp.send("blockdev-add", { driver: "qcow2", "node-name": "t", file: "t-file", backing: null });
  let started = 0;
  void qmp.next("JOB_STATUS_CHANGE").then(() => (started = performance.now()));
  const ready = qmp.next("BLOCK_JOB_READY");
  await qmp.send("blockdev-mirror", { "job-id": "m1", device: "vda-0", target: "t", sync: "full" });
  await ready;
  const readyAt = performance.now();
  const done = qmp.next("BLOCK_JOB_COMPLETED");
  await qmp.send("job-complete", { id: "m1" });
  await done;
  const completed = performance.now();
  await stopByHand(child, qmp);
  return twoPhase(t0, readyAt, started, completed, completed);
}

/** A base (1 GiB raw, 512 MiB data) and a qcow2 top over it with 256 MiB of data. */
function commitChain(base: string, top: string, baseFormat = "raw"): void {
  halfFull(base, baseFormat, 1024);
  rmSync(top, { force: true });
  img("create", "-q", "-f", "qcow2", "-b", base, "-F", baseFormat, top);
  io("qcow2", top, ["write -q -P 0x5e 100M 128M", "write -q -P 0x6f 600M 128M"]);
}

/** 2. Active commit through virtkit. */
async function commitVirtkit(conn: Connection, name: string, top: string): Promise<TwoPhase> {
  return await timeTwoPhase(conn, name, top, (dom) => dom.blockCommit("vda"));
}

/** 2. The same commit by hand (the base runs read-only as on virtkit's command line, so it is reopened first). */
async function commitByHand(dir: string, base: string, top: string, accel: "kvm" | "tcg"): Promise<TwoPhase> {
  const socket = join(dir, "commit.qmp");
  const layers = [
    { path: top, format: "qcow2", virtualBytes: 0, node: "vda-0", fileNode: "vda-0-file" },
    { path: base, format: "raw", virtualBytes: 0, node: "vda-1", fileNode: "vda-1-file" },
  ];
  const args = buildQemuArgs({ name: "hand", vcpus: 1, memoryBytes: 64 * MiB, disks: [{ target: "vda", path: top }] }, [{ target: "vda", layers }], { socket }, accel);
  const { child, qmp } = await spawnByHand(args, socket);
  await qmp.send("cont");
  const t0 = performance.now();
  await qmp.send("blockdev-reopen", { options: [
    { driver: "file", "node-name": "vda-1-file", filename: base, "read-only": false },
    { driver: "raw", "node-name": "vda-1", file: "vda-1-file", "read-only": false },
  ] });
  let started = 0;
  void qmp.next("JOB_STATUS_CHANGE").then(() => (started = performance.now()));
  const ready = qmp.next("BLOCK_JOB_READY");
  await qmp.send("block-commit", { "job-id": "k1", device: "vda-0", "base-node": "vda-1" });
  await ready;
  const readyAt = performance.now();
  const done = qmp.next("BLOCK_JOB_COMPLETED");
  await qmp.send("job-complete", { id: "k1" });
  await done;
  const completed = performance.now();
  await stopByHand(child, qmp);
  return twoPhase(t0, readyAt, started, completed, completed);
}

const loadAverage = () => loadavg().map((l) => l.toFixed(2)).join(" ");

/**
 * Prints a two-phase comparison: to ready and to complete (median and best, ratio of medians against the
 * 1.05x target), then the time outside QEMU's job split into before it (the call to the first
 * JOB_STATUS_CHANGE) and after it (BLOCK_JOB_COMPLETED to `wait()` resolving), median and best.
 */
function printTwoPhase(v: TwoPhase[], h: TwoPhase[], note: string): void {
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

/**
 * Runs a command through `sh` and returns its CPU time (user + system) in ms: the shell's `cutime` and
 * `cstime` in /proc (clock ticks, 100 per second here) count the child it waited for.
 */
function childCpuMs(argv: string[]): number {
  const out = execFileSync("sh", ["-c", '"$@" >/dev/null && cat /proc/$$/stat', "sh", ...argv], { encoding: "utf8" });
  const fields = out.slice(out.lastIndexOf(")") + 2).trim().split(" ");
  return (Number(fields[13]) + Number(fields[14])) * 10;
}

const exitOf = (args: string[]) => {
  try {
    execFileSync("qemu-img", args, { stdio: "ignore" });
    return 0;
  } catch (error) {
    return (error as { status: number }).status;
  }
};

/** Runs the four comparisons and prints them. */
export async function run(): Promise<void> {
  const missing = [QEMU_BINARY, "qemu-img", "qemu-io"].filter((tool) => findExecutable(tool) === undefined);
  if (missing.length > 0) {
    console.log(`qemu block jobs bench skipped: ${missing.join(", ")} not installed`);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), "vk-blockjobs-bench-"));
  const registry = createDefaultRegistry();
  const conn = await registry.connect("qemu:///session", { stateDir: join(dir, "state") });
  const accel = await pickAccelerator();
  try {
    // 1. Mirror, alternating, after one unmeasured warm-up of each.
    const source = join(dir, "source.qcow2");
    halfFull(source, "qcow2", 1024);
    const dest = join(dir, "dest.qcow2");
    await mirrorByHand(dir, source, dest, accel);
    await mirrorVirtkit(conn, "warm", source, dest);
    const mv: TwoPhase[] = [];
    const mh: TwoPhase[] = [];
    let copied = false;
    // Which side goes first alternates, so neither always runs in the slot right after the other's.
    for (let i = 0; i < 5; i++) {
      const virtkit = async () => {
        rmSync(dest, { force: true });
        settle(source);
        mv.push(await mirrorVirtkit(conn, `mirror-${i}`, source, dest));
        if (i === 4) copied = exitOf(["compare", "-q", dest, source]) === 0;
      };
      const raw = async () => {
        rmSync(dest, { force: true });
        settle(source);
        mh.push(await mirrorByHand(dir, source, dest, accel));
      };
      if (i % 2 === 0) await virtkit(), await raw();
      else await raw(), await virtkit();
    }
    console.log(`mirror of a 1 GiB qcow2 disk (512 MiB data) to a new qcow2, unlimited, 5 interleaved runs, alternating which goes first (accel ${accel}, load ${loadAverage()}):`);
    printTwoPhase(mv, mh, "raw includes its qemu-img create and blockdev-adds");
    console.log(`    result: qemu-img compare (virtkit's copy) source -> ${copied ? "identical" : "DIFFERENT"}`);

    // 2. Active commit of a 256 MiB top, a fresh identical chain for every run.
    const base = join(dir, "base.raw");
    const top = join(dir, "top.qcow2");
    const cv: TwoPhase[] = [];
    const ch: TwoPhase[] = [];
    for (let i = 0; i < 5; i++) {
      const virtkit = async () => {
        commitChain(base, top);
        settle(base, top);
        cv.push(await commitVirtkit(conn, `commit-${i}`, top));
      };
      const raw = async () => {
        commitChain(base, top);
        settle(base, top);
        ch.push(await commitByHand(dir, base, top, accel));
      };
      if (i % 2 === 0) await virtkit(), await raw();
      else await raw(), await virtkit();
    }
    console.log(`active commit of a 256 MiB qcow2 top into its 1 GiB raw base, unlimited, 5 interleaved runs, alternating which goes first (load ${loadAverage()}):`);
    printTwoPhase(cv, ch, "both include the base's blockdev-reopen");

    // 3. Offline commit through the image engine against qemu-img commit, on identical qcow2 chains.
    const poolDir = join(dir, "pool");
    mkdirSync(poolDir);
    const pool = await conn.pools.create({ name: "bench", type: "dir", path: poolDir });
    const ov: number[] = [];
    const oq: number[] = [];
    // CPU time as well as wall time: it does not depend on what else the shared machine runs.
    const ovCpu: number[] = [];
    const oqCpu: number[] = [];
    const refBase = join(dir, "ref-base.qcow2");
    const refTop = join(dir, "ref-top.qcow2");
    let same = false;
    let clean = false;
    for (let i = 0; i < 5; i++) {
      const vBase = join(poolDir, "base.qcow2");
      const vTop = join(poolDir, "top.qcow2");
      commitChain(vBase, vTop, "qcow2");
      await pool.refresh();
      settle(vBase, vTop);
      const dom = await conn.domains.define({ name: `offline-${i}`, vcpus: 1, memoryBytes: 64 * MiB, disks: [{ target: "vda", volume: { pool: "bench", name: "top.qcow2" }, format: "qcow2" }] });
      const t0 = performance.now();
      const cpu0 = process.cpuUsage();
      const job = await dom.blockCommit("vda");
      await stateOf(conn, job, "ready");
      await job.finalize();
      await job.wait();
      ov.push(performance.now() - t0);
      const cpu = process.cpuUsage(cpu0);
      ovCpu.push((cpu.user + cpu.system) / 1000);
      await job.dismiss();
      await dom.undefine();
      commitChain(refBase, refTop, "qcow2");
      settle(refBase, refTop);
      const t1 = performance.now();
      oqCpu.push(childCpuMs(["qemu-img", "commit", "-q", refTop]));
      oq.push(performance.now() - t1);
      same = exitOf(["compare", "-q", vBase, refBase]) === 0;
      clean = exitOf(["check", "-q", vBase]) === 0;
    }
    console.log("offline commit of a 256 MiB qcow2 top into a 1 GiB qcow2 base (512 MiB data), median of 5:");
    console.log(`  virtkit image engine ${fmt(median(ov))}   qemu-img commit ${fmt(median(oq))}   ratio ${(median(ov) / median(oq)).toFixed(3)}x (target <= 1.0x)`);
    console.log(`    runs virtkit ${ov.map(fmt).join(", ")}; qemu-img ${oq.map(fmt).join(", ")}`);
    console.log(`    CPU (user + system), median: virtkit ${fmt(median(ovCpu))} (the whole process)   qemu-img ${fmt(median(oqCpu))}   ratio ${(median(ovCpu) / median(oqCpu)).toFixed(3)}x`);
    console.log(`    result: qemu-img compare -> ${same ? "identical" : "DIFFERENT"}, qemu-img check -> ${clean ? "clean" : "ERRORS"}`);

    // 4. Offline copy capped at 64 MiB/s: 256 MiB of data, all of it counted.
    const full = join(poolDir, "full.raw");
    rmSync(full, { force: true });
    img("create", "-q", "-f", "raw", full, "256M");
    io("raw", full, ["write -q -P 0x3c 0 256M"]);
    await pool.refresh();
    const cap = 64 * MiB;
    const expectedMs = (256 * MiB / cap) * 1000;
    const capped: number[] = [];
    const toReady: number[] = [];
    for (let i = 0; i < 5; i++) {
      settle(full);
      const dom = await conn.domains.define({ name: `capped-${i}`, vcpus: 1, memoryBytes: 64 * MiB, disks: [{ target: "vda", volume: { pool: "bench", name: "full.raw" }, format: "raw" }] });
      // The copy itself: from the job running to its progress reaching the end (then come the flushes).
      // job:progress is throttled, so the end of the range is found by polling info() every 2 ms.
      let running = 0;
      const off = conn.events.on("job:state", (e) => {
        if (e.job.state === "running" && running === 0) running = performance.now();
      });
      const t0 = performance.now();
      const job = await dom.blockCopy("vda", { destination: { pool: "bench", name: `capped-${i}.raw` }, format: "raw", bandwidth: cap });
      for (let info = await job.info(); info.cur < info.end; info = await job.info()) await new Promise((r) => setTimeout(r, 2));
      capped.push(performance.now() - running);
      await stateOf(conn, job, "ready");
      toReady.push(performance.now() - t0);
      off();
      await job.abort();
      await job.wait().catch(() => {});
      await job.dismiss();
      await dom.undefine();
      await (await pool.volumes.get(`capped-${i}.raw`)).delete();
    }
    const off = (ms: number) => `${((ms / expectedMs - 1) * 100).toFixed(2)}%`;
    console.log(`offline copy of 256 MiB of data capped at 64 MiB/s, median of 5: bytes/cap ${fmt(expectedMs)}`);
    console.log(`  copy (running to cur = end)  ${fmt(median(capped))}   ${off(median(capped))} vs bytes/cap (target within +-1%)   runs ${capped.map(off).join(", ")}`);
    console.log(`  to ready (+ create, flush)   ${fmt(median(toReady))}   ${off(median(toReady))}`);
    await pool.stop();
    await pool.undefine();
  } finally {
    await conn.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
