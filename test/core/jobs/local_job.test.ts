import { describe, expect, it } from "vitest";
import { type Clock, createRealClock, createVirtualClock } from "../../../core/clock.ts";
import { ConflictError, JobError, NotFoundError, StateError, UnsupportedError } from "../../../core/errors.ts";
import type { EventBus } from "../../../core/event_bus.ts";
import type { CoreEvent, CoreEventPayloads, CoreEventType } from "../../../core/events.ts";
import type { Job } from "../../../core/job.ts";
import { createJobManager } from "../../../core/jobs/job_manager.ts";
import type { JobManagerOptions, LocalJobContext, LocalJobSpec } from "../../../core/jobs/types.ts";

/** A recording stand-in for the event bus: `emit` stamps and stores. */
function recordingBus(clock: Clock) {
  const events: CoreEvent[] = [];
  let seq = 0;
  const unused = (): never => {
    throw new Error("not part of this fake");
  };
  const bus: EventBus = {
    emit<K extends Exclude<CoreEventType, "gap">>(type: K, payload: CoreEventPayloads[K]): CoreEvent<K> {
      const event = { ...payload, seq: ++seq, time: clock.now(), type } as unknown as CoreEvent<K>;
      events.push(event);
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
  return { bus, events };
}

function setup(options: Partial<Omit<JobManagerOptions, "bus" | "clock">> = {}) {
  const clock = createVirtualClock();
  const { bus, events } = recordingBus(clock);
  const jobs = createJobManager({ bus, clock, ...options });
  const types = (job?: Job) =>
    events.filter((e) => !job || (e as { job?: { id: string } }).job?.id === job.id).map((e) => e.type);
  return { clock, jobs, events, types };
}

/** A copy-like body: checkpoint, take tokens, "write" a chunk into `target`, report progress. */
function copyInto(target: Uint8Array, chunkBytes: number, seen?: { ctx?: LocalJobContext }) {
  return async (ctx: LocalJobContext): Promise<number> => {
    if (seen) seen.ctx = ctx;
    let cur = 0;
    while (cur < target.length) {
      await ctx.checkpoint();
      const n = Math.min(chunkBytes, target.length - cur);
      await ctx.limiter.take(n, ctx.signal);
      target.fill(0xab, cur, cur + n);
      cur += n;
      ctx.progress(cur);
    }
    return cur;
  };
}

function spec<T>(run: (ctx: LocalJobContext) => Promise<T>, extra: Partial<LocalJobSpec<T>> = {}): LocalJobSpec<T> {
  return { type: "volume-clone", target: { pool: "p", volume: "v" }, endBytes: 1000, run, ...extra };
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection");
}

function written(target: Uint8Array): number {
  return target.filter((byte) => byte === 0xab).length;
}

describe("startLocal", () => {
  it("returns a running job whose body starts after the call", async () => {
    const { jobs, clock, events, types } = setup();
    let started = false;
    const job = jobs.startLocal(spec(async () => {
      started = true;
      return "made";
    }));
    expect(started).toBe(false);
    expect((await job.info()).state).toBe("running");
    expect(types()).toEqual(["job:created", "job:state"]);
    expect((events[0] as CoreEvent<"job:created">).job.state).toBe("created");
    await clock.advance(0);
    expect(started).toBe(true);
    expect(await job.wait()).toBe("made");
    expect(types()).toEqual(["job:created", "job:state", "job:state", "job:completed"]);
  });

  it("runs a capped copy to the end in the time the cap allows, reporting the final progress", async () => {
    const { jobs, clock, events } = setup();
    const target = new Uint8Array(1000);
    const seen: { ctx?: LocalJobContext } = {};
    const job = jobs.startLocal(spec(copyInto(target, 100, seen), { bandwidth: 1000 }));
    await clock.advance(500);
    expect(seen.ctx!.limiter.bytesPerSecond).toBe(1000);
    expect(seen.ctx!.limiter.parent).toBe(jobs.limiter);
    expect(seen.ctx!.clock).toBe(clock);
    const midway = await job.info();
    expect(midway.cur).toBeGreaterThanOrEqual(400);
    expect(midway.cur).toBeLessThanOrEqual(500);
    expect(midway.bytesPerSecond).toBeGreaterThan(800);
    expect(midway.bytesPerSecond).toBeLessThan(1200);
    expect(midway.etaMs).toBeGreaterThan(400);
    expect(midway.etaMs).toBeLessThan(700);
    await clock.advance(499);
    expect((await job.info()).state).toBe("running");
    await clock.advance(1);
    expect(await job.wait()).toBe(1000);
    expect(written(target)).toBe(1000);
    const progress = events.filter((e) => e.type === "job:progress") as Array<CoreEvent<"job:progress">>;
    expect(progress.at(-1)!.job.cur).toBe(1000);
    expect(events.findIndex((e) => e.type === "job:progress" && (e as CoreEvent<"job:progress">).job.cur === 1000))
      .toBeLessThan(events.findIndex((e) => e.type === "job:completed"));
  });

  it("applies setSpeed at once to the job's limiter and its info", async () => {
    const { jobs, clock } = setup();
    const seen: { ctx?: LocalJobContext } = {};
    const job = jobs.startLocal(spec(copyInto(new Uint8Array(1000), 100, seen), { bandwidth: 1000 }));
    await clock.advance(500);
    await job.setSpeed(2000);
    expect(seen.ctx!.limiter.bytesPerSecond).toBe(2000);
    expect((await job.info()).bandwidth).toBe(2000);
    await clock.advance(300);
    expect((await job.info()).state).toBe("completed"); // 500 B left at 2000 B/s: 250 ms
    for (const bad of [-1, Number.NaN, 1.5, 2 ** 60]) {
      expect(await rejection(jobs.startLocal(spec(async () => 0)).setSpeed(bad))).toBeInstanceOf(RangeError);
    }
  });

  it("pauses at the next checkpoint and resumes where it stopped", async () => {
    const { jobs, clock, types } = setup();
    const target = new Uint8Array(1000);
    const job = jobs.startLocal(spec(copyInto(target, 100), { bandwidth: 1000 }));
    await clock.advance(300);
    await job.pause();
    expect((await job.info()).state).toBe("paused");
    const atPause = (await job.info()).cur;
    await clock.advance(100); // a chunk already paid for may still land
    const stopped = (await job.info()).cur;
    expect(stopped - atPause).toBeLessThanOrEqual(100);
    await clock.advance(2000);
    expect((await job.info()).cur).toBe(stopped);
    expect(written(target)).toBe(stopped);
    expect((await job.info()).bytesPerSecond).toBe(0);
    await job.resume();
    expect((await job.info()).state).toBe("running");
    await clock.advance(1000 - stopped - 1); // the rest at the cap, less a millisecond
    expect((await job.info()).state).toBe("running");
    await clock.advance(1);
    expect((await job.info()).state).toBe("completed");
    expect(await job.wait()).toBe(1000);
    expect(types(job).filter((t) => t === "job:state")).toHaveLength(4); // running, paused, running, completed
  });

  it("completes a body that finished while paused only once resumed", async () => {
    const { jobs, clock } = setup();
    let finish!: () => void;
    const job = jobs.startLocal(spec(() => new Promise<string>((resolve) => (finish = () => resolve("late")))));
    await clock.advance(0);
    await job.pause();
    finish();
    await clock.advance(100);
    expect((await job.info()).state).toBe("paused");
    await job.resume();
    expect(await job.wait()).toBe("late");
  });

  it("shares the connection-wide budget between jobs", async () => {
    const { jobs, clock } = setup({ budgetBytesPerSecond: 1000 });
    expect(jobs.limiter.bytesPerSecond).toBe(1000);
    const a = jobs.startLocal(spec(copyInto(new Uint8Array(500), 100), { target: { volume: "a" } }));
    const b = jobs.startLocal(spec(copyInto(new Uint8Array(500), 100), { target: { volume: "b" } }));
    await clock.advance(850);
    // Together they get the budget, not twice it: 1000 B in total need a second.
    const [ia, ib] = [await a.info(), await b.info()];
    expect([ia.state, ib.state]).toEqual(["running", "running"]);
    expect(ia.cur + ib.cur).toBeLessThanOrEqual(900);
    expect(Math.abs(ia.cur - ib.cur)).toBeLessThanOrEqual(100);
    await clock.advance(150);
    expect(await a.wait()).toBe(500);
    expect(await b.wait()).toBe(500);
  });
});

describe("startLocal on the real clock", () => {
  it("runs, pauses, resumes and completes", async () => {
    const clock = createRealClock();
    const { bus, events } = recordingBus(clock);
    const jobs = createJobManager({ bus, clock, progressIntervalMs: 5 });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const job = jobs.startLocal(spec(async (ctx) => {
      ctx.progress(500);
      await gate;
      await ctx.checkpoint();
      ctx.progress(1000);
      return "real";
    }));
    await job.pause();
    release();
    await job.resume();
    expect(await job.wait()).toBe("real");
    expect((events.filter((e) => e.type === "job:progress").at(-1) as CoreEvent<"job:progress">).job.cur).toBe(1000);
    await jobs.close();
  });
});

describe("startLocal: abort and failure", () => {
  it("aborts through ctx.signal, runs cleanup, ends aborted", async () => {
    const { jobs, clock, types } = setup();
    const seen: { ctx?: LocalJobContext } = {};
    const cleanups: string[] = [];
    const job = jobs.startLocal(spec(copyInto(new Uint8Array(1000), 100, seen), {
      bandwidth: 100,
      cleanup: async (outcome) => void cleanups.push(outcome),
    }));
    await clock.advance(250);
    await job.abort();
    const reason = seen.ctx!.signal.reason as DOMException;
    expect(reason).toBeInstanceOf(DOMException);
    expect(reason.name).toBe("AbortError");
    expect(cleanups).toEqual(["aborted"]);
    expect((await job.info()).state).toBe("aborted");
    const error = await rejection(job.wait());
    expect(error).toBeInstanceOf(JobError);
    expect((error as JobError).info.state).toBe("aborted");
    expect(types(job).slice(-2)).toEqual(["job:state", "job:aborted"]);
    expect(await rejection(job.abort())).toBeInstanceOf(StateError);
  });

  it("aborts a paused job", async () => {
    const { jobs, clock } = setup();
    const job = jobs.startLocal(spec(copyInto(new Uint8Array(1000), 100), { bandwidth: 1000 }));
    await clock.advance(250);
    await job.pause();
    await clock.advance(200);
    await job.abort();
    expect((await job.info()).state).toBe("aborted");
  });

  it("fails with the body's error after cleanup('failed')", async () => {
    const { jobs, events } = setup();
    const cleanups: string[] = [];
    const job = jobs.startLocal(spec(async (ctx) => {
      ctx.progress(100);
      throw new Error("read error at 100");
    }, { cleanup: async (outcome) => void cleanups.push(outcome) }));
    const error = await rejection(job.wait());
    expect((error as JobError).message).toBe(`Job "${job.id}" (volume-clone) failed: read error at 100`);
    expect(cleanups).toEqual(["failed"]);
    expect(await job.info()).toMatchObject({ state: "failed", error: "read error at 100", cur: 100 });
    expect((events.at(-1) as CoreEvent<"job:failed">).error).toBe("read error at 100");
  });

  it("appends a cleanup failure to the error text without hiding the first", async () => {
    const { jobs, clock } = setup();
    const failing = jobs.startLocal(spec(async () => {
      throw new Error("write failed");
    }, { cleanup: async () => { throw new Error("cannot delete partial clone"); } }));
    expect(((await rejection(failing.wait())) as JobError).info.error)
      .toBe("write failed (cleanup failed: cannot delete partial clone)");
    const aborted = jobs.startLocal(spec(copyInto(new Uint8Array(1000), 100), {
      bandwidth: 100,
      target: { volume: "other" },
      cleanup: async () => { throw new Error("busy"); },
    }));
    await clock.advance(100);
    await aborted.abort();
    expect(await aborted.info()).toMatchObject({ state: "failed", error: "aborted, then cleanup failed: busy" });
  });

  it("fails a body that throws synchronously or reports bad progress", async () => {
    const { jobs } = setup();
    const sync = jobs.startLocal(spec((() => {
      throw new Error("sync boom");
    }) as unknown as () => Promise<number>));
    expect(((await rejection(sync.wait())) as JobError).info.error).toBe("sync boom");
    const bad = jobs.startLocal(spec(async (ctx) => void ctx.progress(-5), { target: { volume: "x" } }));
    expect(((await rejection(bad.wait())) as JobError).info.error).toMatch(/-5/);
  });

  it("checks its spec and locks before running anything", async () => {
    const { jobs, clock } = setup();
    expect(() => jobs.startLocal({ ...spec(async () => 0), run: undefined as never })).toThrow(TypeError);
    expect(() => jobs.startLocal(spec(async () => 0, { state: "running" }))).toThrow(RangeError);
    expect(() => jobs.startLocal(spec(async () => 0, { bandwidth: 1.5 }))).toThrow(RangeError);
    const first = jobs.startLocal(spec(copyInto(new Uint8Array(1000), 100), { bandwidth: 100, locks: ["vol:v"] }));
    let ran = false;
    let caught: unknown;
    try {
      jobs.startLocal(spec(async () => (ran = true), { locks: ["vol:v"] }));
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConflictError);
    expect((caught as ConflictError).jobId).toBe(first.id);
    await clock.advance(10);
    expect(ran).toBe(false);
    expect((await jobs.list()).map((job) => job.id)).toEqual([first.id]);
  });
});

describe("injectFailure", () => {
  it("fails a job now, even one blocked in a slow take", async () => {
    const { jobs, clock } = setup();
    const seen: { ctx?: LocalJobContext } = {};
    const cleanups: string[] = [];
    const target = new Uint8Array(1000);
    const job = jobs.startLocal(spec(copyInto(target, 100, seen), {
      bandwidth: 10, // one chunk takes 10 s
      cleanup: async (outcome) => void cleanups.push(outcome),
    }));
    await clock.advance(100);
    const injected = new Error("injected I/O error");
    jobs.injectFailure(job.id, injected);
    await clock.advance(0);
    expect(await job.info()).toMatchObject({ state: "failed", error: "injected I/O error", cur: 0 });
    expect(seen.ctx!.signal.reason).toBe(injected);
    expect(cleanups).toEqual(["failed"]);
    expect(((await rejection(job.wait())) as JobError).cause).toBe(injected);
    expect(written(target)).toBe(0);
  });

  it("fails when progress reaches atBytes, keeping what was written before", async () => {
    const { jobs, clock, events } = setup();
    const target = new Uint8Array(1000);
    const job = jobs.startLocal(spec(copyInto(target, 100), { bandwidth: 1000 }));
    jobs.injectFailure(job.id, new Error("bad sector"), { atBytes: 300 });
    await clock.advance(250);
    expect(await job.info()).toMatchObject({ state: "running", cur: 200 });
    await clock.advance(1000);
    expect(await job.info()).toMatchObject({ state: "failed", error: "bad sector", cur: 300 });
    expect(written(target)).toBe(300);
    expect(target.subarray(0, 300).every((byte) => byte === 0xab)).toBe(true);
    const progress = events.filter((e) => e.type === "job:progress") as Array<CoreEvent<"job:progress">>;
    expect(progress.at(-1)!.job.cur).toBe(300);
  });

  it("stops a body at the progress() that reaches atBytes, even with no checkpoint", async () => {
    const { jobs, clock } = setup();
    const target = new Uint8Array(1000);
    let reported = 0;
    const job = jobs.startLocal(spec(async (ctx) => {
      for (let cur = 0; cur < target.length; cur += 100) {
        target.fill(0xab, cur, cur + 100);
        ctx.progress(cur + 100);
        reported = cur + 100;
        await clock.sleep(10); // deliberately deaf to ctx.signal
      }
      return "ignored the signal";
    }));
    jobs.injectFailure(job.id, new Error("bad sector"), { atBytes: 500 });
    await clock.advance(1000);
    expect(reported).toBe(400); // the progress(500) call threw
    expect(written(target)).toBe(500);
    expect(await job.info()).toMatchObject({ state: "failed", error: "bad sector", cur: 500 });
  });

  it("fails at once when atBytes is already behind, and in a paused job", async () => {
    const { jobs, clock } = setup();
    const past = jobs.startLocal(spec(copyInto(new Uint8Array(1000), 100), { bandwidth: 1000 }));
    await clock.advance(450);
    jobs.injectFailure(past.id, new Error("late"), { atBytes: 100 });
    await clock.advance(0);
    expect((await past.info()).state).toBe("failed");
    const paused = jobs.startLocal(spec(copyInto(new Uint8Array(1000), 100), { bandwidth: 1000 }));
    await clock.advance(150);
    await paused.pause();
    await clock.advance(100);
    jobs.injectFailure(paused.id, new Error("while paused"));
    await clock.advance(0);
    expect(await paused.info()).toMatchObject({ state: "failed", error: "while paused" });
  });

  it("rejects unknown, finished and owner-driven jobs and bad arguments", async () => {
    const { jobs } = setup();
    const done = jobs.startLocal(spec(async () => 1));
    await done.wait();
    expect(() => jobs.injectFailure("job-99", new Error("x"))).toThrow(NotFoundError);
    expect(() => jobs.injectFailure(done.id, new Error("x"))).toThrow(StateError);
    const owned = jobs.create({
      type: "block-pull", target: {}, endBytes: 1, controller: { setSpeed: async () => {}, abort: async () => {} },
    });
    owned.setState("running");
    let caught: unknown;
    try {
      jobs.injectFailure(owned.job.id, new Error("x"));
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(UnsupportedError);
    expect((caught as UnsupportedError).operation).toBe("injectFailure");
    const running = jobs.startLocal(spec(copyInto(new Uint8Array(1000), 100), { bandwidth: 10, target: { volume: "r" } }));
    expect(() => jobs.injectFailure(running.id, "boom" as unknown as Error)).toThrow(TypeError);
    expect(() => jobs.injectFailure(running.id, new Error("x"), { atBytes: -1 })).toThrow(RangeError);
    expect((await running.info()).state).toBe("running");
  });
});

describe("close", () => {
  it("aborts every unfinished local job, waits for their cleanup, and refuses new jobs", async () => {
    const { jobs, clock } = setup();
    const cleanups: string[] = [];
    const cleanup = async (outcome: "failed" | "aborted") => {
      await clock.sleep(0);
      cleanups.push(outcome);
    };
    const a = jobs.startLocal(spec(copyInto(new Uint8Array(1000), 100), { bandwidth: 100, cleanup }));
    const b = jobs.startLocal(spec(copyInto(new Uint8Array(1000), 100), { bandwidth: 100, cleanup }));
    const finished = jobs.startLocal(spec(async () => "done"));
    const owned = jobs.create({
      type: "block-pull", target: {}, endBytes: 1, controller: { setSpeed: async () => {}, abort: async () => {} },
    });
    owned.setState("running");
    await clock.advance(150);
    await b.pause();
    let closed = false;
    const closing = jobs.close().then(() => (closed = true));
    await clock.advance(0);
    await closing;
    expect(closed).toBe(true);
    expect(cleanups).toEqual(["aborted", "aborted"]);
    expect((await a.info()).state).toBe("aborted");
    expect((await b.info()).state).toBe("aborted");
    expect((await finished.info()).state).toBe("completed");
    expect(owned.state).toBe("running");
    expect(() => jobs.startLocal(spec(async () => 0))).toThrow(StateError);
    expect(() => jobs.create({
      type: "block-pull", target: {}, endBytes: 1, controller: { setSpeed: async () => {}, abort: async () => {} },
    })).toThrow(StateError);
  });
});

describe("two-phase local jobs (ctx.ready)", () => {
  it("ready() reports ready and resolves on finalize(); the job then completes with the body's result", async () => {
    const { jobs, types } = setup();
    let finalized = false;
    const job = jobs.startLocal<string>({
      type: "block-copy",
      target: {},
      endBytes: 10,
      async run(ctx) {
        ctx.progress(10, 12);
        await ctx.ready();
        finalized = true;
        return "pivoted";
      },
    });
    await expect(job.finalize()).rejects.toBeInstanceOf(StateError);
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect((await job.info()).state).toBe("ready");
    expect([(await job.info()).cur, (await job.info()).end]).toEqual([10, 12]);
    expect(finalized).toBe(false);
    await job.finalize();
    expect(await job.wait()).toBe("pivoted");
    expect(types(job).filter((t) => t !== "job:progress")).toEqual(["job:created", "job:state", "job:state", "job:ready", "job:state", "job:completed"]);
  });

  it("abort() in ready rejects ready() with the abort reason and ends the job aborted, cleanup told so", async () => {
    const { jobs } = setup();
    const outcomes: string[] = [];
    const job = jobs.startLocal<void>({
      type: "block-copy",
      target: {},
      endBytes: 1,
      run: (ctx) => ctx.ready(),
      cleanup: async (outcome) => void outcomes.push(outcome),
    });
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect((await job.info()).state).toBe("ready");
    await job.abort();
    await expect(job.wait()).rejects.toBeInstanceOf(JobError);
    expect((await job.info()).state).toBe("aborted");
    expect(outcomes).toEqual(["aborted"]);
  });
});

describe("jobs that finished before the connection (spec.finished)", () => {
  it("are listed in their final state with their error, hold no lock, and emit only job:created", async () => {
    const { jobs, types } = setup();
    const handle = jobs.create<void>({
      id: "job-9",
      type: "block-pull",
      target: { domain: "web1", disk: "vda" },
      endBytes: 8,
      cur: 3,
      state: "failed",
      locks: ["disk:web1/vda"],
      finished: { error: "QEMU was killed", createdAt: 5, finishedAt: 7 },
      controller: { setSpeed: async () => {}, abort: async () => {} },
    });
    const info = await handle.job.info();
    expect([info.state, info.error, info.cur, info.createdAt, info.finishedAt]).toEqual(["failed", "QEMU was killed", 3, 5, 7]);
    expect(jobs.holder("disk:web1/vda")).toBeUndefined();
    await expect(handle.job.wait()).rejects.toBeInstanceOf(JobError);
    expect(types(handle.job)).toEqual(["job:created"]);
    await handle.job.dismiss();
    await expect(jobs.get("job-9")).rejects.toBeInstanceOf(NotFoundError);
    expect(() => jobs.create({ type: "x", target: {}, endBytes: 1, state: "running", finished: { createdAt: 0, finishedAt: 0 }, controller: { setSpeed: async () => {}, abort: async () => {} } }))
      .toThrow(RangeError);
  });
});
