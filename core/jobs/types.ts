/**
 * The job manager's contract, as drivers and core use it. One manager per connection holds every job.
 *
 * @module
 */
import type { Clock } from "../clock.ts";
import type { RateLimiter } from "../copy/rate_limiter.ts";
import type { Job, JobList, JobState, JobTarget, JobType } from "../job.ts";
import type { SignalOptions } from "../options.ts";

/**
 * What the owner of a job does for each verb. A verb resolves once the owner has reported the state it
 * leads to (`pause` resolves after `handle.setState("paused")`), except `abort`, which only requests
 * the end: the manager then waits for the terminal state itself.
 */
export interface JobController {
  /** Applies a new cap at once (0 lifts it). */
  setSpeed(bytesPerSecond: number, options?: SignalOptions): Promise<void>;
  /** Absent: `pause()` throws `UnsupportedError`. */
  pause?(options?: SignalOptions): Promise<void>;
  /** Absent: `resume()` throws `UnsupportedError`. */
  resume?(options?: SignalOptions): Promise<void>;
  /** Requests the end; the owner later calls `handle.aborted()` (or `complete`/`fail` if it raced). */
  abort(options?: SignalOptions): Promise<void>;
  /** For two-phase jobs in `ready`. */
  finalize?(options?: SignalOptions): Promise<void>;
  /** Driver cleanup when a finished job is dismissed (QMP `job-dismiss`). */
  dismiss?(options?: SignalOptions): Promise<void>;
}

/** How a job is registered. */
export interface JobSpec {
  /** Job type. */
  type: JobType;
  /** What it works on. */
  target: JobTarget;
  /** Bytes of the whole range (progress `end`). */
  endBytes: number;
  /** Initial cap, bytes per second (0 = unlimited). */
  bandwidth?: number;
  /**
   * Resources it writes (volume keys, `"disk:<domain>/<target>"`). A second job naming any of them
   * while the first is unfinished throws `ConflictError` naming the first job's id.
   */
  locks?: readonly string[];
  /** Verb implementations. */
  controller: JobController;
  /** Use this id (a driver re-attaching to a job after reconnect); generated otherwise. */
  id?: string;
  /** Start in this state (default `created`; re-attached jobs may start `running` or `paused`). */
  state?: JobState;
  /** Progress so far, for a re-attached job. */
  cur?: number;
  /** Driver name, recorded in errors. */
  driver?: string;
  /** Clock time it was created, for a job that began elsewhere (a mirrored one); now by default. */
  createdAt?: number;
  /**
   * A job that already finished before this connection opened (a driver keeps outcomes across
   * connections until they are dismissed): it is listed in `state`, which must be terminal, with this
   * error text and these times; it takes no lock and emits only `job:created`.
   */
  finished?: FinishedJobOutcome;
}

/** How a job that finished before this connection ended (see `JobSpec.finished`). */
export interface FinishedJobOutcome {
  /** Its error text, when it failed. */
  readonly error?: string;
  /** Clock time it was created. */
  readonly createdAt: number;
  /** Clock time it finished. */
  readonly finishedAt: number;
  /** What `wait()` resolves to, when it completed (a clone's new volume). */
  readonly result?: unknown;
}

/** The owner's side of a job: it reports what happens. Invalid transitions throw `StateError`. */
export interface JobHandle<T> {
  /** The public job object. */
  readonly job: Job<T>;
  /** Current state. */
  readonly state: JobState;
  /** Reports a non-terminal transition (`running`, `paused`, `ready`). */
  setState(state: "running" | "paused" | "ready"): void;
  /**
   * Reports progress; `job:progress` events are throttled by the manager. `copiedBytes` is the part of
   * `cur` really transferred (see `JobInfo.copiedBytes`), when the job knows it.
   */
  progress(cur: number, end?: number, copiedBytes?: number): void;
  /** Records the cap now in force. */
  setBandwidth(bytesPerSecond: number): void;
  /** Ends `completed` with a result. Ignored (returns false) when the job already ended. */
  complete(result: T): boolean;
  /** Ends `failed` with the error (its message becomes `info.error`). Ignored when already ended. */
  fail(error: unknown): boolean;
  /** Ends `aborted`. Ignored when already ended. */
  aborted(): boolean;
  /**
   * The owner dropped the finished job (another client of its peer dismissed it): it leaves the list
   * with `job:dismissed`. Returns false (and does nothing) while it runs or once it is gone.
   */
  dismissed(): boolean;
}

