import { describe, expect, it } from "vitest";
import { type Clock, createVirtualClock, type VirtualClock } from "../../../core/clock.ts";
import { ConflictError, JobError, NotFoundError, StateError, UnsupportedError } from "../../../core/errors.ts";
import type { EventBus } from "../../../core/event_bus.ts";
import type { CoreEvent, CoreEventPayloads, CoreEventType } from "../../../core/events.ts";
import type { JobState } from "../../../core/job.ts";
import { createJobManager } from "../../../core/jobs/job_manager.ts";
import type { JobController, JobHandle, JobManager, JobManagerOptions, JobSpec } from "../../../core/jobs/types.ts";

/** A recording stand-in for the event bus: `emit` stamps and stores; `listen` runs a hook per event. */
function recordingBus(clock: Clock) {
  const events: CoreEvent[] = [];
  const hooks: Array<(event: CoreEvent) => void> = [];
  let seq = 0;
  const unused = (): never => {
    throw new Error("not part of this fake");
  };
  const bus: EventBus = {
    emit<K extends Exclude<CoreEventType, "gap">>(type: K, payload: CoreEventPayloads[K]): CoreEvent<K> {
      const event = { ...payload, seq: ++seq, time: clock.now(), type } as unknown as CoreEvent<K>;
      events.push(event);
      for (const hook of hooks) hook(event);
      return event;
    },
    get lastSeq() {
      return seq;
    },
    on: unused,
    once: unused,
    subscribe: unused,
    next: unused,
  };
  return { bus, events, listen: (hook: (event: CoreEvent) => void) => hooks.push(hook) };
}

function setup(options: Partial<Omit<JobManagerOptions, "bus" | "clock">> = {}) {
  const clock = createVirtualClock();
  const recorder = recordingBus(clock);
  const jobs = createJobManager({ bus: recorder.bus, clock, ...options });
  const types = (jobId?: string) =>
    recorder.events.filter((e) => !jobId || (e as { job?: { id: string } }).job?.id === jobId).map((e) => e.type);
  return { clock, jobs, ...recorder, types };
}

/** An owner-driven job whose controller reports the state each verb leads to, and logs the calls. */
function ownerJob(jobs: JobManager, spec: Partial<JobSpec> = {}, omit: Array<keyof JobController> = []) {
  const calls: string[] = [];
  let handle!: JobHandle<string>;
  const controller: JobController = {
    async setSpeed(bytesPerSecond) {
      calls.push(`setSpeed ${bytesPerSecond}`);
      handle.setBandwidth(bytesPerSecond);
    },
    async pause() {
      calls.push("pause");
      handle.setState("paused");
    },
    async resume() {
      calls.push("resume");
      handle.setState("running");
    },
    async abort() {
      calls.push("abort");
      handle.aborted();
    },
    async finalize() {
      calls.push("finalize");
      handle.complete("finalized");
    },
    async dismiss() {
      calls.push("dismiss");
    },
  };
  for (const name of omit) delete controller[name];
  handle = jobs.create<string>({
    type: "block-pull", target: { domain: "web1", disk: "vda" }, endBytes: 10_000, controller, ...spec,
  });
  return { handle, calls, job: handle.job };
}

function drive(handle: JobHandle<string>, state: JobState): void {
  if (state === "created") return;
  if (state === "failed") return void handle.fail(new Error("disk full"));
  if (state === "aborted") return void handle.aborted();
  handle.setState("running");
  if (state === "paused" || state === "ready") handle.setState(state);
  if (state === "completed") handle.complete("done");
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection");
}

const STATES: JobState[] = ["created", "running", "paused", "ready", "completed", "failed", "aborted"];
const VERB_OUTCOMES: Record<string, Partial<Record<JobState, JobState | "dismissed">>> = {
  setSpeed: { created: "created", running: "running", paused: "paused", ready: "ready" },
  pause: { running: "paused" },
  resume: { paused: "running" },
  abort: { created: "aborted", running: "aborted", paused: "aborted", ready: "aborted" },
  finalize: { ready: "completed" },
  dismiss: { completed: "dismissed", failed: "dismissed", aborted: "dismissed" },
};
const verbCases = STATES.flatMap((state) =>
  Object.keys(VERB_OUTCOMES).map((verb) => ({ state, verb, outcome: VERB_OUTCOMES[verb]![state] }))
);

