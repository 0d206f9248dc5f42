/**
 * What the qemu block jobs share besides their QMP wiring: `query-jobs` entries, the connection parts a
 * job reaches, how a job starts, and what a run record says the disk becomes.
 *
 * @module
 */
import type { Clock } from "../../core/clock.ts";
import type { DiskSource } from "../../core/driver.ts";
import type { Job, JobType } from "../../core/job.ts";
import type { JobManager } from "../../core/jobs/types.ts";
import type { Instance } from "./instance.ts";
import type { RunDisk, RunJob } from "./state_store.ts";

/** The job as the connection tracks it (see `block_job.ts`). */
export interface TrackedBlockJob {
  /** Job id. */
  readonly id: string;
  /** The public job. */
  readonly job: Job<void>;
}

/** One entry of `query-jobs`. */
export interface QmpJobInfo {
  /** Job id. */
  readonly id: string;
  /** Job type (`"stream"`, `"mirror"`, `"commit"`). */
  readonly type: string;
  /** QEMU job status. */
  readonly status: string;
  /** Progress so far. */
  readonly "current-progress": number;
  /** Whole range. */
  readonly "total-progress": number;
  /** Set once the job failed. */
  readonly error?: string;
}

/** What a block job needs from the connection. */
export interface QemuBlockJobEnv {
  /** The connection's jobs. */
  readonly jobs: JobManager;
  /** The connection's clock. */
  readonly clock: Clock;
  /** Records a new job of the domain (before anything is persisted). */
  track(inst: Instance, job: TrackedBlockJob & { readonly record: RunJob; readonly inQemu: boolean }): void;
  /** Saves the domain's run record (with its jobs), after a job starts, changes its cap or ends. */
  persist(inst: Instance): Promise<void>;
  /** Points the domain's definition at the image a copy or active commit pivoted onto. */
  setDiskSource(domain: string, disk: string, source: DiskSource): Promise<void>;
  /** Removes an image the job created (a copy's destination after an abort before `ready`). */
  removeImage(image: NonNullable<RunJob["createdDestination"]>): Promise<void>;
  /** Keeps a finished job's outcome until it is dismissed, so a later connection lists it too. */
  finished(job: TrackedBlockJob): Promise<void>;
  /** Forgets a dismissed job's kept outcome. */
  dismissed(jobId: string): Promise<void>;
}

/** How a job starts: its description (the id is added) and the QMP command that starts it. */
export interface QemuBlockJobStart {
  /** The job, as the run record keeps it. */
  readonly record: Omit<RunJob, "id">;
  /** `block-stream`, `blockdev-mirror` or `block-commit`. */
  readonly command: string;
  /** Its arguments, given the job id (`job-id`, `auto-finalize` and `auto-dismiss` are added). */
  readonly args: Record<string, unknown>;
  /** Checked once, before QEMU is asked. */
  readonly signal?: AbortSignal;
}

/**
 * The job type of a run record (records written before copy and commit existed are pulls).
 *
 * @param record The record.
 * @returns Its type.
 */
export function jobTypeOf(record: RunJob): JobType {
  return record.type ?? "block-pull";
}

/**
 * The disk once the job completed: its new layers, and after a pivot the destination's volume (or none).
 *
 * @param record The job's run record.
 * @param disk The disk before.
 * @param layers Its layers after.
 * @returns The disk after.
 * @example
 * ```ts
 * import { diskAfter } from "./block_job_parts.ts";
 * const layer = { path: "/c.qcow2", format: "qcow2", virtualBytes: 1, node: "n", fileNode: "n-file" };
 * const after = diskAfter({ id: "job-1", disk: "vda", endBytes: 1, bandwidth: 0, sourceAfter: { path: "/c.qcow2", format: "qcow2" } },
 *   { target: "vda", layers: [], volume: { pool: "p", name: "v" } }, [layer]);
 * if (after.volume !== undefined || after.layers[0]!.node !== "n") throw new Error("unexpected");
 * ```
 */
export function diskAfter(record: RunJob, disk: RunDisk, layers: RunDisk["layers"]): RunDisk {
  const source = record.sourceAfter;
  if (!source) return { ...disk, layers: [...layers] };
  const { volume: _volume, ...rest } = disk;
  return "volume" in source ? { ...rest, layers: [...layers], volume: { ...source.volume } } : { ...rest, layers: [...layers] };
}
