/**
 * jobSpecFromInfo: a job known from its JobInfo registers with the manager as the same job (finished
 * ones with their outcome, unfinished ones from `created`).
 */
import { describe, expect, it } from "vitest";
import { createVirtualClock } from "../../../core/clock.ts";
import { createEventBus } from "../../../core/event_bus.ts";
import type { JobInfo } from "../../../core/job.ts";
import { createJobManager } from "../../../core/jobs/job_manager.ts";
import { jobSpecFromInfo } from "../../../core/jobs/job_spec.ts";

const controller = { setSpeed: () => Promise.resolve(), abort: () => Promise.resolve() };
const info = (over: Partial<JobInfo>): JobInfo => ({
  id: "job-1", type: "volume-clone", state: "running", target: { pool: "p", volume: "v" },
  cur: 3, end: 8, bandwidth: 1024, bytesPerSecond: 0, createdAt: 5, ...over,
} as JobInfo);

describe("jobSpecFromInfo", () => {
  it("registers a completed job in its state, with its times and result", async () => {
    const clock = createVirtualClock();
    const jobs = createJobManager({ bus: createEventBus({ clock }), clock });
    const done = info({ state: "completed", cur: 8, finishedAt: 9 });
    jobs.create(jobSpecFromInfo(done, controller, { driver: "remote", result: { volume: "v" } }));
    const job = await jobs.get("job-1");
    expect(await job.info()).toMatchObject({ state: "completed", cur: 8, end: 8, bandwidth: 1024, createdAt: 5, finishedAt: 9 });
    expect(await job.wait()).toEqual({ volume: "v" });
  });

  it("starts an unfinished job in created, with its progress and creation time", async () => {
    const clock = createVirtualClock();
    const jobs = createJobManager({ bus: createEventBus({ clock }), clock });
    const spec = jobSpecFromInfo(info({ state: "paused" }), controller);
    expect(spec.finished).toBeUndefined();
    expect("driver" in spec).toBe(false);
    const handle = jobs.create(spec);
    expect(handle.state).toBe("created");
    expect(await handle.job.info()).toMatchObject({ state: "created", cur: 3, end: 8, createdAt: 5 });
  });
});