describe("createJobManager: verbs", () => {
  it.each(verbCases)("job.$verb() in state $state", async ({ state, verb, outcome }) => {
    const { jobs } = setup();
    const { handle, calls, job } = ownerJob(jobs);
    drive(handle, state);
    const call = () => verb === "setSpeed" ? job.setSpeed(4096) : (job[verb as "pause"])();
    if (outcome === undefined) {
      const error = await rejection(call());
      expect(error).toBeInstanceOf(StateError);
      expect((error as StateError).message).toMatch(new RegExp(`^Cannot .+ job "${job.id}": it is ${state}$`));
      expect((error as StateError).state).toBe(state);
      expect(calls).toEqual([]);
      expect(handle.state).toBe(state);
      return;
    }
    await call();
    expect(calls).toEqual([verb === "setSpeed" ? "setSpeed 4096" : verb]);
    if (outcome === "dismissed") {
      await expect(jobs.get(job.id)).rejects.toBeInstanceOf(NotFoundError);
      expect(await jobs.list()).toEqual([]);
    } else {
      expect((await job.info()).state).toBe(outcome);
    }
    if (verb === "setSpeed") expect((await job.info()).bandwidth).toBe(4096);
  });

  it("rejects bad speeds with RangeError or TypeError before calling the controller", async () => {
    const { jobs } = setup();
    const { handle, calls, job } = ownerJob(jobs);
    handle.setState("running");
    for (const bad of [-1, Number.NaN, 1.5, 2 ** 60, Number.POSITIVE_INFINITY]) {
      await expect(job.setSpeed(bad)).rejects.toBeInstanceOf(RangeError);
    }
    await expect(job.setSpeed("5" as unknown as number)).rejects.toBeInstanceOf(TypeError);
    await expect(job.setSpeed(undefined as unknown as number)).rejects.toBeInstanceOf(TypeError);
    expect(calls).toEqual([]);
    await job.setSpeed(0);
    expect((await job.info()).bandwidth).toBe(0);
  });

  it("records the requested cap when the owner does not report one", async () => {
    const { jobs } = setup();
    const controller: JobController = { setSpeed: async () => {}, abort: async () => {} };
    const handle = jobs.create({ type: "block-pull", target: {}, endBytes: 1, controller, bandwidth: 100 });
    expect((await handle.job.info()).bandwidth).toBe(100);
    await handle.job.setSpeed(2048);
    expect((await handle.job.info()).bandwidth).toBe(2048);
  });

  it("throws UnsupportedError naming the operation when the controller lacks it", async () => {
    const { jobs } = setup();
    const { handle, job } = ownerJob(jobs, { driver: "qemu" }, ["pause", "resume", "finalize"]);
    handle.setState("running");
    const error = await rejection(job.pause());
    expect(error).toBeInstanceOf(UnsupportedError);
    expect((error as UnsupportedError).operation).toBe("pause");
    expect((error as UnsupportedError).message).toContain(`"${job.id}"`);
    handle.setState("paused");
    expect(await rejection(job.resume())).toBeInstanceOf(UnsupportedError);
    handle.setState("running");
    handle.setState("ready");
    expect(((await rejection(job.finalize())) as UnsupportedError).operation).toBe("finalize");
    // The state check comes first: a verb the state forbids is a StateError even when unsupported.
    expect(await rejection(job.resume())).toBeInstanceOf(StateError);
  });

  it("honours an aborted signal on every verb", async () => {
    const { jobs } = setup();
    const { handle, calls, job } = ownerJob(jobs);
    handle.setState("running");
    const signal = AbortSignal.abort(new Error("stop"));
    for (const call of [job.info({ signal }), job.pause({ signal }), job.setSpeed(1, { signal }), job.abort({ signal })]) {
      expect(((await rejection(call)) as Error).message).toBe("stop");
    }
    expect(calls).toEqual([]);
  });
});

