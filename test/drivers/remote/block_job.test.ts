/**
 * The remote driver's two-phase block jobs over a scripted RPC client (what a real libvirtd cannot be
 * made to do on demand): `ready` from polling alone (GET_BLOCK_JOB_INFO cur == end, no READY event),
 * `finalize()` as BLOCK_JOB_ABORT with PIVOT, the destination cleanup on an abort before `ready` and
 * on a refused start, none after `ready`, and a COMPLETED event during an abort still ending `aborted`.
 */
import { describe, expect, it } from "vitest";
import { createRealClock } from "../../../core/clock.ts";
import { createEventBus } from "../../../core/event_bus.ts";
import { ConflictError, UnsupportedError } from "../../../core/errors.ts";
import type { JobState } from "../../../core/job.ts";
import { createJobManager } from "../../../core/jobs/job_manager.ts";
import { type BlockJobEnv, RemoteBlockJob } from "../../../drivers/remote/block_job.ts";
import type { RpcClient } from "../../../drivers/remote/rpc/client.ts";
import { BlockJobAbortFlags, BlockJobStatus } from "../../../drivers/remote/rpc/protocol/domain.ts";

const dom = { name: "vm1", uuid: "6695eb01-f6a4-8304-79aa-97f2502e193f", id: 1 };

function harness(options: { refuseStart?: Error; onAbort?: (flags: number, emit: (status: number) => void) => void; eventDuringStart?: number; twoPhase?: boolean } = {}) {
  const clock = createRealClock();
  const bus = createEventBus({ clock });
  const jobs = createJobManager({ bus, clock });
  const calls: Array<{ proc: number; flags?: number }> = [];
  const state = { info: { found: 1, type: 2, bandwidth: 0, cur: 0, end: 1000 }, cleanups: 0 };
  let emit: (status: number) => void = () => {};
  const client = {
    closed: false,
    call: async (proc: { number: number }, args: { flags?: number }) => {
      calls.push({ proc: proc.number, ...(args?.flags === undefined ? {} : { flags: args.flags }) });
      if (proc.number === 238) return state.info;
      if (proc.number === 237) options.onAbort?.(args.flags ?? 0, emit);
      return undefined;
    },
  } as unknown as RpcClient;
  const env: BlockJobEnv = {
    client,
    jobs,
    route: (_uuid, _disk, onStatus) => {
      emit = onStatus;
      return () => (emit = () => {});
    },
  };
  const start = () =>
    RemoteBlockJob.start(env, dom, "vda", {
      type: "block-copy",
      verb: "copy",
      twoPhase: options.twoPhase ?? true,
      bandwidth: 0,
      locks: ["disk:vm1/vda"],
      begin: async () => {
        if (options.refuseStart) throw options.refuseStart;
        // libvirt's event can overtake the reply of the call that started the job.
        if (options.eventDuringStart !== undefined) emit(options.eventDuringStart);
      },
      cleanup: async () => void state.cleanups++,
    });
  const reaches = (jobId: string, wanted: JobState) =>
    new Promise<void>((resolve) => {
      const off = bus.on("job:state", (e) => e.job.id === jobId && e.job.state === wanted && (off(), resolve()));
    });
  return { bus, jobs, calls, state, start, reaches, emit: (status: number) => emit(status) };
}

describe("remote block jobs: two phases over a scripted client", () => {
  it("becomes ready when a poll reads cur == end with no READY event, and finalize() pivots", async () => {
    const h = harness({ onAbort: (flags, emit) => flags === BlockJobAbortFlags.PIVOT && emit(BlockJobStatus.COMPLETED) });
    const job = await h.start();
    expect((await job.info()).state).toBe("running");
    await expect(job.finalize()).rejects.toMatchObject({ name: "StateError" });
    const ready = h.reaches(job.id, "ready");
    h.state.info = { ...h.state.info, cur: 1000 };
    await ready;
    expect((await job.info())).toMatchObject({ state: "ready", cur: 1000, end: 1000 });
    await job.finalize();
    await job.wait();
    expect((await job.info()).state).toBe("completed");
    expect(h.calls.filter((c) => c.proc === 237)).toEqual([{ proc: 237, flags: BlockJobAbortFlags.PIVOT }]);
    expect(h.state.cleanups).toBe(0);
  });

  it("aborted before ready: the cleanup removes what the start made; a COMPLETED event during the abort still means aborted", async () => {
    const h = harness({ onAbort: (_flags, emit) => emit(BlockJobStatus.COMPLETED) });
    const job = await h.start();
    await job.abort();
    await expect(job.wait()).rejects.toMatchObject({ name: "JobError" });
    expect((await job.info()).state).toBe("aborted");
    expect(h.calls.filter((c) => c.proc === 237)).toEqual([{ proc: 237, flags: 0 }]);
    expect(h.state.cleanups).toBe(1);
  });

  it("aborted in ready: the copy stays (no cleanup); a READY event makes it ready at once", async () => {
    const h = harness();
    const job = await h.start();
    h.emit(BlockJobStatus.READY);
    expect((await job.info()).state).toBe("ready");
    await job.abort();
    expect((await job.info()).state).toBe("aborted");
    expect(h.state.cleanups).toBe(0);
  });

  it("a refused start fails and dismisses the job, runs the cleanup, and throws libvirt's error", async () => {
    const refused = new Error("disk 'vda' already in active block job");
    const h = harness({ refuseStart: refused });
    await expect(h.start()).rejects.toBe(refused);
    expect(await h.jobs.list()).toEqual([]);
    expect(h.state.cleanups).toBe(1);
    expect(h.jobs.holder("disk:vm1/vda")).toBeUndefined();
  });

  it("libvirt's refusal of a busy disk (OPERATION_UNSUPPORTED, \"already in active block job\") is a ConflictError", async () => {
    const refused = new UnsupportedError("copy", { driver: "remote", detail: "Operation not supported: disk 'vda' already in active block job" });
    const h = harness({ refuseStart: refused });
    const error = await h.start().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConflictError);
    expect((error as Error).message).toMatch(/Cannot .* disk "vda" of domain "vm1": disk 'vda' already in active block job$/);
    expect((error as Error).cause).toBe(refused);
    expect(h.state.cleanups).toBe(1);
  });

  it("a job whose COMPLETED event overtakes the start call's reply ends completed (running, then completed)", async () => {
    const h = harness({ twoPhase: false, eventDuringStart: BlockJobStatus.COMPLETED });
    const states: JobState[] = [];
    const seen = new Promise<void>((resolve) => {
      const off = h.bus.on("job:state", (e) => (states.push(e.job.state), e.job.state === "completed" && (off(), resolve())));
    });
    const job = await h.start();
    await job.wait();
    expect((await job.info()).state).toBe("completed");
    await seen;
    expect(states.filter((s) => s !== "created")).toEqual(["running", "completed"]);
  });

  it("a FAILED event fails the job with a message naming the disk and domain", async () => {
    const h = harness();
    const job = await h.start();
    h.emit(BlockJobStatus.FAILED);
    await expect(job.wait()).rejects.toMatchObject({ name: "JobError" });
    expect((await job.info()).error).toMatch(/Block copy of disk "vda" of domain "vm1" failed/);
    expect(h.state.cleanups).toBe(1);
  });
});
