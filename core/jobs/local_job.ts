/**
 * In-process jobs: the job manager's `startLocal()` runs a body (`spec.run(ctx)`) and turns what it does
 * into job states. Pause is a gate the body meets at `ctx.checkpoint()`; abort is `ctx.signal`; the cap
 * is `ctx.limiter`, nested under the connection-wide budget.
 *
 * @module
 */
import type { Clock } from "../clock.ts";
import type { RateLimiter } from "../copy/rate_limiter.ts";
import type { Job } from "../job.ts";
import type { JobController, JobHandle, JobSpec, LocalJobContext, LocalJobSpec } from "./types.ts";

/** What {@linkcode runLocalJob} needs from the manager. */
export interface LocalJobDependencies {
  /** Registers the job (validation, id, locks, `job:created`). */
  create<T>(spec: JobSpec): JobHandle<T>;
  /** The connection-wide budget the job's limiter nests under. */
  parentLimiter: RateLimiter;
  /** The connection clock. */
  clock: Clock;
}

/** The manager's grip on a running local job. */
export interface LocalJobRun<T> {
  /** The public job. */
  readonly job: Job<T>;
  /**
   * Makes the job fail with `error`: now, or once its progress reaches `atBytes`. The signal is aborted
   * with `error` as its reason so waits in the body end at once. The first failure that fires wins.
   */
  injectFailure(error: Error, atBytes?: number): void;
  /** Requests the end, as `job.abort()` does, without waiting. */
  abort(): void;
  /** Resolves once the job is terminal and cleanup has run; never rejects. */
  readonly settled: Promise<void>;
}

interface Gate {
  resolve(): void;
  reject(reason: unknown): void;
}

/**
 * Starts an in-process job: registers it, moves it to `running`, and runs its body on the next tick.
 *
 * @typeParam T What the body resolves to (the job's result).
 * @param spec The job and its body.
 * @param deps The manager's registration, budget and clock.
 * @returns The public job and the manager's controls.
 * @throws {TypeError} When `spec.run` is not a function, or for the checks of `create`.
 * @throws {RangeError} When `spec.state` is given: local jobs always start from `created`.
 * @example Through the manager: a paused body waits at its checkpoint
 * ```ts
 * import { createVirtualClock } from "virtkit";
 * import { createEventBus } from "../event_bus.ts";
 * import { createJobManager } from "./job_manager.ts";
 * const clock = createVirtualClock();
 * const jobs = createJobManager({ bus: createEventBus({ clock }), clock });
 * const job = jobs.startLocal({
 *   type: "volume-allocate", target: {}, endBytes: 4, bandwidth: 1,
 *   async run(ctx) {
 *     for (let cur = 0; cur < 4;) {
 *       await ctx.checkpoint();
 *       await ctx.limiter.take(1, ctx.signal);
 *       ctx.progress(++cur);
 *     }
 *   },
 * });
 * await clock.advance(1500);
 * await job.pause();
 * await clock.advance(10_000);
 * if ((await job.info()).cur !== 2) throw new Error("a paused job moved on");
 * await job.resume();
 * await clock.advance(2000);
 * if ((await job.info()).state !== "completed") throw new Error("unexpected");
 * ```
 */
