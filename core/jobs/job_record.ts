/**
 * One job's bookkeeping inside the job manager: state, progress, measured rate, events, and the public
 * {@linkcode Job} object users hold. Internal to `core/jobs`.
 *
 * @module
 */
import type { Clock } from "../clock.ts";
import { JobError, NotFoundError, UnsupportedError } from "../errors.ts";
import type { EventBus } from "../event_bus.ts";
import type { Job, JobInfo, JobState, JobTarget, JobType } from "../job.ts";
import type { SignalOptions } from "../options.ts";
import { assertBandwidth } from "../units.ts";
import { applyJobEvent, assertJobVerb, type JobStateEvent } from "./state_machine.ts";
import type { JobController } from "./types.ts";

/** How far back the measured rate looks. */
const RATE_WINDOW_MS = 1000;
/** Samples closer than this are merged, so the window holds a bounded number of them. */
const SAMPLE_SPACING_MS = 50;

interface Sample {
  time: number;
  cur: number;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** What a {@linkcode JobRecord} needs from its manager. */
export interface JobRecordOptions {
  /** The job's id. */
  id: string;
  /** Its type. */
  type: JobType;
  /** What it works on. */
  target: JobTarget;
  /** Verb implementations. */
  controller: JobController;
  /** Initial state. */
  state: JobState;
  /** Progress so far. */
  cur: number;
  /** Bytes of the whole range. */
  end: number;
  /** Initial cap. */
  bandwidth: number;
  /** Driver name for errors. */
  driver?: string;
  /** Where events go. */
  bus: EventBus;
  /** The connection clock. */
  clock: Clock;
  /** Minimum time between two `job:progress` events. */
  progressIntervalMs: number;
  /** Called by `dismiss()` once the controller agreed; returns false when the job was already gone. */
  remove(record: JobRecord): boolean;
  /** Called once after the terminal events. */
  finished(record: JobRecord): void;
  /** A job that finished before this connection: its error text, times and result (the state is terminal). */
  restored?: { readonly error?: string; readonly createdAt: number; readonly finishedAt: number; readonly result?: unknown };
  /** Clock time it was created, when that was before now (a job mirrored from elsewhere). */
  createdAt?: number;
}

/**
 * The manager's view of one job. Internal: drivers see a `JobHandle`, users a `Job`.
 *
 * @internal
 * @example
 * ```ts
 * import { createVirtualClock } from "virtkit";
 * import { createEventBus } from "../event_bus.ts";
 * import { JobRecord } from "./job_record.ts";
 * const clock = createVirtualClock();
 * const record = new JobRecord({
 *   id: "job-1", type: "volume-wipe", target: {}, state: "created", cur: 0, end: 10, bandwidth: 0,
 *   bus: createEventBus({ clock }), clock, progressIntervalMs: 100,
 *   controller: { setSpeed: async () => {}, abort: async () => {} }, remove: () => true, finished: () => {},
 * });
 * record.apply("start");
 * record.apply("complete", { result: 42 });
 * if ((await record.job.wait()) !== 42) throw new Error("unexpected");
 * ```
 */
export class JobRecord {
  /** The public object users hold. */
  readonly job: Job;
  /** Current state. */
  state: JobState;
  /** Bytes done. */
  cur: number;
  /** Bytes of the whole range. */
  end: number;
  /** The cap in force. */
  bandwidth: number;
  /** Counts `setBandwidth` reports, so `setSpeed` knows whether the owner recorded the cap itself. */
  bandwidthReports = 0;
  /** Whether the job is still in the list. */
  listed = true;
  /** Resolves when the job reaches a terminal state; never rejects. */
  readonly done: Promise<void>;
  readonly #options: JobRecordOptions;
  readonly #createdAt: number;
  #finishedAt: number | undefined;
  #error: unknown;
  #errorText: string | undefined;
  #result: unknown;
  #resolveDone!: () => void;
  #samples: Sample[] = [];
  #copiedBytes: number | undefined;
  #lastProgress: { at: number; cur: number; end: number };
  #progressTimer: AbortController | undefined;

