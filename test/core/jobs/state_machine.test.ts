import { describe, expect, it } from "vitest";
import { StateError } from "../../../core/errors.ts";
import type { JobState } from "../../../core/job.ts";
import {
  applyJobEvent,
  assertJobVerb,
  isJobVerbAllowed,
  JOB_STATE_EVENTS,
  JOB_STATES,
  JOB_VERBS,
  type JobStateEvent,
  type JobVerb,
  nextJobState,
} from "../../../core/jobs/state_machine.ts";

// Written out by hand from design §4 and the brief, independently of the implementation.
const EDGES: Record<JobState, Partial<Record<JobStateEvent, JobState>>> = {
  created: { start: "running", fail: "failed", abort: "aborted" },
  running: { pause: "paused", ready: "ready", complete: "completed", fail: "failed", abort: "aborted" },
  paused: { resume: "running", fail: "failed", abort: "aborted" },
  ready: { complete: "completed", fail: "failed", abort: "aborted" },
  completed: {},
  failed: {},
  aborted: {},
};

const ALLOWED_VERBS: Record<JobState, readonly JobVerb[]> = {
  created: ["setSpeed", "abort"],
  running: ["setSpeed", "pause", "abort"],
  paused: ["setSpeed", "resume", "abort"],
  ready: ["setSpeed", "abort", "finalize"],
  completed: ["dismiss"],
  failed: ["dismiss"],
  aborted: ["dismiss"],
};

const ALL_STATES: JobState[] = ["created", "running", "paused", "ready", "completed", "failed", "aborted"];
const transitionCases = ALL_STATES.flatMap((state) =>
  (["start", "pause", "resume", "ready", "complete", "fail", "abort"] as const).map((event) => ({
    state,
    event,
    next: EDGES[state][event],
  }))
);
const verbCases = ALL_STATES.flatMap((state) =>
  (["setSpeed", "pause", "resume", "abort", "finalize", "dismiss"] as const).map((verb) => ({
    state,
    verb,
    allowed: ALLOWED_VERBS[state].includes(verb),
  }))
);

describe("job state machine", () => {
  it("lists every state, event and verb once", () => {
    expect([...JOB_STATES]).toEqual(ALL_STATES);
    expect(new Set(JOB_STATE_EVENTS).size).toBe(7);
    expect(new Set(JOB_VERBS).size).toBe(6);
    expect(transitionCases).toHaveLength(49);
    expect(verbCases).toHaveLength(42);
  });

  it.each(transitionCases)("nextJobState($state, $event) is $next", ({ state, event, next }) => {
    expect(nextJobState(state, event)).toBe(next);
  });

  it.each(transitionCases)("applyJobEvent($state, $event) moves to $next or throws StateError", ({ state, event, next }) => {
    if (next !== undefined) {
      expect(applyJobEvent("job-3", state, event)).toBe(next);
      return;
    }
    let caught: unknown;
    try {
      applyJobEvent("job-3", state, event);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(StateError);
    expect((caught as StateError).state).toBe(state);
    expect((caught as StateError).message).toMatch(new RegExp(`^Cannot .+ job "job-3": it is ${state}$`));
  });

  it.each(verbCases)("verb $verb in state $state: allowed = $allowed", ({ state, verb, allowed }) => {
    expect(isJobVerbAllowed(state, verb)).toBe(allowed);
    if (allowed) {
      expect(() => assertJobVerb("job-3", state, verb)).not.toThrow();
    } else {
      expect(() => assertJobVerb("job-3", state, verb)).toThrow(StateError);
    }
  });

  it("names the job and its state in the verb error", () => {
    let caught: unknown;
    try {
      assertJobVerb("job-3", "completed", "pause");
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(StateError);
    expect((caught as StateError).message).toBe('Cannot pause job "job-3": it is completed');
    expect((caught as StateError).state).toBe("completed");
    expect((caught as StateError).code).toBe("invalid-state");
    expect(() => assertJobVerb("job-9", "running", "setSpeed")).not.toThrow();
    expect(() => assertJobVerb("job-9", "aborted", "setSpeed")).toThrow('Cannot set the speed of job "job-9": it is aborted');
    expect(() => assertJobVerb("job-9", "running", "dismiss")).toThrow('Cannot dismiss job "job-9": it is running');
  });

  it("never leaves a terminal state", () => {
    for (const state of ["completed", "failed", "aborted"] as const) {
      for (const event of JOB_STATE_EVENTS) expect(nextJobState(state, event)).toBeUndefined();
    }
  });
});
