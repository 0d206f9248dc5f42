/**
 * The job manager of one connection (design §4): every job, owner-driven or in-process, in one list, with
 * one state machine, one set of locks and one stream of `job:*` events.
 *
 * @module
 */
import { RateLimiter } from "../copy/rate_limiter.ts";
import { ConflictError, NotFoundError, StateError, UnsupportedError } from "../errors.ts";
import { type Job, type JobListFilter, type JobState, UNFINISHED_JOB_STATES } from "../job.ts";
import { assertBandwidth, assertBytes } from "../units.ts";
import { assertName, assertObject } from "../validate.ts";
import { JobRecord } from "./job_record.ts";
import { type LocalJobRun, runLocalJob } from "./local_job.ts";
import { JOB_STATES } from "./state_machine.ts";
import type { JobHandle, JobManager, JobManagerOptions, JobSpec } from "./types.ts";


/**
 * Creates the job manager of a connection.
 *
 * Jobs get ids `"job-1"`, `"job-2"`, ... (a re-attached job may bring its own). Every transition emits
 * `job:state`, followed by `job:completed` / `job:failed` / `job:aborted` / `job:ready` where it applies;
 * `job:progress` goes out at most once per `progressIntervalMs` per job, and the last value before the
 * end is always sent. Finished jobs stay listed until `dismiss()` unless `autoDismiss` is set.
 *
 * @param options The bus, clock, progress interval, auto-dismiss and the connection-wide budget.
 * @returns A new manager.
 * @throws {TypeError} When the bus or clock is missing.
 * @throws {RangeError} For a negative or non-finite `progressIntervalMs` or a bad budget.
 * @example An in-process job that counts to 1 KiB
 * ```ts
 * import { createVirtualClock } from "virtkit";
 * import { createEventBus } from "../event_bus.ts";
 * import { createJobManager } from "./job_manager.ts";
 * const clock = createVirtualClock();
 * const jobs = createJobManager({ bus: createEventBus({ clock }), clock });
 * const job = jobs.startLocal({
 *   type: "volume-wipe", target: { pool: "p", volume: "v" }, endBytes: 1024,
 *   async run(ctx) {
 *     for (let cur = 0; cur < 1024;) { await ctx.checkpoint(); cur += 256; ctx.progress(cur); }
 *     return "wiped";
 *   },
 * });
 * if ((await job.wait()) !== "wiped") throw new Error("unexpected");
 * if ((await job.info()).state !== "completed") throw new Error("unexpected");
 * ```
 */
