/**
 * The `qemu` driver against QEMU driven by hand, in the same run:
 * 1. an unlimited block pull of a 1 GiB overlay through virtkit (`dom.blockPull()` to `job.wait()`)
 *    against the same `block-stream` sent over a raw QMP socket (to `BLOCK_JOB_COMPLETED`);
 * 2. a pull capped at 64 MiB/s, through virtkit and by hand, each against the expectation (bytes not
 *    yet in the top image / cap: QEMU skips what the top holds and does not count it);
 * 3. `dom.start()` to a running domain with QMP ready, against spawning the same QEMU command line by
 *    hand and finishing `qmp_capabilities` on a raw socket.
 *
 * Needs `qemu-system-x86_64`, `qemu-img` and `qemu-io`; prints a note and returns without them.
 *
 * @module
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createDefaultRegistry } from "../mod.ts";
import type { Connection } from "../core/connection.ts";
import { buildQemuArgs, pickAccelerator, QEMU_BINARY } from "../drivers/qemu/command_line.ts";
import { findExecutable } from "../drivers/qemu/qmp/testing/mod.ts";
import { spawnByHand, stopByHand } from "./_raw_qmp.ts";

const MiB = 1024 * 1024;
const TOP_MIB = 80;

function makeBase(path: string, sizeMiB: number): void {
  execFileSync("qemu-img", ["create", "-q", "-f", "raw", path, `${sizeMiB}M`]);
  const writes: string[] = [];
  for (let mib = 0; mib < sizeMiB; mib += 2) writes.push("-c", `write -q -P ${(mib % 250) + 1} ${mib}M 1M`);
  execFileSync("qemu-io", ["-f", "raw", ...writes, path]);
}

function makeOverlay(path: string, base: string, sizeMiB: number): void {
  rmSync(path, { force: true });
  execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", "-b", base, "-F", "raw", path]);
  const top = Math.min(TOP_MIB, sizeMiB / 4);
  execFileSync("qemu-io", ["-f", "qcow2", "-c", `write -q -P 0xab 0 ${top / 2}M`, "-c", `write -q -P 0xcd ${sizeMiB / 2}M ${top / 2}M`, path]);
}

function topMiB(sizeMiB: number): number {
  return Math.min(TOP_MIB, sizeMiB / 4);
}

/** Total time of a pull, and the part QEMU's job took (first JOB_STATUS_CHANGE to BLOCK_JOB_COMPLETED, on arrival). */
interface PullTime {
  readonly totalMs: number;
  readonly jobMs: number;
}

/** Pull through virtkit: from blockPull() to wait() resolving. */
async function pullVirtkit(conn: Connection, name: string, overlay: string, bandwidth: number): Promise<PullTime> {
  const dom = await conn.domains.define({ name, vcpus: 1, memoryBytes: 64 * MiB, machine: "none", disks: [{ target: "vda", path: overlay, format: "qcow2" }] });
  await dom.start();
  let created = 0;
  let completed = 0;
  const off = conn.events.on("qmp:event", (e) => {
    if (e.name === "JOB_STATUS_CHANGE" && created === 0) created = performance.now();
    if (e.name === "BLOCK_JOB_COMPLETED") completed = performance.now();
  });
  const t0 = performance.now();
  const job = await dom.blockPull("vda", { bandwidth });
  await job.wait();
  const totalMs = performance.now() - t0;
  off();
  await job.dismiss();
  await dom.destroy();
  await dom.undefine();
  return { totalMs, jobMs: completed - created };
}

