import { describe, expect, it } from "vitest";
import { createEventBus } from "../../../core/event_bus.ts";
import type { JobInfo } from "../../../core/job.ts";
import { createJobManager } from "../../../core/jobs/job_manager.ts";
import { createJobMirror, type JobMirrorOptions } from "../../../core/jobs/job_mirror.ts";
import { ConflictError, createVirtualClock, JobError, NotFoundError, StateError } from "../../../mod.ts";

function peerJob(over: Partial<JobInfo> = {}): JobInfo {
  return { id: "job-7", type: "volume-clone", state: "running", target: { pool: "p", volume: "v" }, cur: 0, end: 100, bandwidth: 0, bytesPerSecond: 0, createdAt: 5, ...over };
}

function setup(options: Partial<JobMirrorOptions> = {}) {
  const clock = createVirtualClock();
  const bus = createEventBus({ clock });
  const jobs = createJobManager({ bus, clock, progressIntervalMs: 0 });
  const sent: string[] = [];
  const events: string[] = [];
  bus.on("job:*", (e) => void events.push(`${e.type}${e.type === "job:state" ? ` ${e.job.state}` : ""}`));
  const mirror = createJobMirror({
    jobs,
    clock,
    send: async (id, verb, bps) => void sent.push(`${verb} ${id}${verb === "setSpeed" ? ` ${bps}` : ""}`),
    fetch: async () => undefined,
    ...options,
  });
  return { clock, bus, jobs, mirror, sent, events };
}

describe("core/jobs/job_mirror: a peer's jobs in the connection's job manager", () => {
  it("follows the peer's snapshots along the state machine, with progress and the peer's createdAt", async () => {
    const { jobs, mirror, events } = setup();
    await mirror.update(peerJob({ state: "created" }));
    const job = await jobs.get("job-7");
    expect((await job.info()).createdAt).toBe(5);
    await mirror.update(peerJob({ cur: 40 }));
    expect(await job.info()).toMatchObject({ state: "running", cur: 40 });
    await mirror.update(peerJob({ state: "paused", cur: 50 }));
    // A jump from paused to completed passes through running, as the state machine requires.
    await mirror.update(peerJob({ state: "completed", cur: 100, finishedAt: 9 }));
    expect(await job.info()).toMatchObject({ state: "completed", cur: 100 });
    expect(events).toEqual([
      "job:created", "job:state running", "job:progress", "job:state paused", "job:progress",
      "job:progress", "job:state running", "job:state completed", "job:completed",
    ]);
    // Nothing moves a finished mirror.
    await mirror.update(peerJob({ state: "running", cur: 1 }));
    expect((await job.info()).state).toBe("completed");
    // First seen paused: created here too, then along the edges, as listeners expect of any job.
    events.length = 0;
    await mirror.update(peerJob({ id: "job-8", state: "paused" }));
    expect(events).toEqual(["job:created", "job:state running", "job:state paused"]);
  });

  it("carries verbs to the peer; a verb resolves on the peer's word, or on a fetched snapshot when it is late", async () => {
    let snapshot: JobInfo | undefined;
    const { clock, jobs, mirror, sent } = setup({ fetch: async () => snapshot, settleMs: 500 });
    await mirror.update(peerJob());
    const job = await jobs.get("job-7");
    await expect(job.resume()).rejects.toBeInstanceOf(StateError); // checked here, never sent
    const pausing = job.pause();
    await Promise.resolve();
    await mirror.update(peerJob({ state: "paused" }));
    await pausing;
    expect((await job.info()).state).toBe("paused");
    // The peer's event is lost: after settleMs the mirror asks for the job and applies what it says.
    snapshot = peerJob({ state: "running", cur: 10 });
    const resuming = job.resume();
    await clock.advance(500);
    await resuming;
    expect(await job.info()).toMatchObject({ state: "running", cur: 10 });
    await job.setSpeed(2048);
    expect((await job.info()).bandwidth).toBe(2048);
    const aborting = job.abort();
    await Promise.resolve();
    await mirror.update(peerJob({ state: "aborted", cur: 10 }));
    await aborting;
    await expect(job.wait()).rejects.toBeInstanceOf(JobError);
    expect(sent).toEqual(["pause job-7", "resume job-7", "setSpeed job-7 2048", "abort job-7"]);
  });

  it("a job dismissed on the peer leaves the list; a local dismiss is not undone by its echo", async () => {
    const { jobs, mirror, sent } = setup();
    await mirror.update(peerJob({ id: "job-1", state: "completed", cur: 100, finishedAt: 6 }));
    await mirror.update(peerJob({ id: "job-2", state: "failed", error: "disk full", finishedAt: 6 }));
    expect((await (await jobs.get("job-2")).info()).error).toBe("disk full");
    await mirror.dismissed("job-1");
    await expect(jobs.get("job-1")).rejects.toBeInstanceOf(NotFoundError);
    const job2 = await jobs.get("job-2");
    const dismissing = job2.dismiss();
    void mirror.dismissed("job-2"); // the peer's job:dismissed overtakes the verb's reply
    await dismissing;
    expect(sent).toEqual(["dismiss job-2"]);
    expect(await jobs.list()).toEqual([]);
  });

  it("a listing drops what the peer no longer has (failing the unfinished) but keeps jobs first seen after its mark", async () => {
    const { jobs, mirror } = setup();
    await mirror.update(peerJob({ id: "job-1" }));
    await mirror.update(peerJob({ id: "job-2", state: "completed", finishedAt: 1 }));
    const mark = mirror.mark();
    await mirror.update(peerJob({ id: "job-3" }));
    const job1 = await jobs.get("job-1");
    await mirror.sync([peerJob({ id: "job-4", state: "paused" })], { seenBefore: mark });
    expect((await jobs.list()).map((j) => j.id)).toEqual(["job-3", "job-4"]);
    await expect(job1.wait()).rejects.toThrow(/no longer known/);
    expect((await (await jobs.get("job-4")).info()).state).toBe("paused");
    // The peer is gone: what still runs there can no longer be followed.
    await mirror.lost(new Error("peer gone"));
    expect((await (await jobs.get("job-4")).info())).toMatchObject({ state: "failed", error: "peer gone" });
    expect((await (await jobs.get("job-3")).info()).state).toBe("failed");
  });

  it("finds the job a request started; mirrored jobs hold their locks here; wait() resolves to resultOf", async () => {
    const { jobs, mirror } = setup({
      locksOf: (info) => [`volume:${info.target.pool}/${info.target.volume}`],
      resultOf: async (info) => `volume ${info.target.volume}`,
    });
    await mirror.update(peerJob({ id: "job-1", target: { pool: "p", volume: "old" } }));
    const mine = mirror.expect((info) => info.type === "volume-clone");
    const cancelled = mirror.expect(() => true);
    cancelled.cancel();
    await mirror.update(peerJob({ id: "job-2" }));
    expect((await mine.job).id).toBe("job-2");
    expect(jobs.holder("volume:p/v")).toBe("job-2");
    expect(() => jobs.create({ type: "volume-wipe", target: {}, endBytes: 1, locks: ["volume:p/v"], controller: { setSpeed: async () => {}, abort: async () => {} } }))
      .toThrow(ConflictError);
    // A stale lock (the end of job-2 is still on its way) does not keep the peer's next job out.
    await mirror.update(peerJob({ id: "job-3" }));
    expect((await jobs.list()).map((j) => j.id)).toContain("job-3");
    await mirror.update(peerJob({ id: "job-2", state: "completed", cur: 100, finishedAt: 8 }));
    expect(await (await jobs.get("job-2")).wait()).toBe("volume v");
  });
});
