/**
 * The job state machine (design §4), after QEMU's `JobSTT` and `JobVerbTable`: which events move a job
 * from which state, and which user verbs each state accepts. Pure functions, so the tables can be
 * tested row by row.
 *
 * @module
 */
import { match, P } from "ts-pattern";
import { StateError } from "../errors.ts";
import type { JobState } from "../job.ts";

/** What happens to a job: each one moves it along one edge of the state machine. */
export type JobStateEvent = "start" | "pause" | "resume" | "ready" | "complete" | "fail" | "abort";

/** What a user may ask of a job. */
export type JobVerb = "setSpeed" | "pause" | "resume" | "abort" | "finalize" | "dismiss";

/** Every job state, in lifecycle order. */
export const JOB_STATES: readonly JobState[] = Object.freeze([
  "created", "running", "paused", "ready", "completed", "failed", "aborted",
]);

/** Every state event. */
export const JOB_STATE_EVENTS: readonly JobStateEvent[] = Object.freeze([
  "start", "pause", "resume", "ready", "complete", "fail", "abort",
]);

/** Every user verb. */
export const JOB_VERBS: readonly JobVerb[] = Object.freeze([
  "setSpeed", "pause", "resume", "abort", "finalize", "dismiss",
]);

const LIVE = P.union("created", "running", "paused", "ready");
const TERMINAL = P.union("completed", "failed", "aborted");

/**
 * The state a job moves to when `event` happens in `state`, or `undefined` when that edge does not exist.
 *
 * @param state The current state.
 * @param event What happens.
 * @returns The next state, or `undefined` for an invalid transition.
 * @example
 * ```ts
 * import { nextJobState } from "./state_machine.ts";
 * if (nextJobState("running", "pause") !== "paused") throw new Error("unexpected");
 * if (nextJobState("completed", "abort") !== undefined) throw new Error("unexpected");
 * ```
 */
export function nextJobState(state: JobState, event: JobStateEvent): JobState | undefined {
  return match<[JobState, JobStateEvent], JobState | undefined>([state, event])
    // A finished job never changes again.
    .with([TERMINAL, P._], () => undefined)
    .with(["created", "start"], () => "running")
    .with([P.union("running", "paused", "ready"), "start"], () => undefined)
    .with(["running", "pause"], () => "paused")
    .with([P.union("created", "paused", "ready"), "pause"], () => undefined)
    .with(["paused", "resume"], () => "running")
    .with([P.union("created", "running", "ready"), "resume"], () => undefined)
    .with(["running", "ready"], () => "ready")
    .with([P.union("created", "paused", "ready"), "ready"], () => undefined)
    .with([P.union("running", "ready"), "complete"], () => "completed")
    .with([P.union("created", "paused"), "complete"], () => undefined)
    .with([LIVE, "fail"], () => "failed")
    .with([LIVE, "abort"], () => "aborted")
    .exhaustive();
}

/**
 * Whether a user verb is allowed in a state.
 *
 * @param state The job's current state.
 * @param verb What the user asks.
 * @returns `true` when the verb is allowed.
 * @example
 * ```ts
 * import { isJobVerbAllowed } from "./state_machine.ts";
 * if (!isJobVerbAllowed("ready", "finalize")) throw new Error("unexpected");
 * if (isJobVerbAllowed("running", "dismiss")) throw new Error("unexpected");
 * ```
 */
export function isJobVerbAllowed(state: JobState, verb: JobVerb): boolean {
  return match<[JobState, JobVerb], boolean>([state, verb])
    .with([LIVE, P.union("setSpeed", "abort")], () => true)
    .with([TERMINAL, P.union("setSpeed", "abort")], () => false)
    .with(["running", "pause"], () => true)
    .with([P.union("created", "paused", "ready"), "pause"], () => false)
    .with(["paused", "resume"], () => true)
    .with([P.union("created", "running", "ready"), "resume"], () => false)
    .with(["ready", "finalize"], () => true)
    .with([P.union("created", "running", "paused"), "finalize"], () => false)
    .with([TERMINAL, "dismiss"], () => true)
    .with([LIVE, "dismiss"], () => false)
    .with([TERMINAL, P.union("pause", "resume", "finalize")], () => false)
    .exhaustive();
}

const VERB_PHRASES: Record<JobVerb | JobStateEvent, string> = {
  setSpeed: "set the speed of",
  pause: "pause",
  resume: "resume",
  abort: "abort",
  finalize: "finalize",
  dismiss: "dismiss",
  start: "start",
  ready: "make ready",
  complete: "complete",
  fail: "fail",
};

/**
 * Throws unless `verb` is allowed in `state`.
 *
 * @param jobId The job, for the message.
 * @param state Its current state.
 * @param verb What the user asks.
 * @throws {StateError} `Cannot pause job "job-3": it is completed`, with `state`.
 * @example
 * ```ts
 * import { assertJobVerb } from "./state_machine.ts";
 * let message = "";
 * try { assertJobVerb("job-3", "completed", "pause"); } catch (error) { message = (error as Error).message; }
 * if (message !== 'Cannot pause job "job-3": it is completed') throw new Error(message);
 * ```
 */
export function assertJobVerb(jobId: string, state: JobState, verb: JobVerb): void {
  if (!isJobVerbAllowed(state, verb)) {
    throw new StateError(`Cannot ${VERB_PHRASES[verb]} job "${jobId}": it is ${state}`, { state });
  }
}

/**
 * Applies an event, or throws when the transition does not exist.
 *
 * @param jobId The job, for the message.
 * @param state Its current state.
 * @param event What happens.
 * @returns The next state.
 * @throws {StateError} `Cannot complete job "job-3": it is paused`, with `state`.
 * @example
 * ```ts
 * import { applyJobEvent } from "./state_machine.ts";
 * if (applyJobEvent("job-1", "created", "start") !== "running") throw new Error("unexpected");
 * ```
 */
export function applyJobEvent(jobId: string, state: JobState, event: JobStateEvent): JobState {
  const next = nextJobState(state, event);
  if (next === undefined) {
    throw new StateError(`Cannot ${VERB_PHRASES[event]} job "${jobId}": it is ${state}`, { state });
  }
  return next;
}
