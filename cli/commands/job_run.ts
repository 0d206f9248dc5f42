/**
 * What every job-starting command shares: `--bandwidth`/`--bytes`, `--wait`, `--detach-on-interrupt`,
 * and how the job's end becomes the exit code.
 *
 * @module
 */
import type { Connection } from "../../core/connection.ts";
import type { Job } from "../../core/job.ts";
import { type FollowOutcome, followJob } from "../follow.ts";
import type { CommandContext, OptionSpec } from "../spec.ts";
import { parseBandwidthArg } from "../values.ts";

/** Exit code after Ctrl-C (128 + SIGINT), as shells report it. */
export const EXIT_INTERRUPTED = 130;

/** The options of a job-starting command. */
export const JOB_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  bandwidth: { type: "string", value: "N", description: "cap: a bare number is MiB/s (as in virsh); 64M, 64MiB/s, 1G also work; 0 = no cap" },
  bytes: { type: "boolean", description: "a bare --bandwidth number is bytes per second" },
  "detach-on-interrupt": { type: "boolean", description: "on Ctrl-C leave the job running instead of aborting it" },
};

/** `--wait` for commands whose job may run on without the command. */
export const WAIT_OPTION: OptionSpec = { type: "boolean", description: "follow the job to its end with a progress bar; exit 1 if it fails" };

/**
 * The cap the command line asks for, in bytes per second (`undefined`: none given).
 *
 * @param ctx The command's context.
 * @returns Bytes per second.
 * @example
 * ```ts
 * import { jobBandwidth } from "./job_run.ts";
 * const ctx = { options: { bandwidth: "64" } } as unknown as Parameters<typeof jobBandwidth>[0];
 * if (jobBandwidth(ctx) !== 64 * 1024 * 1024) throw new Error("a bare number is MiB/s");
 * ```
 */
export function jobBandwidth(ctx: Pick<CommandContext, "options">): number | undefined {
  const text = ctx.options.bandwidth;
  return typeof text === "string" ? parseBandwidthArg(text, { bytes: ctx.options.bytes === true }) : undefined;
}

/** Options of {@linkcode finishJob}. */
export interface FinishOptions {
  /** Follow the job (else print its id and return). */
  readonly wait: boolean;
  /** Stop following when a two-phase job reaches `ready`. */
  readonly untilReady?: boolean;
  /** The job runs inside this process: without `wait` it ends when the command does, so warn. */
  readonly inProcess?: boolean;
}

/**
 * Reports a started job: its id, or (with `wait`) its progress and outcome; returns the exit code.
 *
 * @param ctx The command's context.
 * @param conn Its connection.
 * @param job The job it started.
 * @param options Whether to follow it.
 * @returns 0 completed (or started, or ready), 1 failed or aborted, 130 interrupted.
 * @example
 * ```ts
 * import { connect } from "../../mod.ts";
 * import { createOutput } from "../output.ts";
 * import { finishJob } from "./job_run.ts";
 * const sink = { write: () => {} };
 * await using conn = await connect("test:///default");
 * const job = await (await conn.domains.get("test")).blockPull("vda");
 * const ctx = { out: createOutput(sink, sink, false), options: {}, signal: new AbortController().signal };
 * const code = await finishJob(ctx, conn, job, { wait: true });
 * if (code !== 0) throw new Error(`exit ${code}`);
 * ```
 */
export async function finishJob(
  ctx: Pick<CommandContext, "out" | "options" | "signal">,
  conn: Connection,
  job: Job,
  options: FinishOptions,
): Promise<number> {
  const { out } = ctx;
  const diesWithProcess = conn.driver === "test" || options.inProcess === true;
  if (!options.wait) {
    out.result(await job.info(), () => [`Started ${job.id} (${job.type})`]);
    if (diesWithProcess) {
      out.warn(`${job.id} runs inside this virtkit process${conn.driver === "test" ? " (test: connection)" : ""}: it ends when the command exits; add --wait to follow it to its end`);
    }
    return 0;
  }
  const outcome: FollowOutcome = await followJob(conn, job, out, {
    signal: ctx.signal,
    detachOnInterrupt: ctx.options["detach-on-interrupt"] === true,
    untilReady: options.untilReady === true,
  });
  const { info } = outcome;
  if (outcome.interrupted === "aborted") {
    out.stderr.write(`interrupted: aborted ${job.id} (${info.state})\n`);
    return EXIT_INTERRUPTED;
  }
  if (outcome.interrupted === "detached") {
    const note = diesWithProcess ? "; it runs inside this process, so it ends now too" : `; abort it with "virtkit job-abort ${job.id}"`;
    out.stderr.write(`interrupted: detached from ${job.id}, left ${info.state}${note}\n`);
    return EXIT_INTERRUPTED;
  }
  if (info.state === "completed" || info.state === "ready") {
    out.line(`${job.id} ${job.type} ${info.state === "ready" ? "is ready (in sync): finish it with blockjob --pivot or --abort" : "completed"}`);
    return 0;
  }
  out.stderr.write(`error: ${job.id} ${job.type} ${info.state}${info.error ? `: ${info.error}` : ""}\n`);
  return 1;
}