describe("createJobManager: abort", () => {
  it("resolves only once the owner reports the end", async () => {
    const { jobs, clock } = setup();
    let handle!: JobHandle<void>;
    const controller: JobController = {
      setSpeed: async () => {},
      // The owner needs 500 ms to wind down.
      abort: async () => void clock.sleep(500).then(() => handle.aborted()),
    };
    handle = jobs.create({ type: "volume-wipe", target: {}, endBytes: 10, controller });
    handle.setState("running");
    let resolved = false;
    const aborting = handle.job.abort().then(() => (resolved = true));
    await clock.advance(499);
    expect(resolved).toBe(false);
    expect(handle.state).toBe("running");
    await clock.advance(1);
    await aborting;
    expect(handle.state).toBe("aborted");
  });

  it("resolves when the job completes instead (it raced), even if the owner's abort then fails", async () => {
    const { jobs } = setup();
    let handle!: JobHandle<string>;
    const controller: JobController = {
      setSpeed: async () => {},
      abort: async () => {
        handle.complete("won the race");
        throw new Error("no such job");
      },
    };
    handle = jobs.create({ type: "block-pull", target: {}, endBytes: 10, controller });
    handle.setState("running");
    await handle.job.abort();
    expect(handle.state).toBe("completed");
    expect(await handle.job.wait()).toBe("won the race");
  });

  it("passes on the owner's error when the job is still running", async () => {
    const { jobs } = setup();
    const controller: JobController = { setSpeed: async () => {}, abort: async () => { throw new Error("QMP down"); } };
    const handle = jobs.create({ type: "block-pull", target: {}, endBytes: 10, controller });
    handle.setState("running");
    expect(((await rejection(handle.job.abort())) as Error).message).toBe("QMP down");
    expect(handle.state).toBe("running");
  });

  it("stops waiting when its signal aborts, leaving the job alone", async () => {
    const { jobs } = setup();
    const controller: JobController = { setSpeed: async () => {}, abort: async () => {} };
    const handle = jobs.create({ type: "block-pull", target: {}, endBytes: 10, controller });
    handle.setState("running");
    const stop = new AbortController();
    const aborting = handle.job.abort({ signal: stop.signal });
    stop.abort(new DOMException("gave up", "AbortError"));
    expect(((await rejection(aborting)) as DOMException).message).toBe("gave up");
    expect(handle.state).toBe("running");
  });
});

