/**
 * Jobs owned by a peer (virtkitd's, reached by the remote driver), mirrored into this connection's job
 * manager: one record per peer job id, following the peer's snapshots, its verbs carried to the peer.
 * The state machine, the verb checks, the events, `wait()` and the locks stay the manager's, so a
 * mirrored job is listed, refused and reported exactly as any other job; the driver only carries
 * snapshots in (`update`, `sync`) and verbs out (`send`).
 *
 * A snapshot that jumps (after a gap, or at first sight) is reached along the state machine's own edges:
 * a job seen `created` and next `completed` emits `job:state` running, then completed.
 *
 * @module
 */
import type { Clock } from "../clock.ts";
import { ConflictError } from "../errors.ts";
import type { Job, JobInfo, JobState } from "../job.ts";
import { TERMINAL_JOB_STATES } from "../job.ts";
import type { SignalOptions } from "../options.ts";
import { jobSpecFromInfo } from "./job_spec.ts";
import type { JobVerb } from "./state_machine.ts";
import type { JobController, JobHandle, JobManager } from "./types.ts";

/** What a mirror needs from the driver that feeds it. */
export interface JobMirrorOptions {
  /** The connection's job manager. */
  readonly jobs: JobManager;
  /** The connection clock (deadlines of verbs waiting for the peer's word). */
  readonly clock: Clock;
  /** Driver name, recorded in errors. */
  readonly driver?: string;
  /** Carries a verb to the peer; resolves once the peer applied it (`bytesPerSecond` for `setSpeed`). */
  send(id: string, verb: JobVerb, bytesPerSecond: number, options?: SignalOptions): Promise<void>;
  /** A fresh snapshot of one job, or undefined once the peer no longer has it. */
  fetch(id: string, options?: SignalOptions): Promise<JobInfo | undefined>;
  /** What `wait()` resolves to once a job completed (a clone's new volume); undefined when absent. */
  resultOf?(info: JobInfo): Promise<unknown>;
  /** Locks a mirrored job holds here, so local checks name it (its disk, its volume); none when absent. */
  locksOf?(info: JobInfo): readonly string[];
  /** How long a verb waits for the peer's event before it asks for a snapshot (default 2000 ms). */
  settleMs?: number;
}

/** The driver's side of a mirror. Every call is applied in order, after the ones before it. */
export interface JobMirror {
  /** Applies the peer's snapshot of one job (from an event): creates its mirror if new, else moves it on. */
  update(info: JobInfo): Promise<void>;
  /** The peer dropped a finished job (`job:dismissed`): it leaves the list here too. */
  dismissed(id: string): Promise<void>;
  /**
   * Applies a full listing: mirrors the jobs not seen yet; with `update`, moves the others to their
   * listed state too; a mirrored job the peer no longer lists is dismissed (finished) or failed (not).
   */
  sync(infos: readonly JobInfo[], options?: { update?: boolean; seenBefore?: number }): Promise<void>;
  /**
   * A mark to pass as `sync`'s `seenBefore`, taken before asking for the listing: a job first seen
   * after it (its event overtook the listing) is not dropped for being absent from it.
   */
  mark(): number;
  /**
   * The mirror of the next job that `matches` and is first seen after this call: how a driver finds
   * the job its own request started on the peer. `cancel()` stops looking (the request failed).
   */
  expect(matches: (info: JobInfo) => boolean): MirrorExpectation;
  /** Whether the id is a mirrored job. */
  has(id: string): boolean;
  /** A mirrored job's state as last heard, or undefined for an id that is not mirrored. */
  stateOf(id: string): JobState | undefined;
  /**
   * The peer is gone (its connection closed): every unfinished mirror fails with `error`, since its
   * outcome can no longer be learnt. Finished ones stay listed.
   */
  lost(error: Error): Promise<void>;
}

/** What {@linkcode JobMirror.expect} returns. */
export interface MirrorExpectation {
  /** Resolves with the mirror of the first matching job seen. */
  readonly job: Promise<Job>;
  /** Stops looking; `job` then never resolves. */
  cancel(): void;
}

interface Entry {
  readonly handle: JobHandle<unknown>;
  /** When it was first seen (see `mark()`). */
  readonly born: number;
  cur: number;
  end: number;
  copiedBytes: number | undefined;
  bandwidth: number;
  /** A local `dismiss()` is on its way to the peer: the peer's `job:dismissed` is its echo. */
  dismissing: boolean;
  /** Called after every update (verbs waiting for the peer's word). */
  readonly watchers: Set<() => void>;
}

const isTerminal = (state: JobState) => TERMINAL_JOB_STATES.includes(state);

