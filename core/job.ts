/**
 * The public job contract. Every long-running operation (block pull, clone, allocate, wipe, upload,
 * download, offline pull) is a {@linkcode Job} listed in the connection's one job list.
 *
 * @module
 */
import type { SignalOptions } from "./options.ts";

/**
 * Job states. `created -> running <-> paused -> (ready ->) completed | failed | aborted`; `ready` is for
 * two-phase jobs (copy, mirror) that wait there for `finalize()`.
 */
export type JobState = "created" | "running" | "paused" | "ready" | "completed" | "failed" | "aborted";

/** The terminal states: a job in one of these never changes again. */
export const TERMINAL_JOB_STATES: readonly JobState[] = Object.freeze(["completed", "failed", "aborted"]);

/** The unfinished states: a job in one of these still holds what it works on (its locks). */
export const UNFINISHED_JOB_STATES: readonly JobState[] = Object.freeze(["created", "running", "paused", "ready"]);

/** Built-in job types; drivers may add their own strings. */
export type JobType =
  | "block-pull"
  | "block-copy"
  | "block-commit"
  | "volume-clone"
  | "volume-allocate"
  | "volume-pull"
  | "volume-wipe"
  | "volume-upload"
  | "volume-download"
  | (string & {});

/** What a job works on. */
export interface JobTarget {
  /** Domain name, for block jobs. */
  readonly domain?: string;
  /** Disk target (`"vda"`), for block jobs. */
  readonly disk?: string;
  /** Pool name, for volume jobs (and block jobs on pool volumes). */
  readonly pool?: string;
  /** Volume name. */
  readonly volume?: string;
}

/** A snapshot of a job. Plain data: safe to `structuredClone`, log or send over the wire. */
export interface JobInfo {
  /** Unique within the connection (`"job-7"`). */
  readonly id: string;
  /** What kind of job. */
  readonly type: JobType;
  /** Current state. */
  readonly state: JobState;
  /** What it works on. */
  readonly target: JobTarget;
  /** Bytes of the range done so far (skipped holes count at once). */
  readonly cur: number;
  /** Bytes of the whole range. */
  readonly end: number;
  /**
   * Bytes really transferred so far: read from the source (or zeros really written), the part of `cur`
   * that cost I/O and counted against the cap. Skipped holes advance `cur` but not this, so a rate over
   * `copiedBytes` is the one a cap holds. Absent when the driver cannot tell (QEMU reports `cur` only).
   */
  readonly copiedBytes?: number;
  /** The cap in bytes per second; 0 is unlimited. */
  readonly bandwidth: number;
  /** Measured recent throughput in bytes per second. */
  readonly bytesPerSecond: number;
  /** Estimated time left, when there is a rate to estimate from. */
  readonly etaMs?: number;
  /** The error text, once `failed`. */
  readonly error?: string;
  /** Clock time the job was created. */
  readonly createdAt: number;
  /** Clock time it reached a terminal state. */
  readonly finishedAt?: number;
}

/**
 * A running (or finished) long operation.
 *
 * @typeParam T What `wait()` resolves to on success (`void`, or the new `Volume` for a clone).
 */
export interface Job<T = unknown> {
  /** Unique within the connection. */
  readonly id: string;
  /** What kind of job. */
  readonly type: JobType;
  /** What it works on. */
  readonly target: JobTarget;
  /** A snapshot of its state and progress. */
  info(options?: SignalOptions): Promise<JobInfo>;
  /**
   * Changes the cap at once; 0 lifts it.
   *
   * @throws {RangeError} For a negative, fractional or absurd value.
   * @throws {StateError} When the job has finished.
   */
  setSpeed(bytesPerSecond: number, options?: SignalOptions): Promise<void>;
  /** Pauses a running job; `StateError` elsewhere. */
  pause(options?: SignalOptions): Promise<void>;
  /** Resumes a paused job; `StateError` elsewhere. */
  resume(options?: SignalOptions): Promise<void>;
  /** Stops the job; it ends `aborted` and leaves its target consistent. `StateError` once finished. */
  abort(options?: SignalOptions): Promise<void>;
  /** Completes a two-phase job waiting in `ready`; `StateError` elsewhere. */
  finalize(options?: SignalOptions): Promise<void>;
  /** Removes a finished job from the list; `StateError` while it runs, `NotFoundError` twice. */
  dismiss(options?: SignalOptions): Promise<void>;
  /**
   * Waits for the end.
   *
   * @returns The result on `completed`.
   * @throws {JobError} On `failed` or `aborted`, with the final `info`.
   */
  wait(options?: SignalOptions): Promise<T>;
}

/** A volume upload: write the bytes to `writable`; closing it completes the job. */
export interface UploadJob extends Job<void> {
  /** Where to write the bytes, in order from the start offset. */
  readonly writable: WritableStream<Uint8Array>;
}

/** A volume download: read the bytes from `readable` (a byte stream; a BYOB reader works). */
export interface DownloadJob extends Job<void> {
  /** The volume's guest-visible bytes over the requested range. */
  readonly readable: ReadableStream<Uint8Array>;
}

/** Filter for `conn.jobs.list()`. */
export interface JobListFilter extends SignalOptions {
  /** Only jobs in this state (or any of these). */
  state?: JobState | readonly JobState[];
  /** Only jobs of this type. */
  type?: JobType;
  /** Only jobs on this domain. */
  domain?: string;
  /** Only jobs on this pool. */
  pool?: string;
}

/** The connection's one job list. */
export interface JobList {
  /** Every job the connection knows, oldest first, filtered. */
  list(filter?: JobListFilter): Promise<Job[]>;
  /** One job by id; `NotFoundError` when there is none. */
  get(id: string, options?: SignalOptions): Promise<Job>;
}