describe("createJobManager: events", () => {
  it("completes: created, state, progress, last progress, state, completed", async () => {
    const { jobs, clock, events, types } = setup();
    const { handle, job } = ownerJob(jobs);
    handle.setState("running");
    handle.progress(1000);
    await clock.advance(10);
    handle.progress(4000); // inside the interval: held back, then flushed before the end
    handle.complete("ok");
    expect(types()).toEqual([
      "job:created", "job:state", "job:progress", "job:progress", "job:state", "job:completed",
    ]);
    const [created, started, , last, ended, completed] = events as Array<CoreEvent<"job:state">>;
    expect(created!.job.state).toBe("created");
    expect(started!.previous).toBe("created");
    expect(started!.job.state).toBe("running");
    expect(last!.job.cur).toBe(4000);
    expect(ended!.previous).toBe("running");
    expect(ended!.job.state).toBe("completed");
    expect(completed!.job).toMatchObject({ id: job.id, state: "completed", cur: 4000, finishedAt: 10 });
    expect(events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    await clock.advance(1000);
    expect(events).toHaveLength(6); // the held-back timer does not fire after the end
  });

  it("fails: job:failed carries the error text", async () => {
    const { jobs, events, types } = setup();
    const { handle } = ownerJob(jobs);
    handle.setState("running");
    expect(handle.fail(new Error("disk full"))).toBe(true);
    expect(handle.fail(new Error("again"))).toBe(false);
    expect(handle.complete("late")).toBe(false);
    expect(types()).toEqual(["job:created", "job:state", "job:state", "job:failed"]);
    const failed = events[3] as CoreEvent<"job:failed">;
    expect(failed.error).toBe("disk full");
    expect(failed.job).toMatchObject({ state: "failed", error: "disk full" });
  });

  it("aborts, pauses, resumes and gets ready: one job:state per transition", async () => {
    const { jobs, events, types } = setup();
    const { handle, job } = ownerJob(jobs);
    handle.setState("running");
    await job.pause();
    await job.resume();
    handle.setState("ready");
    await job.abort();
    expect(types()).toEqual([
      "job:created", "job:state", "job:state", "job:state", "job:state", "job:ready", "job:state", "job:aborted",
    ]);
    const states = (events.filter((e) => e.type === "job:state") as Array<CoreEvent<"job:state">>)
      .map((e) => `${e.previous}>${e.job.state}`);
    expect(states).toEqual(["created>running", "running>paused", "paused>running", "running>ready", "ready>aborted"]);
  });

  it("rejects transitions the machine does not have, and ignores a repeated report", () => {
    const { jobs, types } = setup();
    const { handle } = ownerJob(jobs);
    expect(() => handle.setState("paused")).toThrow(StateError);
    expect(() => handle.complete("x")).toThrow('Cannot complete job "job-1": it is created');
    handle.setState("running");
    handle.setState("running");
    expect(types()).toEqual(["job:created", "job:state"]);
    expect(() => handle.setState("completed" as "running")).toThrow(TypeError);
    handle.aborted();
    expect(() => handle.setState("running")).toThrow(StateError);
  });

  it("throttles job:progress to one per interval and sends the latest value at the interval's end", async () => {
    const { jobs, clock, events } = setup();
    const { handle } = ownerJob(jobs);
    handle.setState("running");
    const progress = () =>
      (events.filter((e) => e.type === "job:progress") as Array<CoreEvent<"job:progress">>)
        .map((e) => `${e.time}:${e.job.cur}`);
    for (let t = 0; t < 300; t += 10) {
      handle.progress(t * 10 + 10);
      await clock.advance(10);
    }
    // Each held-back report goes out when its interval ends, with the value known then.
    expect(progress()).toEqual(["0:10", "100:910", "200:1910", "300:2910"]);
    handle.progress(3000);
    await clock.advance(50);
    handle.progress(3500);
    expect(progress()).toHaveLength(4);
    await clock.advance(50);
    expect(progress().at(-1)).toBe("400:3500");
    handle.progress(3500); // unchanged: nothing to say
    await clock.advance(500);
    expect(progress()).toHaveLength(5);
  });

  it("uses progressIntervalMs, and 0 sends every change", async () => {
    const slow = setup({ progressIntervalMs: 1000 });
    const a = ownerJob(slow.jobs);
    a.handle.setState("running");
    for (let i = 1; i <= 10; i++) {
      a.handle.progress(i);
      await slow.clock.advance(100);
    }
    expect(slow.types().filter((t) => t === "job:progress")).toHaveLength(2);
    const eager = setup({ progressIntervalMs: 0 });
    const b = ownerJob(eager.jobs);
    for (let i = 1; i <= 5; i++) b.handle.progress(i);
    expect(eager.types().filter((t) => t === "job:progress")).toHaveLength(5);
  });

  it("emits job:progress when only the end changes", () => {
    const { jobs, events } = setup({ progressIntervalMs: 0 });
    const { handle } = ownerJob(jobs);
    handle.progress(0, 20_000);
    expect((events.at(-1) as CoreEvent<"job:progress">).job).toMatchObject({ cur: 0, end: 20_000 });
  });
});

describe("createJobManager: info", () => {
  it("returns fresh plain snapshots", async () => {
    const { jobs, clock } = setup();
    await clock.advance(5);
    const { handle, job } = ownerJob(jobs, { bandwidth: 1000, target: { pool: "p", volume: "v" } });
    const first = await job.info();
    expect(first).toEqual({
      id: "job-1", type: "block-pull", state: "created", target: { pool: "p", volume: "v" },
      cur: 0, end: 10_000, bandwidth: 1000, bytesPerSecond: 0, createdAt: 5,
    });
    expect(structuredClone(first)).toEqual(first);
    handle.setState("running");
    expect(first.state).toBe("created");
    expect(await job.info()).not.toBe(await job.info());
  });

  it("measures bytesPerSecond over the recent window and derives etaMs", async () => {
    const { jobs, clock } = setup();
    const { handle, job } = ownerJob(jobs, { endBytes: 10_000_000 });
    handle.setState("running");
    let cur = 0;
    for (let i = 0; i < 30; i++) {
      await clock.advance(50);
      cur += 50_000; // 1 MB/s
      handle.progress(cur);
    }
    const steady = await job.info();
    expect(steady.bytesPerSecond).toBeGreaterThan(950_000);
    expect(steady.bytesPerSecond).toBeLessThan(1_050_000);
    expect(steady.etaMs).toBeGreaterThan(8_000);
    expect(steady.etaMs).toBeLessThan(9_000); // 8.5 MB left at 1 MB/s
    for (let i = 0; i < 10; i++) {
      await clock.advance(100);
      cur += 10_000; // slows to 100 kB/s
      handle.progress(cur);
    }
    const slowed = await job.info();
    expect(slowed.bytesPerSecond).toBeGreaterThan(90_000);
    expect(slowed.bytesPerSecond).toBeLessThan(110_000);
    await clock.advance(1500); // stalled longer than the window
    const stalled = await job.info();
    expect(stalled.bytesPerSecond).toBe(0);
    expect(stalled.etaMs).toBeUndefined();
  });

  it("reports no rate while paused and after the end", async () => {
    const { jobs, clock } = setup();
    const { handle, job } = ownerJob(jobs);
    handle.setState("running");
    await clock.advance(100);
    handle.progress(500);
    expect((await job.info()).bytesPerSecond).toBe(5000);
    await job.pause();
    expect(await job.info()).toMatchObject({ bytesPerSecond: 0 });
    expect((await job.info()).etaMs).toBeUndefined();
    await job.resume();
    await clock.advance(100);
    handle.progress(1000);
    expect((await job.info()).bytesPerSecond).toBe(5000); // the paused time does not dilute the rate
    handle.complete("ok");
    expect(await job.info()).toMatchObject({ bytesPerSecond: 0, finishedAt: 200 });
  });
});

describe("createJobManager: ids, list and get", () => {
  it("numbers jobs per manager and keeps a re-attached job's id", async () => {
    const a = setup();
    expect(ownerJob(a.jobs).job.id).toBe("job-1");
    expect(ownerJob(a.jobs, { id: "job-5", state: "running", cur: 300 }).job.id).toBe("job-5");
    expect(ownerJob(a.jobs).job.id).toBe("job-6");
    expect(() => ownerJob(a.jobs, { id: "job-5" })).toThrow(ConflictError);
    expect(ownerJob(setup().jobs).job.id).toBe("job-1");
  });

  it("refuses a duplicate id with ConflictError", () => {
    const { jobs } = setup();
    ownerJob(jobs, { id: "mirror-vda" });
    let caught: unknown;
    try {
      ownerJob(jobs, { id: "mirror-vda" });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConflictError);
    expect((caught as ConflictError).jobId).toBe("mirror-vda");
  });

  it("re-attaches in a given state and progress", async () => {
    const { jobs, types } = setup();
    const { job } = ownerJob(jobs, { id: "job-2", state: "paused", cur: 700 });
    expect(await job.info()).toMatchObject({ state: "paused", cur: 700 });
    expect(types()).toEqual(["job:created"]);
  });

  it("lists oldest first, filtered by state, type, domain and pool", async () => {
    const { jobs } = setup();
    const a = ownerJob(jobs, { target: { domain: "web1", disk: "vda" } });
    const b = ownerJob(jobs, { type: "volume-clone", target: { pool: "p1", volume: "v" } });
    const c = ownerJob(jobs, { type: "volume-wipe", target: { pool: "p2", volume: "w" } });
    b.handle.setState("running");
    c.handle.fail(new Error("x"));
    const ids = async (filter?: Parameters<JobManager["list"]>[0]) => (await jobs.list(filter)).map((j) => j.id);
    expect(await ids()).toEqual([a.job.id, b.job.id, c.job.id]);
    expect(await ids({ state: "running" })).toEqual([b.job.id]);
    expect(await ids({ state: ["created", "failed"] })).toEqual([a.job.id, c.job.id]);
    expect(await ids({ type: "volume-clone" })).toEqual([b.job.id]);
    expect(await ids({ domain: "web1" })).toEqual([a.job.id]);
    expect(await ids({ pool: "p2" })).toEqual([c.job.id]);
    expect(await ids({ pool: "p2", state: "running" })).toEqual([]);
    await expect(jobs.list({ state: "sleeping" as JobState })).rejects.toBeInstanceOf(TypeError);
    expect(await jobs.get(b.job.id)).toBe(b.job);
    const missing = await rejection(jobs.get("job-99"));
    expect(missing).toBeInstanceOf(NotFoundError);
    expect((missing as Error).message).toBe('Cannot find job "job-99"');
  });

  it("validates specs and options", () => {
    const { jobs } = setup();
    const controller: JobController = { setSpeed: async () => {}, abort: async () => {} };
    const base: JobSpec = { type: "block-pull", target: {}, endBytes: 1, controller };
    expect(() => jobs.create({ ...base, endBytes: -1 })).toThrow(RangeError);
    expect(() => jobs.create({ ...base, endBytes: 0.5 })).toThrow(RangeError);
    expect(() => jobs.create({ ...base, bandwidth: 2 ** 60 })).toThrow(RangeError);
    expect(() => jobs.create({ ...base, type: "" })).toThrow(TypeError);
    expect(() => jobs.create({ ...base, id: "" })).toThrow(TypeError);
    expect(() => jobs.create({ ...base, state: "completed" })).toThrow(RangeError);
    expect(() => jobs.create({ ...base, state: "asleep" as JobState })).toThrow(TypeError);
    expect(() => jobs.create({ ...base, locks: "vol" as unknown as string[] })).toThrow(TypeError);
    expect(() => jobs.create({ ...base, controller: {} as JobController })).toThrow(TypeError);
    expect(() => jobs.create({ ...base, target: null as unknown as JobSpec["target"] })).toThrow(TypeError);
    const { handle } = ownerJob(jobs);
    expect(() => handle.progress(-1)).toThrow(RangeError);
    expect(() => handle.progress(Number.NaN)).toThrow(RangeError);
    expect(() => handle.setBandwidth(-5)).toThrow(RangeError);
    const clock = createVirtualClock();
    const { bus } = recordingBus(clock);
    expect(() => createJobManager({ bus, clock, progressIntervalMs: -1 })).toThrow(RangeError);
    expect(() => createJobManager({ bus, clock, budgetBytesPerSecond: 1.5 })).toThrow(RangeError);
    expect(() => createJobManager({ bus: {} as EventBus, clock })).toThrow(TypeError);
    expect(() => createJobManager({ bus, clock: {} as VirtualClock })).toThrow(TypeError);
  });
});

describe("createJobManager: locks", () => {
  it("refuses a second job on a held resource, naming the holder", () => {
    const { jobs } = setup();
    const first = ownerJob(jobs, { locks: ["disk:web1/vda", "vol:/p/a.qcow2"] });
    expect(jobs.holder("vol:/p/a.qcow2")).toBe(first.job.id);
    let caught: unknown;
    try {
      ownerJob(jobs, { type: "volume-wipe", locks: ["vol:/p/a.qcow2"] });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConflictError);
    expect((caught as ConflictError).jobId).toBe(first.job.id);
    const message = (caught as Error).message;
    expect(message).toContain(`"${first.job.id}"`);
    expect(message).toContain("block-pull");
    expect(message).toContain("vol:/p/a.qcow2");
    expect(ownerJob(jobs, { locks: ["vol:/p/b.qcow2"] }).job.id).toBe("job-2"); // the refused one took no id
    expect(jobs.holder("nothing")).toBeUndefined();
  });

  it.each(["completed", "failed", "aborted"] as const)("releases locks when the holder ends %s", (end) => {
    const { jobs } = setup();
    const first = ownerJob(jobs, { locks: ["vol:a"] });
    drive(first.handle, end);
    expect(jobs.holder("vol:a")).toBeUndefined();
    expect(ownerJob(jobs, { locks: ["vol:a"] }).handle.state).toBe("created");
  });

  it("has the locks free by the time job:completed listeners run", () => {
    const { jobs, listen } = setup();
    const first = ownerJob(jobs, { locks: ["vol:a"] });
    let next: string | undefined;
    listen((event) => {
      if (event.type === "job:completed") next = ownerJob(jobs, { locks: ["vol:a"] }).job.id;
    });
    first.handle.setState("running");
    first.handle.complete("ok");
    expect(next).toBe("job-2");
    expect(jobs.holder("vol:a")).toBe("job-2");
  });
});

describe("createJobManager: wait and dismiss", () => {
  it("wait() resolves with the result, also when called after the end", async () => {
    const { jobs } = setup();
    const { handle, job } = ownerJob(jobs);
    const early = job.wait();
    handle.setState("running");
    handle.complete("the result");
    expect(await early).toBe("the result");
    expect(await job.wait()).toBe("the result");
  });

  it("wait() throws JobError with the final info on failed and aborted", async () => {
    const { jobs } = setup();
    const failing = ownerJob(jobs, { type: "volume-clone" });
    const pending = failing.job.wait();
    failing.handle.fail(new Error("no space left"));
    const failed = await rejection(pending);
    expect(failed).toBeInstanceOf(JobError);
    expect((failed as JobError).message).toBe(`Job "${failing.job.id}" (volume-clone) failed: no space left`);
    expect((failed as JobError).info).toMatchObject({ id: failing.job.id, state: "failed", error: "no space left" });
    expect(((failed as JobError).cause as Error).message).toBe("no space left");
    const aborting = ownerJob(jobs);
    aborting.handle.aborted();
    const aborted = await rejection(aborting.job.wait());
    expect(aborted).toBeInstanceOf(JobError);
    expect((aborted as JobError).message).toBe(`Job "${aborting.job.id}" (block-pull) was aborted`);
    expect((aborted as JobError).info.state).toBe("aborted");
  });

  it("wait() honours its signal and leaves the job running", async () => {
    const { jobs } = setup();
    const { handle, job } = ownerJob(jobs);
    handle.setState("running");
    const stop = new AbortController();
    const waiting = job.wait({ signal: stop.signal });
    const reason = new DOMException("enough", "AbortError");
    stop.abort(reason);
    expect(await rejection(waiting)).toBe(reason);
    expect(await rejection(job.wait({ signal: stop.signal }))).toBe(reason);
    expect(handle.state).toBe("running");
  });

  it("dismiss() works only when finished, removes the job, and a second dismiss is NotFoundError", async () => {
    const { jobs, types } = setup();
    const { handle, calls, job } = ownerJob(jobs);
    handle.setState("running");
    expect(await rejection(job.dismiss())).toBeInstanceOf(StateError);
    handle.complete("ok");
    expect(await jobs.list()).toEqual([job]);
    await job.dismiss();
    expect(calls).toEqual(["dismiss"]);
    expect(types().at(-1)).toBe("job:dismissed");
    expect(await jobs.list()).toEqual([]);
    expect(await rejection(job.dismiss())).toBeInstanceOf(NotFoundError);
    expect((await job.info()).state).toBe("completed"); // the object still reads its last state
    expect(await job.wait()).toBe("ok");
  });

  it("autoDismiss drops finished jobs after their terminal events", async () => {
    const { jobs, types } = setup({ autoDismiss: true });
    const { handle, calls, job } = ownerJob(jobs);
    handle.setState("running");
    expect(await jobs.list()).toEqual([job]);
    handle.fail(new Error("boom"));
    expect(types()).toEqual(["job:created", "job:state", "job:state", "job:failed", "job:dismissed"]);
    expect(await jobs.list()).toEqual([]);
    await expect(jobs.get(job.id)).rejects.toBeInstanceOf(NotFoundError);
    expect(await rejection(job.dismiss())).toBeInstanceOf(NotFoundError);
    expect(calls).toEqual(["dismiss"]); // the owner's peer hears of it too
    expect(((await rejection(job.wait())) as JobError).info.error).toBe("boom");
  });
});
