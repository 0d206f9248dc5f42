/**
 * The daemon's jobs in a remote connection's job list, when virtkitd offers virtkit's program: one
 * subscription to the daemon's `job:*` events feeds core's job mirror (`core/jobs/job_mirror.ts`), a
 * listing at connect (and on `conn.jobs.list()`, and after a `gap`) fills in what events cannot, and
 * the mirrored jobs' verbs go back as VIRTKIT_JOB_VERB. A job this client starts through a libvirt
 * procedure (a block pull, an upload) is found as the daemon job the procedure made, so there is one
 * job per daemon job id, never a local twin.
 *
 * @module
 */
import type { Clock } from "../../core/clock.ts";
import { diskLockKey } from "../../core/domains/disk_lock.ts";
import type { DriverJobs } from "../../core/driver.ts";
import { VirtError } from "../../core/errors.ts";
import type { Job, JobInfo, JobState, JobTarget, JobType } from "../../core/job.ts";
import { createJobMirror, type JobMirror } from "../../core/jobs/job_mirror.ts";
import type { JobManager } from "../../core/jobs/types.ts";
import type { SignalOptions } from "../../core/options.ts";
import type { VirtkitExtension } from "./virtkit_extension.ts";

/** How long a started request waits for its job's `job:created` before it asks for a listing. */
const FIND_MS = 2_000;

/** What a request started on the daemon is looked for by. */
export interface JobMatch {
  /** The job type the request makes. */
  readonly type: JobType;
  /** The fields of its target that must be equal. */
  readonly target: JobTarget;
}

/** A request whose daemon job is being looked for. */
export interface PendingAdoption {
  /** Stops looking (the request failed). */
  cancel(): void;
  /** The daemon's job, once its request returned; a `VirtError` if the daemon never shows it. */
  found(options?: SignalOptions): Promise<Job>;
}

/** The daemon's jobs, as the remote connection uses them. */
export interface DaemonJobs extends DriverJobs {
  /** The extension client. */
  readonly ext: VirtkitExtension;
  /** Starts looking for the job a request is about to make; call before sending the request. */
  expect(match: JobMatch): PendingAdoption;
  /** A daemon job's state as last heard here, or undefined when it is not known. */
  stateOf(id: string): JobState | undefined;
  /** The mirror of a job whose info the daemon returned (VIRTKIT_JOB_START). */
  mirrored(info: JobInfo): Promise<Job>;
  /** Ends the subscription. */
  close(): Promise<void>;
}

/**
 * Locks a daemon job holds in the mirror, so local checks name it: a block job its disk, a volume job
 * that writes its volume (`volume:POOL/NAME`, as the remote storage checks it).
 *
 * @param info The job.
 * @returns The lock keys.
 * @example
 * ```ts
 * import { daemonJobLocks } from "./daemon_jobs.ts";
 * const locks = daemonJobLocks({ type: "volume-upload", target: { pool: "p", volume: "v" } } as never);
 * if (locks.join() !== "volume:p/v") throw new Error(`unexpected ${locks}`);
 * ```
 */
export function daemonJobLocks(info: JobInfo): string[] {
  const { domain, disk, pool, volume } = info.target;
  if (domain !== undefined && disk !== undefined) return [diskLockKey(domain, disk)];
  if (info.type === "volume-download" || pool === undefined || volume === undefined) return [];
  return [`volume:${pool}/${volume}`];
}

const matches = (match: JobMatch) => (info: JobInfo) =>
  info.type === match.type &&
  Object.entries(match.target).every(([key, value]) => value === undefined || info.target[key as keyof JobTarget] === value);

/**
 * Subscribes to the daemon's job events, mirrors its current jobs, and returns the connection's grip.
 *
 * @param ext The extension client (probed on this session).
 * @param deps The job manager, the clock, and what a completed job resolves to (a clone's volume).
 * @returns The daemon's jobs, mirrored.
 * @example
 * ```ts
 * import { attachDaemonJobs } from "./daemon_jobs.ts";
 * if (typeof attachDaemonJobs !== "function") throw new Error("unexpected");
 * ```
 */
export async function attachDaemonJobs(
  ext: VirtkitExtension,
  deps: { readonly jobs: JobManager; readonly clock: Clock; resultOf(info: JobInfo): Promise<unknown> },
): Promise<DaemonJobs> {
  const mirror: JobMirror = createJobMirror({
    jobs: deps.jobs,
    clock: deps.clock,
    driver: "remote",
    send: (id, verb, bytesPerSecond, options) =>
      ext.verb(id, verb, bytesPerSecond, { signal: options?.signal, objectName: id, operation: `${verb === "setSpeed" ? "set the speed of" : verb} job "${id}"` }),
    fetch: (id, options) => ext.getJob(id).catch(() => (options?.signal?.throwIfAborted(), undefined)),
    resultOf: deps.resultOf,
    locksOf: daemonJobLocks,
  });
  const refreshAll = async (update: boolean) => {
    const before = mirror.mark();
    await mirror.sync(await ext.listJobs(), { update, seenBefore: before });
  };
  const stop = new AbortController();
  let onActive!: () => void;
  let onFailed!: (error: unknown) => void;
  const active = new Promise<void>((resolve, reject) => ((onActive = resolve), (onFailed = reject)));
  const loop = (async () => {
    for await (const event of ext.subscribe({ types: ["job:*"], signal: stop.signal, onActive })) {
      // A gap: some transitions are lost, so the listing says where each job is now.
      if (event.type === "gap") void refreshAll(true).catch(() => {});
      else if (event.type === "job:dismissed") void mirror.dismissed(event.job.id).catch(() => {});
      else if ("job" in event) void mirror.update(event.job).catch(() => {});
    }
  })();
  loop.catch(onFailed);
  // However the feed ends (this connection closing, or the daemon going away), the outcome of the jobs
  // still running can no longer be learnt here, as with a libvirt block job whose connection is lost.
  void loop.catch(() => {}).then(() =>
    mirror.lost(new VirtError("job-failed", "Lost the connection to virtkitd: the job's outcome is unknown here (the daemon's job runs on)", { driver: "remote" }))
  );
  await active;
  await refreshAll(false);

  const find = async (pending: Promise<Job>, signal?: AbortSignal): Promise<Job> => {
    const timer = new AbortController();
    const late = deps.clock.sleep(FIND_MS, timer.signal).then(() => undefined, () => undefined);
    const job = await Promise.race([pending, late]);
    timer.abort();
    if (job) return job;
    signal?.throwIfAborted();
    await refreshAll(false);
    const listed = await Promise.race([pending, Promise.resolve(undefined)]);
    if (listed) return listed;
    throw new VirtError("internal", "virtkitd accepted the request but does not list the job it started", { driver: "remote" });
  };

  return {
    ext,
    async refresh(options) {
      options?.signal?.throwIfAborted();
      if (options?.id === undefined) return await refreshAll(false);
      const info = await ext.getJob(options.id).catch(() => undefined);
      if (info) await mirror.update(info);
    },
    expect(match) {
      const pending = mirror.expect(matches(match));
      return { cancel: pending.cancel, found: (options) => find(pending.job, options?.signal) };
    },
    stateOf: (id) => mirror.stateOf(id),
    async mirrored(info) {
      // The reply is the daemon's word at start: it may be ahead of the job's events (never behind
      // them in state, as nothing but this client knows the job yet).
      await mirror.update(info);
      return await deps.jobs.get(info.id);
    },
    async close() {
      stop.abort();
      await loop.catch(() => {});
    },
  };
}