export function runLocalJob<T>(spec: LocalJobSpec<T>, deps: LocalJobDependencies): LocalJobRun<T> {
  if (typeof spec?.run !== "function") throw new TypeError("Invalid local job: run must be a function");
  if (spec.cleanup !== undefined && typeof spec.cleanup !== "function") {
    throw new TypeError("Invalid local job: cleanup must be a function");
  }
  if (spec.state !== undefined) {
    throw new RangeError(`Invalid local job state "${spec.state}": a local job always starts from "created"`);
  }
  const abortController = new AbortController();
  const signal = abortController.signal;
  let gates: Gate[] = [];
  let paused = false;
  let userAborted = false;
  let failure: { error: Error; atBytes?: number; fired: boolean } | undefined;
  let cur = spec.cur ?? 0;
  let limiter!: RateLimiter;
  let handle!: JobHandle<T>;
  let finalizeGate: Gate | undefined;

  const releaseGates = (error?: unknown) => {
    const waiting = gates;
    gates = [];
    for (const gate of waiting) error === undefined ? gate.resolve() : gate.reject(error);
  };
  signal.addEventListener("abort", () => releaseGates(signal.reason), { once: true });
  const fire = () => {
    failure!.fired = true;
    if (!signal.aborted) abortController.abort(failure!.error);
    releaseGates(failure!.error);
  };
  const checkpoint = (): Promise<void> => {
    if (failure?.fired) return Promise.reject(failure.error);
    if (signal.aborted) return Promise.reject(signal.reason);
    if (!paused) return Promise.resolve();
    return new Promise<void>((resolve, reject) => gates.push({ resolve, reject }));
  };
  const abort = () => {
    userAborted = true;
    if (!signal.aborted) abortController.abort(new DOMException(`Job "${handle.job.id}" was aborted`, "AbortError"));
  };

  const controller: JobController = {
    async setSpeed(bytesPerSecond) {
      limiter.setRate(bytesPerSecond);
      handle.setBandwidth(bytesPerSecond);
    },
    async pause() {
      handle.setState("paused");
      paused = true;
    },
    async resume() {
      handle.setState("running");
      paused = false;
      releaseGates();
    },
    async abort() {
      abort();
    },
    async finalize() {
      const gate = finalizeGate;
      finalizeGate = undefined;
      gate?.resolve();
    },
  };
  handle = deps.create<T>({ ...spec, controller });
  limiter = deps.parentLimiter.child(spec.bandwidth ?? 0);
  handle.setState("running");

  const ctx: LocalJobContext = {
    signal,
    limiter,
    clock: deps.clock,
    progress(bytes, end, copiedBytes) {
      handle.progress(bytes, end, copiedBytes);
      cur = bytes;
      if (failure && !failure.fired && failure.atBytes !== undefined && cur >= failure.atBytes) fire();
      if (failure?.fired) throw failure.error;
    },
    checkpoint,
    ready() {
      if (failure?.fired) return Promise.reject(failure.error);
      if (signal.aborted) return Promise.reject(signal.reason);
      handle.setState("ready");
      return new Promise<void>((resolve, reject) => {
        finalizeGate = { resolve, reject };
        signal.addEventListener("abort", () => reject(signal.reason), { once: true });
      });
    },
  };

  const finishWithError = async (error: unknown) => {
    const aborted = !failure?.fired && userAborted && isAbortError(error, signal);
    const primary = failure?.fired ? failure.error : error;
    let cleanupError: unknown;
    let cleanupFailed = false;
    try {
      await spec.cleanup?.(aborted ? "aborted" : "failed");
    } catch (caught) {
      cleanupError = caught;
      cleanupFailed = true;
    }
    if (!cleanupFailed) {
      if (aborted) handle.aborted();
      else handle.fail(primary);
      return;
    }
    // A cleanup failure must not hide the first one; after an abort it is the only failure there is.
    const text = aborted
      ? `aborted, then cleanup failed: ${messageOf(cleanupError)}`
      : `${messageOf(primary)} (cleanup failed: ${messageOf(cleanupError)})`;
    handle.fail(new Error(text, { cause: aborted ? cleanupError : primary }));
  };

  const settled = (async () => {
    // The body starts after startLocal() has returned, so callers can listen before it reports.
    await Promise.resolve();
    let result: T;
    try {
      result = await spec.run(ctx);
      // A body that finishes while paused completes only once resumed (or ends aborted).
      await checkpoint();
    } catch (error) {
      await finishWithError(error);
      return;
    }
    handle.complete(result);
  })().catch((error: unknown) => {
    handle.fail(error);
  });

  return {
    job: handle.job,
    injectFailure(error, atBytes) {
      if (failure?.fired) return;
      failure = { error, atBytes, fired: false };
      if (atBytes === undefined || cur >= atBytes) fire();
    },
    abort,
    settled,
  };
}

function isAbortError(error: unknown, signal: AbortSignal): boolean {
  if (error === signal.reason) return true;
  return typeof error === "object" && error !== null && (error as { name?: unknown }).name === "AbortError";
}

function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}