/**
 * Creates a mirror over a job manager.
 *
 * @param options The manager, the clock, and how verbs and snapshots travel.
 * @returns The mirror.
 * @example A peer job that runs and completes, seen through the mirror
 * ```ts
 * import { createVirtualClock } from "virtkit";
 * import { createEventBus } from "../event_bus.ts";
 * import { createJobManager } from "./job_manager.ts";
 * import { createJobMirror } from "./job_mirror.ts";
 * const clock = createVirtualClock();
 * const jobs = createJobManager({ bus: createEventBus({ clock }), clock });
 * const sent: string[] = [];
 * const mirror = createJobMirror({ jobs, clock, send: async (id, verb) => void sent.push(`${verb} ${id}`), fetch: async () => undefined });
 * const info = { id: "job-9", type: "volume-wipe", state: "running", target: { pool: "p", volume: "v" }, cur: 0, end: 8, bandwidth: 0, bytesPerSecond: 0, createdAt: 0 } as const;
 * await mirror.update(info);
 * const job = await jobs.get("job-9");
 * const abort = job.abort();
 * await Promise.resolve();
 * await mirror.update({ ...info, state: "aborted", cur: 4, finishedAt: 1 });
 * await abort;
 * if (sent.join() !== "abort job-9" || (await job.info()).state !== "aborted" || (await job.info()).cur !== 4) throw new Error("unexpected");
 * ```
 */