export function createJobManager(options: JobManagerOptions): JobManager {
  assertObject(options, "job manager options");
  const { bus, clock, autoDismiss = false, progressIntervalMs = 100 } = options;
  if (typeof bus?.emit !== "function") throw new TypeError("Invalid job manager bus: expected an event bus");
  if (typeof clock?.now !== "function" || typeof clock.sleep !== "function") {
    throw new TypeError("Invalid job manager clock: expected an object with now() and sleep()");
  }
  if (typeof progressIntervalMs !== "number" || !Number.isFinite(progressIntervalMs) || progressIntervalMs < 0) {
    throw new RangeError(`Invalid progressIntervalMs: ${progressIntervalMs} is not a finite number >= 0`);
  }
  const limiter = new RateLimiter({ bytesPerSecond: assertBandwidth(options.budgetBytesPerSecond, "budget"), clock });
  const records = new Map<string, JobRecord>();
  const lockHolders = new Map<string, JobRecord>();
  const locals = new Map<string, LocalJobRun<unknown>>();
  let lastNumber = 0;
  let closed = false;

  const holderOf = (lock: string) => {
    const record = lockHolders.get(lock);
    // A terminal job no longer holds its locks, even before `finished` tidies the map.
    return record && !record.terminal ? record : undefined;
  };
  const assertOpen = () => {
    if (closed) throw new StateError("Cannot start a job: the job manager is closed", { state: "closed" });
  };
  const remove = (record: JobRecord): boolean => {
    if (!record.listed) return false;
    record.listed = false;
    records.delete(record.id);
    bus.emit("job:dismissed", { job: record.info() });
    return true;
  };
  const finished = (record: JobRecord) => {
    for (const [lock, holder] of lockHolders) if (holder === record) lockHolders.delete(lock);
    if (!autoDismiss) return;
    remove(record);
    // The owner's peer may keep finished jobs too (QMP `job-dismiss`). The job has ended and been
    // reported already, so a failure here has no one left to tell.
    record.dismissPeer().catch(() => {});
  };

  function create<T>(spec: JobSpec): JobHandle<T> {
    assertOpen();
    const s = checkSpec(spec);
    if (s.id !== undefined && records.has(s.id)) {
      throw new ConflictError(`Cannot create job "${s.id}": a ${records.get(s.id)!.job.type} job has that id`, {
        jobId: s.id, driver: s.driver,
      });
    }
    for (const lock of s.locks) {
      const holder = holderOf(lock);
      if (holder) {
        throw new ConflictError(
          `Cannot start ${s.type} job: "${lock}" is in use by job "${holder.id}" (${holder.job.type})`,
          { jobId: holder.id, driver: s.driver },
        );
      }
    }
    let id = s.id;
    if (id === undefined) do id = `job-${++lastNumber}`; while (records.has(id));
    // Never hand out a re-attached job's id later, even once it has been dismissed.
    const number = /^job-(\d+)$/.exec(id)?.[1];
    if (number !== undefined) lastNumber = Math.max(lastNumber, Number(number));
    const record = new JobRecord({
      id, type: s.type, target: s.target, controller: s.controller, state: s.state, cur: s.cur, end: s.endBytes,
      bandwidth: s.bandwidth, driver: s.driver, bus, clock, progressIntervalMs, remove, finished,
      ...(s.finished ? { restored: s.finished } : {}),
      ...(s.createdAt === undefined ? {} : { createdAt: s.createdAt }),
    });
    records.set(id, record);
    if (!record.terminal) for (const lock of s.locks) lockHolders.set(lock, record);
    record.announce();
    return handleFor<T>(record, remove);
  }

  return {
    limiter,
    create,
    startLocal(spec) {
      assertOpen();
      const run = runLocalJob(spec, { create, parentLimiter: limiter, clock });
      locals.set(run.job.id, run as LocalJobRun<unknown>);
      const forget = () => void locals.delete(run.job.id);
      run.settled.then(forget, forget);
      return run.job;
    },
    holder(lock) {
      return holderOf(lock)?.id;
    },
    async list(filter = {}) {
      assertObject(filter, "job list filter");
      filter.signal?.throwIfAborted();
      const matches = matcher(filter);
      return [...records.values()].filter(matches).map((record) => record.job);
    },
    async get(id, getOptions) {
      getOptions?.signal?.throwIfAborted();
      const record = records.get(id);
      if (!record) throw new NotFoundError("job", String(id));
      return record.job;
    },
    injectFailure(jobId, error, failOptions) {
      if (!(error instanceof Error)) throw new TypeError("Invalid injected failure: expected an Error");
      const atBytes = failOptions?.atBytes === undefined ? undefined : assertBytes(failOptions.atBytes, "atBytes");
      const record = records.get(jobId);
      if (!record) throw new NotFoundError("job", String(jobId));
      if (record.terminal) {
        throw new StateError(`Cannot fail job "${jobId}": it is ${record.state}`, { state: record.state });
      }
      const local = locals.get(jobId);
      if (!local) {
        throw new UnsupportedError("injectFailure", {
          detail: `job "${jobId}" (${record.job.type}) is driven by its owner, not run in-process`,
        });
      }
      local.injectFailure(error, atBytes);
    },
    async close() {
      closed = true;
      const running = [...locals.values()];
      for (const run of running) run.abort();
      await Promise.all(running.map((run) => run.settled));
    },
  };
}

function handleFor<T>(record: JobRecord, remove: (record: JobRecord) => boolean): JobHandle<T> {
  return {
    job: record.job as Job<T>,
    get state() {
      return record.state;
    },
    setState(state) {
      // Reporting the state the job is already in is harmless (a peer may repeat itself).
      if (state === record.state) return;
      if (state === "running") record.apply(record.state === "paused" ? "resume" : "start");
      else if (state === "paused") record.apply("pause");
      else if (state === "ready") record.apply("ready");
      else throw new TypeError(`Invalid job state "${state}": setState takes "running", "paused" or "ready"`);
    },
    progress(cur, end, copiedBytes) {
      assertBytes(cur, "job progress cur");
      if (end !== undefined) assertBytes(end, "job progress end");
      if (copiedBytes !== undefined) assertBytes(copiedBytes, "job progress copiedBytes");
      record.progress(cur, end, copiedBytes);
    },
    setBandwidth(bytesPerSecond) {
      record.bandwidth = assertBandwidth(bytesPerSecond);
      record.bandwidthReports++;
    },
    complete(result) {
      if (record.terminal) return false;
      record.apply("complete", { result });
      return true;
    },
    fail(error) {
      if (record.terminal) return false;
      record.apply("fail", { error });
      return true;
    },
    aborted() {
      if (record.terminal) return false;
      record.apply("abort");
      return true;
    },
    dismissed() {
      return record.terminal && remove(record);
    },
  };
}

