/**
 * Finding a running QEMU again after the library's process (or connection) restarted: the run record
 * names its pid and QMP socket; the process must still exist and still be that QEMU; its block jobs
 * come back from `query-jobs` under their old ids.
 *
 * @module
 */
import { readFile } from "node:fs/promises";
import type { DriverContext } from "../../core/driver.ts";
import { type QemuBlockJobEnv, type QmpJobInfo, QemuBlockJob } from "./block_job.ts";
import { Instance } from "./instance.ts";
import { connectQmp, processAlive } from "./process.ts";
import type { RunRecord } from "./state_store.ts";

/** QEMU's job types of virtkit's block jobs: pull, copy, commit. */
const BLOCK_JOB_TYPES = new Set(["stream", "mirror", "commit"]);

/** What {@linkcode reattach} needs. */
export interface ReattachOptions {
  /** Domain name. */
  readonly name: string;
  /** Its run record. */
  readonly run: RunRecord;
  /** The connection's context. */
  readonly ctx: DriverContext;
  /** Block job wiring. */
  readonly env: QemuBlockJobEnv;
}

/** Whether `pid` is still the QEMU that serves `socket` (a pid may have been reused). */
async function isOurQemu(pid: number, socket: string): Promise<boolean> {
  if (!processAlive(pid)) return false;
  const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => undefined);
  return cmdline === undefined || cmdline.includes(socket);
}

/**
 * Reconnects to a domain's QEMU and re-attaches its block jobs.
 *
 * @param options Name, run record, context and job wiring.
 * @returns The instance, or `undefined` when the process is gone (or is no longer that QEMU, or its
 *   QMP socket does not answer: QEMU serves one QMP client at a time, so a connection that is still
 *   open elsewhere keeps it).
 * @example A process that is gone is not re-attached
 * ```ts
 * import { reattach } from "./reconnect.ts";
 * const run = { pid: 2 ** 22 + 1, socket: "/nonexistent.qmp", disks: [], jobs: [] };
 * const found = await reattach({ name: "gone", run, ctx: {} as never, env: {} as never });
 * if (found !== undefined) throw new Error("unexpected");
 * ```
 */
export async function reattach(options: ReattachOptions): Promise<Instance | undefined> {
  const { name, run, ctx } = options;
  if (!(await isOurQemu(run.pid, run.socket))) return undefined;
  let qmp;
  try {
    qmp = await connectQmp(run.socket, { timeoutMs: 3_000, clock: ctx.clock, alive: () => processAlive(run.pid), describe: `Cannot reconnect to domain "${name}"` });
  } catch {
    return undefined;
  }
  const status = await qmp.execute<{ running: boolean }>("query-status");
  const inst = new Instance({
    name,
    pid: run.pid,
    socket: run.socket,
    qmp,
    disks: run.disks.map((d) => ({ ...d, layers: [...d.layers] })),
    bus: ctx.bus,
    clock: ctx.clock,
    state: status.running ? "running" : "paused",
  });
  const jobs = await qmp.execute<QmpJobInfo[]>("query-jobs");
  for (const record of run.jobs) {
    const info = jobs.find((j) => j.id === record.id);
    if (info && BLOCK_JOB_TYPES.has(info.type)) await QemuBlockJob.attach(options.env, inst, record, info);
  }
  return inst;
}