  /** @param options Identity, initial values and manager hooks. */
  constructor(options: JobRecordOptions) {
    this.#options = options;
    this.state = options.state;
    this.cur = options.cur;
    this.end = options.end;
    this.bandwidth = options.bandwidth;
    this.#createdAt = options.restored?.createdAt ?? options.createdAt ?? options.clock.now();
    this.done = new Promise<void>((resolve) => (this.#resolveDone = resolve));
    if (options.restored) {
      this.#finishedAt = options.restored.finishedAt;
      this.#errorText = options.restored.error;
      this.#result = options.restored.result;
      this.#resolveDone();
    }
    if (this.state === "running" || this.state === "ready") this.#samples = [{ time: this.#createdAt, cur: this.cur }];
    // The values the job starts with count as reported: only changes make a `job:progress`.
    this.#lastProgress = { at: Number.NEGATIVE_INFINITY, cur: this.cur, end: this.end };
    this.job = createPublicJob(this, options);
  }

  /** The id. */
  get id(): string {
    return this.#options.id;
  }

  /** Whether the job has ended. */
  get terminal(): boolean {
    return this.state === "completed" || this.state === "failed" || this.state === "aborted";
  }

  /** A fresh plain snapshot. */
  info(): JobInfo {
    const o = this.#options;
    const now = o.clock.now();
    const bytesPerSecond = this.#bytesPerSecond(now);
    const info: Mutable<JobInfo> = {
      id: o.id, type: o.type, state: this.state, target: { ...o.target }, cur: this.cur, end: this.end,
      bandwidth: this.bandwidth, bytesPerSecond, createdAt: this.#createdAt,
    };
    if (bytesPerSecond > 0) info.etaMs = Math.ceil((Math.max(0, this.end - this.cur) * 1000) / bytesPerSecond);
    if (this.#copiedBytes !== undefined) info.copiedBytes = this.#copiedBytes;
    if (this.#errorText !== undefined) info.error = this.#errorText;
    if (this.#finishedAt !== undefined) info.finishedAt = this.#finishedAt;
    return info;
  }

  /** Tells the owner the job is dismissed, when its controller cares (resolves at once otherwise). */
  async dismissPeer(options?: SignalOptions): Promise<void> {
    const { controller } = this.#options;
    // Dismissing is the manager's business; a controller only hooks in when its peer keeps state too.
    if (controller.dismiss) await controller.dismiss(options);
  }

  /** Emits `job:created`. */
  announce(): void {
    this.#options.bus.emit("job:created", { job: this.info() });
  }

  /**
   * Moves along one edge of the state machine and emits the events. A terminal event flushes
   * unreported progress first, so listeners see the final `cur`.
   *
   * @param event What happened.
   * @param outcome The result (`complete`) or the error (`fail`).
   * @throws {StateError} When the state machine has no such edge from the current state.
   */
  apply(event: JobStateEvent, outcome: { result?: unknown; error?: unknown } = {}): void {
    const previous = this.state;
    const next = applyJobEvent(this.id, previous, event);
    const { bus, clock } = this.#options;
    const ending = next === "completed" || next === "failed" || next === "aborted";
    if (ending) {
      this.#progressTimer?.abort();
      this.#flushProgress();
      this.#finishedAt = clock.now();
      this.#result = outcome.result;
      if (next === "failed") {
        this.#error = outcome.error;
        this.#errorText = errorText(outcome.error);
      }
    }
    this.state = next;
    if (next === "running") this.#samples = [{ time: clock.now(), cur: this.cur }];
    const job = this.info();
    bus.emit("job:state", { job, previous });
    if (next === "completed") bus.emit("job:completed", { job });
    else if (next === "failed") bus.emit("job:failed", { job, error: job.error! });
    else if (next === "aborted") bus.emit("job:aborted", { job });
    else if (next === "ready") bus.emit("job:ready", { job });
    if (ending) {
      this.#resolveDone();
      this.#options.finished(this);
    }
  }

  /**
   * Records progress; `job:progress` goes out at most once per interval, the latest value last.
   *
   * @param cur Bytes done.
   * @param end Bytes of the whole range, when it changed.
   * @param copiedBytes Bytes of `cur` really transferred, when the job knows.
   */
  progress(cur: number, end?: number, copiedBytes?: number): void {
    if (this.terminal) return;
    const now = this.#options.clock.now();
    this.cur = cur;
    if (end !== undefined) this.end = end;
    if (copiedBytes !== undefined) this.#copiedBytes = copiedBytes;
    this.#sample(now, cur);
    const last = this.#lastProgress;
    if (last.cur === this.cur && last.end === this.end) return;
    const waitMs = last.at + this.#options.progressIntervalMs - now;
    if (waitMs <= 0) {
      this.#progressTimer?.abort();
      this.#flushProgress();
    } else if (!this.#progressTimer) {
      const timer = new AbortController();
      this.#progressTimer = timer;
      this.#options.clock.sleep(waitMs, timer.signal).then(() => {
        // A flush since (a report after the interval, or the end) has made this timer stale.
        if (this.#progressTimer === timer && !this.terminal) this.#flushProgress();
      }, () => {});
    }
  }

  /** The result on `completed`; throws `JobError` on `failed` or `aborted`. */
  outcome(): unknown {
    if (this.state === "completed") return this.#result;
    const o = this.#options;
    const what = this.state === "failed" ? `failed: ${this.#errorText}` : "was aborted";
    throw new JobError(`Job "${o.id}" (${o.type}) ${what}`, {
      info: this.info(), driver: o.driver, cause: this.#error,
    });
  }

  #flushProgress(): void {
    this.#progressTimer = undefined;
    const last = this.#lastProgress;
    if (last.cur === this.cur && last.end === this.end) return;
    this.#lastProgress = { at: this.#options.clock.now(), cur: this.cur, end: this.end };
    this.#options.bus.emit("job:progress", { job: this.info() });
  }

  #sample(now: number, cur: number): void {
    const s = this.#samples;
    const n = s.length;
    if (n >= 2 && now - s[n - 2]!.time < SAMPLE_SPACING_MS) s[n - 1] = { time: now, cur };
    else s.push({ time: now, cur });
    // Keep one sample at or before the window start: the rate interpolates from it.
    while (s.length >= 2 && s[1]!.time <= now - RATE_WINDOW_MS) s.shift();
  }

  /** Bytes per second over the last window, interpolating `cur` at the window start. */
  #bytesPerSecond(now: number): number {
    const s = this.#samples;
    if ((this.state !== "running" && this.state !== "ready") || s.length === 0) return 0;
    const from = Math.max(now - RATE_WINDOW_MS, s[0]!.time);
    const spanMs = now - from;
    if (spanMs <= 0) return 0;
    const bytes = s[s.length - 1]!.cur - curAt(s, from);
    return bytes > 0 ? Math.round((bytes * 1000) / spanMs) : 0;
  }
}

function curAt(samples: readonly Sample[], time: number): number {
  for (let i = samples.length - 1; i >= 0; i--) {
    const a = samples[i]!;
    if (a.time > time) continue;
    const b = samples[i + 1];
    return b ? a.cur + ((b.cur - a.cur) * (time - a.time)) / (b.time - a.time) : a.cur;
  }
  return samples[0]!.cur;
}

function errorText(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}

/** Waits for `promise`, rejecting early with the signal's own reason. */
function untilSignal<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

function requireVerb<K extends "pause" | "resume" | "finalize">(
  o: JobRecordOptions,
  verb: K,
): NonNullable<JobController[K]> {
  const impl = o.controller[verb];
  if (!impl) {
    throw new UnsupportedError(verb, { driver: o.driver, detail: `job "${o.id}" (${o.type}) cannot ${verb}` });
  }
  return impl.bind(o.controller) as NonNullable<JobController[K]>;
}

function createPublicJob(record: JobRecord, o: JobRecordOptions): Job {
  const check = (options: SignalOptions | undefined) => options?.signal?.throwIfAborted();
  /** A verb the owner carries out, once the state allows it. */
  const ownerVerb = (verb: "pause" | "resume" | "finalize") => async (options?: SignalOptions): Promise<void> => {
    check(options);
    assertJobVerb(o.id, record.state, verb);
    await requireVerb(o, verb)(options);
  };
  return {
    id: o.id,
    type: o.type,
    target: Object.freeze({ ...o.target }),
    async info(options) {
      check(options);
      return record.info();
    },
    async setSpeed(bytesPerSecond, options) {
      check(options);
      assertJobVerb(o.id, record.state, "setSpeed");
      if (typeof bytesPerSecond !== "number") {
        throw new TypeError(`Invalid bandwidth: expected a number of bytes per second, got ${typeof bytesPerSecond}`);
      }
      const bandwidth = assertBandwidth(bytesPerSecond);
      const reports = record.bandwidthReports;
      await o.controller.setSpeed(bandwidth, options);
      // An owner that did not record the cap itself gets the requested one.
      if (record.bandwidthReports === reports && !record.terminal) record.bandwidth = bandwidth;
    },
    pause: ownerVerb("pause"),
    resume: ownerVerb("resume"),
    finalize: ownerVerb("finalize"),
    async abort(options) {
      check(options);
      assertJobVerb(o.id, record.state, "abort");
      try {
        await o.controller.abort(options);
      } catch (error) {
        // The job may have ended on its own meanwhile; then the request simply came too late.
        if (!record.terminal) throw error;
      }
      await untilSignal(record.done, options?.signal);
    },
    async dismiss(options) {
      check(options);
      if (!record.listed) throw new NotFoundError("job", o.id);
      assertJobVerb(o.id, record.state, "dismiss");
      await record.dismissPeer(options);
      if (!o.remove(record)) throw new NotFoundError("job", o.id);
    },
    async wait(options) {
      check(options);
      await untilSignal(record.done, options?.signal);
      return record.outcome();
    },
  };
}