/**
 * The checked state sets of frozen state lists (UNFINISHED_JOB_STATES, which every block job look-up
 * passes): built once instead of on each list call. A list that can change is checked each time.
 */
const frozenStateSets = new WeakMap<readonly string[], ReadonlySet<string>>();

function stateSet(state: JobListFilter["state"]): ReadonlySet<string> | undefined {
  if (state === undefined) return undefined;
  const frozen = typeof state !== "string" && Object.isFrozen(state);
  const known = frozen ? frozenStateSets.get(state) : undefined;
  if (known) return known;
  const states = new Set<string>(typeof state === "string" ? [state] : state);
  for (const s of states) {
    if (!JOB_STATES.includes(s as JobState)) throw new TypeError(`Invalid job state filter "${s}"`);
  }
  if (frozen) frozenStateSets.set(state, states);
  return states;
}

function matcher(filter: JobListFilter): (record: JobRecord) => boolean {
  const states = stateSet(filter.state);
  return (record) => {
    const { type, target } = record.job;
    return (states === undefined || states.has(record.state)) &&
      (filter.type === undefined || type === filter.type) &&
      (filter.domain === undefined || target.domain === filter.domain) &&
      (filter.pool === undefined || target.pool === filter.pool);
  };
}

function assertTime(value: unknown): number {
  if (typeof value !== "number" || !Number.isFinite(value)) throw new TypeError(`Invalid job createdAt: expected a clock time in ms, got ${String(value)}`);
  return value;
}

function checkSpec(spec: JobSpec) {
  assertObject(spec, "job spec");
  if (typeof spec.type !== "string" || spec.type === "") throw new TypeError("Invalid job type: expected a non-empty string");
  const target = assertObject(spec.target, "job target");
  for (const key of ["domain", "disk", "pool", "volume"]) {
    if (target[key] !== undefined && typeof target[key] !== "string") {
      throw new TypeError(`Invalid job target ${key}: expected a string`);
    }
  }
  const controller = assertObject(spec.controller, "job controller");
  if (typeof controller.setSpeed !== "function" || typeof controller.abort !== "function") {
    throw new TypeError("Invalid job controller: setSpeed and abort must be functions");
  }
  const locks = spec.locks ?? [];
  if (!Array.isArray(locks) || locks.some((lock) => typeof lock !== "string" || lock === "")) {
    throw new TypeError("Invalid job locks: expected an array of non-empty strings");
  }
  const state = spec.state ?? "created";
  if (!JOB_STATES.includes(state)) throw new TypeError(`Invalid job state "${state}"`);
  const finished = spec.finished === undefined ? undefined : assertObject(spec.finished, "finished job");
  if (finished === undefined && !UNFINISHED_JOB_STATES.includes(state)) {
    throw new RangeError(`Invalid job state "${state}": a job cannot start finished`);
  }
  if (finished !== undefined && UNFINISHED_JOB_STATES.includes(state)) {
    throw new RangeError(`Invalid job state "${state}": a finished job is completed, failed or aborted`);
  }
  if (spec.driver !== undefined && typeof spec.driver !== "string") throw new TypeError("Invalid job driver: expected a string");
  return {
    type: spec.type,
    target: { ...spec.target },
    controller: spec.controller,
    id: spec.id === undefined ? undefined : assertName(spec.id, "job id"),
    locks: [...new Set(locks)],
    state,
    cur: assertBytes(spec.cur ?? 0, "job cur"),
    endBytes: assertBytes(spec.endBytes, "job endBytes"),
    bandwidth: assertBandwidth(spec.bandwidth, "job bandwidth"),
    driver: spec.driver,
    finished: spec.finished,
    createdAt: spec.createdAt === undefined ? undefined : assertTime(spec.createdAt),
  };
}