/** The same stream by hand: from sending block-stream to BLOCK_JOB_COMPLETED. */
async function pullByHand(dir: string, overlay: string, base: string, bandwidth: number, accel: "kvm" | "tcg"): Promise<PullTime> {
  const socket = join(dir, "hand.qmp");
  const layers = [
    { path: overlay, format: "qcow2", virtualBytes: 0, node: "vda-0", fileNode: "vda-0-file" },
    { path: base, format: "raw", virtualBytes: 0, node: "vda-1", fileNode: "vda-1-file" },
  ];
  const args = buildQemuArgs({ name: "hand", vcpus: 1, memoryBytes: 64 * MiB, machine: "none", disks: [{ target: "vda", path: overlay }] }, [{ target: "vda", layers }], { socket }, accel);
  const { child, qmp } = await spawnByHand(args, socket);
  await qmp.send("cont");
  const done = qmp.next("BLOCK_JOB_COMPLETED");
  let created = 0;
  void qmp.next("JOB_STATUS_CHANGE").then(() => (created = performance.now()));
  const t0 = performance.now();
  await qmp.send("block-stream", { "job-id": "s1", device: "vda-0", ...(bandwidth ? { speed: bandwidth } : {}) });
  await done;
  const totalMs = performance.now() - t0;
  await stopByHand(child, qmp);
  return { totalMs, jobMs: totalMs - (created - t0) };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

const fmt = (ms: number) => `${ms.toFixed(1)} ms`;

/** Runs the three comparisons and prints them. */
export async function run(): Promise<void> {
  const missing = [QEMU_BINARY, "qemu-img", "qemu-io"].filter((tool) => findExecutable(tool) === undefined);
  if (missing.length > 0) {
    console.log(`qemu pull bench skipped: ${missing.join(", ")} not installed`);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), "vk-qemu-bench-"));
  const registry = createDefaultRegistry();
  const conn = await registry.connect("qemu:///session", { stateDir: join(dir, "state") });
  const accel = await pickAccelerator();
  try {
    // 1. Unlimited pull of a 1 GiB overlay, alternating virtkit and by hand.
    const base = join(dir, "base.raw");
    const overlay = join(dir, "overlay.qcow2");
    makeBase(base, 1024);
    const virtkit: PullTime[] = [];
    const byHand: PullTime[] = [];
    // One unmeasured pull first, so neither side pays for a cold page cache.
    makeOverlay(overlay, base, 1024);
    await pullByHand(dir, overlay, base, 0, accel);
    for (let i = 0; i < 5; i++) {
      makeOverlay(overlay, base, 1024);
      virtkit.push(await pullVirtkit(conn, `bench-${i}`, overlay, 0));
      makeOverlay(overlay, base, 1024);
      byHand.push(await pullByHand(dir, overlay, base, 0, accel));
    }
    const v = median(virtkit.map((r) => r.totalMs));
    const h = median(byHand.map((r) => r.totalMs));
    const overhead = (rs: PullTime[]) => median(rs.map((r) => r.totalMs - r.jobMs));
    console.log(`block pull, 1 GiB overlay (${TOP_MIB} MiB in the top), unlimited, median of 5 after a warm-up (accel ${accel}):`);
    console.log(`  virtkit dom.blockPull()..wait()      ${fmt(v)}   runs ${virtkit.map((r) => fmt(r.totalMs)).join(", ")}`);
    console.log(`  raw QMP block-stream..COMPLETED      ${fmt(h)}   runs ${byHand.map((r) => fmt(r.totalMs)).join(", ")}`);
    console.log(`  ratio virtkit / raw                  ${(v / h).toFixed(3)}x (target <= 1.05x; QEMU's own run time varies run to run)`);
    console.log(`  time outside QEMU's job (total - first JOB_STATUS_CHANGE..BLOCK_JOB_COMPLETED), median:`);
    console.log(`    virtkit ${fmt(overhead(virtkit))} (incl. job-finalize, job-dismiss, run record)   raw QMP ${fmt(overhead(byHand))}`);

    // 2. Capped at 64 MiB/s on a 256 MiB overlay.
    const capBase = join(dir, "cap-base.raw");
    const capOverlay = join(dir, "cap-overlay.qcow2");
    makeBase(capBase, 256);
    const cap = 64 * MiB;
    const expectedMs = ((256 - topMiB(256)) * MiB / cap) * 1000;
    const capVs: number[] = [];
    const capHs: number[] = [];
    for (let i = 0; i < 3; i++) {
      makeOverlay(capOverlay, capBase, 256);
      capVs.push((await pullVirtkit(conn, `bench-cap-${i}`, capOverlay, cap)).totalMs);
      makeOverlay(capOverlay, capBase, 256);
      capHs.push((await pullByHand(dir, capOverlay, capBase, cap, accel)).totalMs);
    }
    const capV = median(capVs);
    const capH = median(capHs);
    const off = (ms: number) => `${((ms / expectedMs - 1) * 100).toFixed(1)}%`;
    console.log(`capped pull at 64 MiB/s, 256 MiB overlay (${topMiB(256)} MiB in the top, skipped), median of 3: expected ${fmt(expectedMs)}`);
    console.log(`  virtkit   ${fmt(capV)}   ${off(capV)} vs expected   runs ${capVs.map(off).join(", ")}`);
    console.log(`  raw QMP   ${fmt(capH)}   ${off(capH)} vs expected   runs ${capHs.map(off).join(", ")}`);
    console.log(`  ratio virtkit / raw ${(capV / capH).toFixed(3)}x`);

    // 3. Start to QMP ready.
    const starts: number[] = [];
    const hands: number[] = [];
    const dom = await conn.domains.define({ name: "bench-start", vcpus: 1, memoryBytes: 64 * MiB, machine: "none", disks: [] });
    for (let i = 0; i < 7; i++) {
      let t0 = performance.now();
      await dom.start();
      starts.push(performance.now() - t0);
      await dom.destroy();
      const socket = join(dir, "start.qmp");
      const args = buildQemuArgs({ name: "bench-start", vcpus: 1, memoryBytes: 64 * MiB, machine: "none", disks: [] }, [], { socket }, accel);
      t0 = performance.now();
      const { child, qmp } = await spawnByHand(args, socket);
      await qmp.send("cont");
      hands.push(performance.now() - t0);
      await stopByHand(child, qmp);
    }
    await dom.undefine();
    const s = median(starts);
    const sh = median(hands);
    console.log("domain start to QMP ready and running, median of 7:");
    console.log(`  virtkit dom.start()                         ${fmt(s)}`);
    console.log(`  spawn same command line + qmp_capabilities  ${fmt(sh)}`);
    console.log(`  ratio ${(s / sh).toFixed(2)}x`);
  } finally {
    await conn.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