export function createJobMirror(options: JobMirrorOptions): JobMirror {
  const { jobs, clock, driver } = options;
  const settleMs = options.settleMs ?? 2000;
  const entries = new Map<string, Entry>();
  const expectations = new Set<{ matches: (info: JobInfo) => boolean; resolve: (job: Job) => void }>();
  let chain: Promise<void> = Promise.resolve();
  let seen = 0;
  const serial = (step: () => Promise<void> | void): Promise<void> => {
    const next = chain.then(step);
    chain = next.catch(() => {});
    return next;
  };

  /** Waits until `done()` holds, for the peer's event or, after `settleMs`, a fresh snapshot. */
  const settle = async (id: string, done: (state: JobState) => boolean, signal?: AbortSignal): Promise<void> => {
    const entry = entries.get(id);
    if (!entry || done(entry.handle.state)) return;
    const timer = new AbortController();
    const seen = new Promise<boolean>((resolve) => {
      const watch = () => {
        if (!done(entry.handle.state)) return;
        entry.watchers.delete(watch);
        resolve(true);
      };
      entry.watchers.add(watch);
      clock.sleep(settleMs, timer.signal).then(() => {
        entry.watchers.delete(watch);
        resolve(false);
      }, () => {});
    });
    const heard = await seen;
    timer.abort();
    if (heard) return;
    const info = await options.fetch(id, { signal });
    if (info) await serial(() => apply(info, true));
  };

  const controllerFor = (id: string): JobController => ({
    setSpeed: (bytesPerSecond, o) => options.send(id, "setSpeed", bytesPerSecond, o),
    async pause(o) {
      await options.send(id, "pause", 0, o);
      await settle(id, (s) => s !== "running", o?.signal);
    },
    async resume(o) {
      await options.send(id, "resume", 0, o);
      await settle(id, (s) => s !== "paused", o?.signal);
    },
    async finalize(o) {
      await options.send(id, "finalize", 0, o);
      await settle(id, (s) => s !== "ready", o?.signal);
    },
    async abort(o) {
      await options.send(id, "abort", 0, o);
      // The manager waits for the end itself; this makes sure the end is heard even if its event is lost.
      void settle(id, isTerminal).catch(() => {});
    },
    async dismiss(o) {
      const entry = entries.get(id);
      if (entry) entry.dismissing = true;
      try {
        await options.send(id, "dismiss", 0, o);
      } catch (error) {
        if (entry) entry.dismissing = false;
        throw error;
      }
      entries.delete(id);
    },
  });

  const create = async (info: JobInfo): Promise<void> => {
    const terminal = isTerminal(info.state);
    const result = info.state === "completed" && options.resultOf ? await options.resultOf(info).catch(() => undefined) : undefined;
    // An unfinished job starts from `created` here too, then moves along the edges to where the peer has it.
    const spec = jobSpecFromInfo(info, controllerFor(info.id), { ...(driver === undefined ? {} : { driver }), result });
    const locks = terminal ? [] : options.locksOf?.(info) ?? [];
    let handle: JobHandle<unknown>;
    try {
      handle = jobs.create({ ...spec, locks });
    } catch (error) {
      // The peer decides conflicts: a lock still held here by a job whose end is on its way is no reason
      // to refuse the mirror (an id taken by a job of this connection's own is, and is left alone).
      if (!(error instanceof ConflictError) || locks.length === 0 || error.jobId === info.id) return;
      handle = jobs.create(spec);
    }
    entries.set(info.id, {
      handle, born: ++seen, cur: info.cur, end: info.end, copiedBytes: info.copiedBytes, bandwidth: info.bandwidth, dismissing: false, watchers: new Set(),
    });
    if (!terminal) await moveTo(handle, info, options.resultOf);
    for (const expectation of expectations) {
      if (!expectation.matches(info)) continue;
      expectations.delete(expectation);
      expectation.resolve(handle.job);
      break;
    }
  };

  /** Moves a mirror to the snapshot's state and progress. */
  const apply = async (info: JobInfo, force = false): Promise<void> => {
    const entry = entries.get(info.id);
    if (!entry) {
      // An id this connection's own job took is left alone: it is not a mirror.
      if (!(await jobs.get(info.id).then(() => true, () => false))) await create(info);
      return;
    }
    const { handle } = entry;
    if (isTerminal(handle.state)) return;
    if (info.bandwidth !== entry.bandwidth) {
      entry.bandwidth = info.bandwidth;
      handle.setBandwidth(info.bandwidth);
    }
    const progress = () => {
      if (info.cur === entry.cur && info.end === entry.end && info.copiedBytes === entry.copiedBytes) return;
      if (!force && info.cur < entry.cur && info.end === entry.end) return; // an older snapshot than one applied
      entry.cur = info.cur;
      entry.end = info.end;
      entry.copiedBytes = info.copiedBytes;
      handle.progress(info.cur, info.end, info.copiedBytes);
    };
    // Into a terminal state the progress goes first, so the end reports the final bytes; otherwise the
    // transition does (a job starts running, then moves).
    if (isTerminal(info.state)) {
      progress();
      await moveTo(handle, info, options.resultOf);
    } else {
      await moveTo(handle, info, options.resultOf);
      progress();
    }
    for (const watch of [...entry.watchers]) watch();
  };

  return {
    update: (info) => serial(() => apply(info)),
    dismissed: (id) =>
      serial(() => {
        const entry = entries.get(id);
        if (!entry || entry.dismissing) return;
        if (entry.handle.dismissed()) entries.delete(id);
      }),
    sync: (infos, syncOptions = {}) =>
      serial(async () => {
        const listed = new Set(infos.map((info) => info.id));
        for (const info of infos) {
          if (!entries.has(info.id) || syncOptions.update) await apply(info, true);
        }
        for (const [id, entry] of entries) {
          if (listed.has(id) || entry.dismissing || entry.born > (syncOptions.seenBefore ?? Number.POSITIVE_INFINITY)) continue;
          if (!isTerminal(entry.handle.state)) entry.handle.fail(new Error(`Job "${id}" is no longer known to its owner; its outcome is unknown`));
          if (entry.handle.dismissed()) entries.delete(id);
        }
      }),
    expect(matches) {
      let expectation!: { matches: (info: JobInfo) => boolean; resolve: (job: Job) => void };
      const job = new Promise<Job>((resolve) => {
        expectation = { matches, resolve };
        expectations.add(expectation);
      });
      return { job, cancel: () => void expectations.delete(expectation) };
    },
    has: (id) => entries.has(id),
    stateOf: (id) => entries.get(id)?.handle.state,
    mark: () => seen,
    lost: (error) =>
      serial(() => {
        for (const entry of entries.values()) entry.handle.fail(error);
      }),
  };
}

/** Moves a handle along the state machine's edges to the snapshot's state (no edge back from `ready`). */
async function moveTo(handle: JobHandle<unknown>, info: JobInfo, resultOf: JobMirrorOptions["resultOf"]): Promise<void> {
  const target = info.state;
  if (handle.state === target || target === "created") return;
  const run = () => {
    if (handle.state === "created" || (handle.state === "paused" && target !== "paused")) handle.setState("running");
  };
  switch (target) {
    case "running":
      if (handle.state !== "ready") run();
      return;
    case "paused":
    case "ready":
      run();
      if (handle.state === "running") handle.setState(target);
      return;
    case "completed": {
      const result = resultOf ? await resultOf(info).catch(() => undefined) : undefined;
      if (isTerminal(handle.state)) return;
      run();
      handle.complete(result);
      return;
    }
    case "failed":
      handle.fail(new Error(info.error ?? "failed"));
      return;
    case "aborted":
      handle.aborted();
      return;
  }
}
