/**
 * A job that began elsewhere (a peer's, or one a driver kept across connections) as the {@linkcode JobSpec}
 * that registers it with this connection's job manager.
 *
 * @module
 */
import { type JobInfo, TERMINAL_JOB_STATES } from "../job.ts";
import type { JobController, JobSpec } from "./types.ts";

/** What {@linkcode jobSpecFromInfo} adds to the info. */
export interface JobSpecFromInfoOptions {
  /** Driver name, recorded in the job's errors. */
  readonly driver?: string;
  /** What `wait()` resolves to, for a completed job (a clone's new volume). */
  readonly result?: unknown;
}

/**
 * The spec that registers a job known from its {@linkcode JobInfo}: same id, type, target, progress,
 * cap and creation time. A finished job (completed, failed, aborted) is registered in its state with
 * its outcome (error text, times, `result`). An unfinished one starts in `created`: its owner then
 * moves it along the state machine's edges to where the peer has it, so listeners see the same
 * `job:created`, `job:state` ... sequence as for any job. Locks are the caller's to add.
 *
 * @param info The job as its owner reports it.
 * @param controller What the verbs do.
 * @param options The driver's name, and a completed job's result.
 * @returns The spec, for `jobs.create()`.
 * @example
 * ```ts
 * import { jobSpecFromInfo } from "./job_spec.ts";
 * const controller = { setSpeed: async () => {}, abort: async () => {} };
 * const base = { type: "block-pull", target: { domain: "web1", disk: "vda" }, cur: 5, end: 9, bandwidth: 0, bytesPerSecond: 0, createdAt: 10 } as const;
 * const failed = jobSpecFromInfo({ ...base, id: "job-4", state: "failed", error: "QEMU was killed", finishedAt: 20 }, controller, { driver: "qemu" });
 * if (failed.state !== "failed" || failed.finished?.error !== "QEMU was killed" || failed.finished.finishedAt !== 20 || failed.driver !== "qemu") throw new Error("unexpected");
 * const running = jobSpecFromInfo({ ...base, id: "job-5", state: "running" }, controller);
 * if (running.state !== "created" || running.finished !== undefined || running.cur !== 5 || running.endBytes !== 9) throw new Error("unexpected");
 * ```
 */
export function jobSpecFromInfo(info: JobInfo, controller: JobController, options: JobSpecFromInfoOptions = {}): JobSpec {
  const terminal = TERMINAL_JOB_STATES.includes(info.state);
  return {
    id: info.id,
    type: info.type,
    target: info.target,
    endBytes: info.end,
    cur: info.cur,
    bandwidth: info.bandwidth,
    state: terminal ? info.state : "created",
    controller,
    createdAt: info.createdAt,
    ...(options.driver === undefined ? {} : { driver: options.driver }),
    ...(terminal
      ? {
        finished: {
          createdAt: info.createdAt,
          finishedAt: info.finishedAt ?? info.createdAt,
          ...(info.error === undefined ? {} : { error: info.error }),
          ...(options.result === undefined ? {} : { result: options.result }),
        },
      }
      : {}),
  };
}
