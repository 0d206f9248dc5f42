/**
 * Block commit and the capped copy against the same work done by hand, side by side in one run (the
 * live mirror has its own suite, `qemu-block-jobs-mirror`, in qemu_mirror.bench.ts):
 * 1. active commit of a 256 MiB top into its base on real QEMU, against raw QMP `block-commit`;
 * 2. offline commit through the image engine (a shut-off domain on a dir pool) against `qemu-img commit`
 *    of an identical chain, results compared with `qemu-img compare` and checked with `qemu-img check`;
 * 3. an offline copy capped at 64 MiB/s through the copy loop, against bytes / cap.
 *
 * Needs `qemu-system-x86_64`, `qemu-img` and `qemu-io`; prints a note and returns without them.
 *
 * @module
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import process from "node:process";
import { join } from "node:path";
import { createDefaultRegistry } from "../mod.ts";
import type { Connection } from "../core/connection.ts";
import { buildQemuArgs, pickAccelerator, QEMU_BINARY } from "../drivers/qemu/command_line.ts";
import { findExecutable } from "../drivers/qemu/qmp/testing/mod.ts";
import {
  fmt,
  halfFull,
  img,
  io,
  loadAverage,
  median,
  MiB,
  printTwoPhase,
  qemuImgExit,
  settle,
  stateOf,
  type TwoPhase,
  timeTwoPhase,
  twoPhase,
} from "./_block_job_runs.ts";
import { spawnByHand, stopByHand } from "./_raw_qmp.ts";

/** A base (1 GiB raw, 512 MiB data) and a qcow2 top over it with 256 MiB of data. */
function commitChain(base: string, top: string, baseFormat = "raw"): void {
  halfFull(base, baseFormat, 1024);
  rmSync(top, { force: true });
  img("create", "-q", "-f", "qcow2", "-b", base, "-F", baseFormat, top);
  io("qcow2", top, ["write -q -P 0x5e 100M 128M", "write -q -P 0x6f 600M 128M"]);
}

/** 1. Active commit through virtkit. */
async function commitVirtkit(conn: Connection, name: string, top: string): Promise<TwoPhase> {
  return await timeTwoPhase(conn, name, top, (dom) => dom.blockCommit("vda"));
}

/** 1. The same commit by hand (the base runs read-only as on virtkit's command line, so it is reopened first). */
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

/**
 * Runs a command through `sh` and returns its CPU time (user + system) in ms: the shell's `cutime` and
 * `cstime` in /proc (clock ticks, 100 per second here) count the child it waited for.
 */
function childCpuMs(argv: string[]): number {
  const out = execFileSync("sh", ["-c", '"$@" >/dev/null && cat /proc/$$/stat', "sh", ...argv], { encoding: "utf8" });
  const fields = out.slice(out.lastIndexOf(")") + 2).trim().split(" ");
  return (Number(fields[13]) + Number(fields[14])) * 10;
}

/** Runs the three comparisons and prints them. */
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
    // 1. Active commit of a 256 MiB top, a fresh identical chain for every run.
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

    // 2. Offline commit through the image engine against qemu-img commit, on identical qcow2 chains.
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
      same = qemuImgExit(["compare", "-q", vBase, refBase]) === 0;
      clean = qemuImgExit(["check", "-q", vBase]) === 0;
    }
    console.log("offline commit of a 256 MiB qcow2 top into a 1 GiB qcow2 base (512 MiB data), median of 5:");
    console.log(`  virtkit image engine ${fmt(median(ov))}   qemu-img commit ${fmt(median(oq))}   ratio ${(median(ov) / median(oq)).toFixed(3)}x (target <= 1.0x)`);
    console.log(`    runs virtkit ${ov.map(fmt).join(", ")}; qemu-img ${oq.map(fmt).join(", ")}`);
    console.log(`    CPU (user + system), median: virtkit ${fmt(median(ovCpu))} (the whole process)   qemu-img ${fmt(median(oqCpu))}   ratio ${(median(ovCpu) / median(oqCpu)).toFixed(3)}x`);
    console.log(`    result: qemu-img compare -> ${same ? "identical" : "DIFFERENT"}, qemu-img check -> ${clean ? "clean" : "ERRORS"}`);

    // 3. Offline copy capped at 64 MiB/s: 256 MiB of data, all of it counted.
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
