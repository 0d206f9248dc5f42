/**
 * Block job commands, with virsh's names and argument order: `blockpull`, `blockcopy`, `blockcommit`
 * and `blockjob` (`--pivot` is `job.finalize()` of a copy or active commit in `ready`).
 *
 * @module
 */
import type { Domain } from "../../core/domain.ts";
import type { Job } from "../../core/job.ts";
import type { Connection } from "../../core/connection.ts";
import type { CommandContext, CommandSpec } from "../spec.ts";
import { UsageError } from "../usage.ts";
import { describeJob } from "../follow.ts";
import { finishJob, JOB_OPTIONS, jobBandwidth, WAIT_OPTION } from "./job_run.ts";

const DOMAIN = { name: "DOMAIN", description: "domain name" } as const;
const DISK = { name: "DISK", description: "disk target (vda)" } as const;

async function running(dom: Domain): Promise<boolean> {
  return (await dom.info()).state !== "shutoff";
}

/** Ends a job that reached `ready` as asked: `pivot` finalizes, `finish` aborts (the copy stays). */
async function settleReady(job: Job, pivot: boolean): Promise<void> {
  if (pivot) {
    await job.finalize();
    await job.wait();
  }
}

/** The block job commands. */
export const BLOCK_COMMANDS: readonly CommandSpec[] = [
  {
    name: "blockpull",
    group: "Block jobs",
    summary: "fill a disk from its backing chain in the background (block stream)",
    args: [DOMAIN, DISK],
    options: { ...JOB_OPTIONS, base: { type: "string", value: "PATH", description: "keep this backing image and what is under it" }, wait: WAIT_OPTION },
    examples: ["blockpull test vda --bandwidth 64 --wait", "blockpull web1 vda --bandwidth 64MiB/s"],
    async run(ctx) {
      const conn = await ctx.connect();
      const dom = await conn.domains.get(ctx.args.DOMAIN!);
      const base = ctx.options.base as string | undefined;
      const job = await dom.blockPull(ctx.args.DISK!, { bandwidth: jobBandwidth(ctx), ...(base ? { base } : {}) });
      return finishJob(ctx, conn, job, { wait: ctx.options.wait === true, inProcess: !(await running(dom)) });
    },
  },
  {
    name: "blockcopy",
    group: "Block jobs",
    summary: "mirror a disk to a new image; ready when in sync, --pivot switches the guest to it",
    args: [DOMAIN, DISK, { name: "DEST", description: "destination: a path, or a volume name with --pool" }],
    options: {
      pool: { type: "string", value: "POOL", description: "DEST is a volume name in this pool" },
      format: { type: "string", value: "FORMAT", description: "raw or qcow2 (default: as the source)" },
      shallow: { type: "boolean", description: "copy only the top image; the copy keeps the same backing chain" },
      "reuse-external": { type: "boolean", description: "DEST exists already: write into it" },
      ...JOB_OPTIONS,
      wait: { type: "boolean", description: "follow the job until it is ready (in sync)" },
      pivot: { type: "boolean", description: "with --wait: once ready, switch the guest to the copy" },
    },
    examples: ["blockcopy web1 vda /images/web1-new.qcow2 --wait --pivot --bandwidth 100"],
    async run(ctx) {
      const conn = await ctx.connect();
      const dom = await conn.domains.get(ctx.args.DOMAIN!);
      checkPivot(ctx);
      const pool = ctx.options.pool as string | undefined;
      const format = ctx.options.format as string | undefined;
      if (format !== undefined && format !== "raw" && format !== "qcow2") throw new UsageError(`blockcopy: --format must be raw or qcow2, not "${format}"`);
      const job = await dom.blockCopy(ctx.args.DISK!, {
        destination: pool ? { pool, name: ctx.args.DEST! } : { path: ctx.args.DEST! },
        ...(format ? { format } : {}),
        shallow: ctx.options.shallow === true,
        reuseExisting: ctx.options["reuse-external"] === true,
        bandwidth: jobBandwidth(ctx),
      });
      return twoPhase(ctx, conn, job);
    },
  },
  {
    name: "blockcommit",
    group: "Block jobs",
    summary: "merge a disk's top images down into a backing image (active commit: ready, then --pivot)",
    args: [DOMAIN, DISK],
    options: {
      top: { type: "string", value: "PATH", description: "the highest image to commit (default: the active one)" },
      base: { type: "string", value: "PATH", description: "the image to commit into (default: the deepest)" },
      ...JOB_OPTIONS,
      wait: { type: "boolean", description: "follow the job until it completes (or is ready, for an active commit)" },
      pivot: { type: "boolean", description: "with --wait: once ready, switch the guest to the base" },
    },
    examples: ["blockcommit web1 vda --wait --pivot"],
    async run(ctx) {
      const conn = await ctx.connect();
      const dom = await conn.domains.get(ctx.args.DOMAIN!);
      checkPivot(ctx);
      const top = ctx.options.top as string | undefined;
      const base = ctx.options.base as string | undefined;
      const job = await dom.blockCommit(ctx.args.DISK!, {
        ...(top ? { top } : {}),
        ...(base ? { base } : {}),
        bandwidth: jobBandwidth(ctx),
      });
      return twoPhase(ctx, conn, job);
    },
  },
  {
    name: "blockjob",
    group: "Block jobs",
    summary: "show or steer the job on a disk: --info (default), --abort, --pivot, --pause, --resume, --bandwidth",
    args: [DOMAIN, DISK],
    options: {
      info: { type: "boolean", description: "show the job's progress (the default)" },
      abort: { type: "boolean", description: "stop the job (a copy in sync is kept, the guest stays on its disk)" },
      pivot: { type: "boolean", description: "finish a ready copy or commit: switch the guest over" },
      pause: { type: "boolean", description: "pause the job" },
      resume: { type: "boolean", description: "resume a paused job" },
      bandwidth: JOB_OPTIONS.bandwidth!,
      bytes: JOB_OPTIONS.bytes!,
    },
    examples: ["blockjob web1 vda --info", "blockjob web1 vda --bandwidth 200", "blockjob web1 vda --pivot"],
    async run(ctx) {
      const { args, options, out } = ctx;
      const verbs = (["abort", "pivot", "pause", "resume"] as const).filter((verb) => options[verb] === true);
      if (verbs.length > 1) throw new UsageError(`blockjob: --${verbs[0]} and --${verbs[1]} cannot be combined`);
      const bandwidth = jobBandwidth(ctx);
      const dom = await (await ctx.connect()).domains.get(args.DOMAIN!);
      const job = await dom.blockJob(args.DISK!);
      if (!job) {
        if (verbs.length > 0 || bandwidth !== undefined) throw new UsageError(`No active block job on disk ${args.DISK} of domain ${dom.name}`);
        out.result(null, () => [`No current block job for ${args.DISK}`]);
        return;
      }
      if (bandwidth !== undefined) await job.setSpeed(bandwidth);
      const verb = verbs[0];
      if (verb === "abort") await job.abort();
      else if (verb === "pause") await job.pause();
      else if (verb === "resume") await job.resume();
      else if (verb === "pivot") await settleReady(job, true);
      const info = await job.info();
      out.result(info, () => [describeJob(info)]);
    },
  },
];

function checkPivot(ctx: CommandContext): void {
  if (ctx.options.pivot === true && ctx.options.wait !== true) throw new UsageError("--pivot needs --wait (or run blockjob --pivot once the job is ready)");
}

async function twoPhase(ctx: CommandContext, conn: Connection, job: Job): Promise<number> {
  const wait = ctx.options.wait === true;
  const code = await finishJob(ctx, conn, job, { wait, untilReady: true });
  if (code !== 0 || !wait || ctx.options.pivot !== true) return code;
  if ((await job.info()).state === "ready") await settleReady(job, true);
  ctx.out.line(`${job.id} pivoted`);
  return 0;
}