/** Everything an in-process job body gets. */
export interface LocalJobContext {
  /** Aborted when the user calls `abort()`; reason is a `DOMException` named `AbortError`. */
  readonly signal: AbortSignal;
  /** The job's own limiter (its cap), nested under the connection-wide budget. */
  readonly limiter: RateLimiter;
  /** The connection clock. */
  readonly clock: Clock;
  /**
   * Reports progress in bytes of the range; `end` moves the end when the range grows (a mirror that
   * copies guest writes again counts them, as QEMU does); `copiedBytes`, how many bytes were really
   * transferred (holes advance `cur` but not this), so a rate over it is the one a cap holds.
   */
  progress(cur: number, end?: number, copiedBytes?: number): void;
  /**
   * For two-phase jobs: reports `ready` and resolves when the user calls `finalize()`; rejects with the
   * abort reason when the job is aborted (or fails) while it waits. Call it once, while running.
   */
  ready(): Promise<void>;
  /** Resolves at once while running; waits while paused; rejects when aborted. Call between chunks. */
  checkpoint(): Promise<void>;
}

/** An in-process job: `run` does the work; its result completes the job, its error fails it. */
export interface LocalJobSpec<T> extends Omit<JobSpec, "controller" | "finished"> {
  /** The work. Must honour `ctx.signal` and call `ctx.checkpoint()` between chunks. */
  run(ctx: LocalJobContext): Promise<T>;
  /**
   * Undo after failure or abort (delete a half-made clone). Its own errors are reported in the job's
   * error text but do not hide the first failure.
   */
  cleanup?(outcome: "failed" | "aborted"): Promise<void>;
}

/** The job manager of one connection. */
export interface JobManager extends JobList {
  /** Registers a job driven by its owner. */
  create<T>(spec: JobSpec): JobHandle<T>;
  /** Starts an in-process job; it is `running` when this returns. */
  startLocal<T>(spec: LocalJobSpec<T>): Job<T>;
  /** The id of the unfinished job holding `lock`, if any. */
  holder(lock: string): string | undefined;
  /** The connection-wide budget every local job's limiter nests under (unlimited by default). */
  readonly limiter: RateLimiter;
  /** Aborts every unfinished local job and waits for them (connection close). */
  close(): Promise<void>;
  /**
   * Fault injection (backs the `test` driver's `conn.testing.failJob`): makes a local job fail with
   * `error`, now or once its progress reaches `options.atBytes`. From then on `ctx.progress()` and
   * `ctx.checkpoint()` throw that error and `ctx.signal` is aborted with it; cleanup runs and the job
   * ends `failed` with the error's message. Bytes the body wrote before stay written.
   *
   * @param jobId The job.
   * @param error What it fails with.
   * @param options `atBytes`: fail when progress reaches this offset instead of now.
   * @throws {TypeError} When `error` is not an `Error`; `RangeError` for a bad `atBytes`.
   * @throws {NotFoundError} For an unknown id.
   * @throws {StateError} When the job has finished.
   * @throws {UnsupportedError} For a job driven by its owner rather than run in-process.
   */
  injectFailure(jobId: string, error: Error, options?: { atBytes?: number }): void;
}

/** Options of `createJobManager`. */
export interface JobManagerOptions {
  /** Where job events go. */
  bus: import("../event_bus.ts").EventBus;
  /** The connection clock. */
  clock: Clock;
  /** Minimum time between two `job:progress` events of one job (default 100). */
  progressIntervalMs?: number;
  /** Drop finished jobs from the list at once (default false: they stay until `dismiss()`). */
  autoDismiss?: boolean;
  /** Host-wide budget in bytes per second shared by all local jobs (default 0, unlimited). */
  budgetBytesPerSecond?: number;
}
