/**
 * The main job itself: a dir pool under a state directory, a raw template with real data, a thin qcow2
 * volume over it, and a capped pull of the template into it with the cap raised half-way, then a check
 * of every byte. Online on a running QEMU domain when QEMU is installed, else offline through the
 * image engine.
 *
 * @module
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import type { Connection } from "../../core/connection.ts";
import type { Domain } from "../../core/domain.ts";
import type { Job, JobInfo } from "../../core/job.ts";
import type { Volume } from "../../core/volume.ts";
import { formatBytes, MiB } from "../../core/units.ts";
import { followJob } from "../follow.ts";
import type { Output } from "../output.ts";
import { firstDifference, writeTemplate } from "./template.ts";

/** What the main job is asked to do. */
export interface MainJobPlan {
  /** The connection: `qemu:///session?stateDir=…` online, `test:///empty` offline. */
  readonly conn: Connection;
  /** Online on a running QEMU domain, or offline through the image engine. */
  readonly online: boolean;
  /** The directory the pool lives in. */
  readonly poolPath: string;
  /** The template's size. */
  readonly sizeBytes: number;
  /** The first cap, doubled half-way. */
  readonly bandwidth: number;
  /** qemu-img to referee the result with, when installed. */
  readonly qemuImg?: string;
  /** Aborted on Ctrl-C. */
  readonly signal: AbortSignal;
}

/** What the main job measured. */
export interface MainJobResult {
  /** The job's final snapshot. */
  readonly info: JobInfo;
  /** Wall time of the pull. */
  readonly pullMs: number;
  /** Bytes the template holds as data (what must be copied). */
  readonly dataBytes: number;
  /** Every guest-visible byte of the pulled volume equals the template's. */
  readonly identical: boolean;
  /** The pulled volume still names a backing file. */
  readonly backingLeft: boolean;
  /** The pulled volume's allocation (what was written as data). */
  readonly allocationBytes: number;
  /** `qemu-img check` output, when qemu-img is installed. */
  readonly qemuImgCheck?: string;
  /** The pull was interrupted (Ctrl-C). */
  readonly interrupted: boolean;
}

const run = promisify(execFile);

/**
 * Runs the main job and reports progress through `out`.
 *
 * @param plan Connection, sizes and cap.
 * @param out Where progress and notes go.
 * @returns What was measured.
 */
export async function runMainJob(plan: MainJobPlan, out: Output): Promise<MainJobResult> {
  const { conn, sizeBytes, bandwidth } = plan;
  const pool = await conn.pools.create({ name: "main-job", type: "dir", path: plan.poolPath });
  const template = await pool.volumes.create({ name: "template.img", capacityBytes: sizeBytes, format: "raw" });
  const layout = await writeTemplate(template.path, sizeBytes);
  await pool.refresh();
  out.line(`template ${template.path}: ${formatBytes(sizeBytes)} raw, ${formatBytes(layout.dataBytes)} of real data, ${formatBytes(layout.holeBytes)} of holes`);
  const disk = await pool.volumes.create({
    name: "disk.qcow2",
    capacityBytes: sizeBytes,
    format: "qcow2",
    backing: { path: template.path, format: "raw" },
  });
  out.line(`thin volume ${disk.path} over it: ${formatBytes((await disk.info()).allocationBytes)} allocated`);

  let dom: Domain | undefined;
  let job: Job<void>;
  if (plan.online) {
    // Machine "none": QEMU holds the disk as a -blockdev node with no guest OS spinning beside the pull.
    const disks = [{ target: "vda", volume: { pool: pool.name, name: disk.name } }];
    dom = await conn.domains.define({ name: "main-job", vcpus: 1, memoryBytes: MiB(128), machine: "none", disks });
    await dom.start();
    out.line(`domain ${dom.name} is ${(await dom.info()).state} in QEMU on the thin disk (machine none: no guest OS); pulling online (QEMU's block-stream, QEMU enforces the cap)`);
    job = await dom.blockPull("vda", { bandwidth });
  } else {
    out.line("pulling offline through virtkit's image engine (no QEMU process)");
    job = await disk.pull({ bandwidth });
  }
  out.line(`${job.id} started, capped at ${formatBytes(bandwidth)}/s; the cap doubles half-way`);
  const startedAt = performance.now();
  let raised = false;
  const outcome = await followJob(conn, job, out, {
    signal: plan.signal,
    label: "pull",
    onProgress(info) {
      if (raised || info.cur < info.end / 2) return;
      raised = true;
      job.setSpeed(bandwidth * 2).catch(() => {}); // the job may just have ended
    },
  });
  const pullMs = performance.now() - startedAt;
  if (dom) {
    await dom.destroy().catch(() => {});
    await dom.undefine().catch(() => {});
  }
  if (outcome.info.state !== "completed") {
    return { info: outcome.info, pullMs, dataBytes: layout.dataBytes, identical: false, backingLeft: true, allocationBytes: 0, interrupted: outcome.interrupted !== undefined };
  }
  const pulled: Volume = await pool.volumes.get(disk.name);
  const pulledInfo = await pulled.info();
  const backingLeft = pulledInfo.backing !== undefined;
  const identical = (await firstDifference(pulled, template.path)) === undefined;
  const qemuImgCheck = plan.qemuImg ? await check(plan.qemuImg, pulled.path) : undefined;
  return { info: outcome.info, pullMs, dataBytes: layout.dataBytes, identical, backingLeft, allocationBytes: pulledInfo.allocationBytes, interrupted: false, ...(qemuImgCheck ? { qemuImgCheck } : {}) };
}

async function check(qemuImg: string, path: string): Promise<string> {
  try {
    const { stdout } = await run(qemuImg, ["check", path]);
    const lines = stdout.trim().split("\n");
    return lines.find((line) => /errors/i.test(line)) ?? lines[0] ?? "ok";
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string };
    throw new Error(`qemu-img check ${path} failed: ${(e.stdout ?? "") + (e.stderr ?? "") || e.message}`);
  }
}
