/**
 * The block-pull wiring against the fake QMP peer: the exact QMP exchange, event-driven states, QEMU's
 * error reports, and the fault paths real QEMU cannot be made to show (garbage on the socket, a hang-up,
 * a refused stream, a job that concluded while nobody listened).
 */
import { afterEach, describe, expect, it } from "vitest";
import { JobError, QmpError } from "../../../core/errors.ts";
import { QemuBlockJob } from "../../../drivers/qemu/block_job.ts";
import { startQemuPull } from "../../../drivers/qemu/block_pull.ts";
import type { FakeQmpPeer } from "../../../drivers/qemu/qmp/testing/mod.ts";
import { fakeInstance, jsc } from "./_fake_qemu.ts";
import { until } from "./_support.ts";

const MiB = 1024 * 1024;
const peers: FakeQmpPeer[] = [];
afterEach(async () => {
  for (const peer of peers.splice(0)) await peer[Symbol.asyncDispose]();
});

async function setup() {
  const { clock, bus, jobs, peer, qmp, inst } = await fakeInstance(peers);
  const persisted: number[] = [];
  const finished: string[] = [];
  const env = {
    jobs,
    clock,
    track: () => {},
    persist: () => Promise.resolve(void persisted.push(1)),
    setDiskSource: () => Promise.resolve(),
    removeImage: () => Promise.resolve(),
    finished: (job: QemuBlockJob) => Promise.resolve(void finished.push(job.id)),
    dismissed: () => Promise.resolve(),
  };
  const events: string[] = [];
  const qmpEvents: string[] = [];
  bus.on("*", (e) => {
    if (e.type === "qmp:event") qmpEvents.push(`${e.name}${(e.data as { status?: string }).status ? `:${(e.data as { status: string }).status}` : ""}`);
    else events.push(e.type === "job:state" ? `job:state:${e.job.state}` : e.type);
  });
  return { clock, bus, jobs, peer, qmp, inst, env, events, qmpEvents, persisted, finished };
}

describe("qemu block pull over QMP (fake peer)", () => {
  it("sends block-stream with manual finalize/dismiss, finalizes on pending, dismisses, then completes", async () => {
    const { peer, inst, env, events, qmpEvents } = await setup();
    peer.expect("block-stream", { return: {} }, {
      args: { "job-id": "job-1", device: "vda-0", speed: MiB, "auto-finalize": false, "auto-dismiss": false },
      emitBefore: [jsc("job-1", "created"), jsc("job-1", "running")],
    });
    peer.expect("query-jobs", {
      return: [{ id: "job-1", type: "stream", status: "running", "current-progress": MiB, "total-progress": 4 * MiB }],
    });
    const pull = await startQemuPull(env, inst, inst.disks[0]!, { bandwidth: MiB });
    const job = pull.job;
    expect((await job.info()).state).toBe("running");
    await peer.whenReceived(3);
    await until(async () => (await job.info()).cur === MiB, "progress from query-jobs");
    peer.expect("job-finalize", { return: {} }, {
      args: { id: "job-1" },
      thenEmit: [
        { event: "BLOCK_JOB_COMPLETED", data: { device: "job-1", len: 4 * MiB, offset: 4 * MiB, speed: MiB, type: "stream" } },
        jsc("job-1", "concluded"),
      ],
    });
    peer.expect("job-dismiss", { return: {} }, { args: { id: "job-1" }, thenEmit: [jsc("job-1", "null")] });
    peer.emit(jsc("job-1", "waiting"));
    peer.emit(jsc("job-1", "pending"));
    await job.wait();
    const info = await job.info();
    expect([info.state, info.cur, info.end]).toEqual(["completed", 4 * MiB, 4 * MiB]);
    expect(inst.disks[0]!.layers.map((l) => l.node)).toEqual(["vda-0"]);
    expect(events).toEqual(["job:created", "job:state:running", "job:progress", "job:progress", "job:state:completed", "job:completed"]);
    expect(pull.inQemu).toBe(false);
    expect(qmpEvents).toEqual([
      "JOB_STATUS_CHANGE:created",
      "JOB_STATUS_CHANGE:running",
      "JOB_STATUS_CHANGE:waiting",
      "JOB_STATUS_CHANGE:pending",
      "BLOCK_JOB_COMPLETED",
      "JOB_STATUS_CHANGE:concluded",
      "JOB_STATUS_CHANGE:null",
    ]);
    await job.dismiss();
    peer.assertDone();
  });

  it("setSpeed, pause, resume and abort map to their QMP commands and wait for QEMU's state", async () => {
    const { peer, inst, env } = await setup();
    peer.expect("block-stream", { return: {} }, { emitBefore: [jsc("job-1", "created"), jsc("job-1", "running")] });
    peer.expect("query-jobs", { return: [] });
    const { job } = await startQemuPull(env, inst, inst.disks[0]!, {});
    await peer.whenReceived(3);
    peer.expect("block-job-set-speed", { return: {} }, { args: { device: "job-1", speed: 2 * MiB } });
    await job.setSpeed(2 * MiB);
    expect((await job.info()).bandwidth).toBe(2 * MiB);
    peer.expect("job-pause", { return: {} }, { args: { id: "job-1" }, thenEmit: [jsc("job-1", "paused")] });
    await job.pause();
    expect((await job.info()).state).toBe("paused");
    peer.expect("job-resume", { return: {} }, { args: { id: "job-1" }, thenEmit: [jsc("job-1", "running")] });
    await job.resume();
    expect((await job.info()).state).toBe("running");
    peer.expect("job-cancel", { return: {} }, {
      args: { id: "job-1" },
      thenEmit: [
        jsc("job-1", "aborting"),
        { event: "BLOCK_JOB_CANCELLED", data: { device: "job-1", len: 4 * MiB, offset: MiB, speed: 2 * MiB, type: "stream" } },
        jsc("job-1", "concluded"),
      ],
    });
    peer.expect("job-dismiss", { return: {} }, { args: { id: "job-1" } });
    await job.abort();
    expect((await job.info()).state).toBe("aborted");
    await expect(job.wait()).rejects.toBeInstanceOf(JobError);
    expect(inst.disks[0]!.layers.length).toBe(2);
    peer.assertDone();
  });

  it("a refused block-stream throws QEMU's error and leaves no job and no lock", async () => {
    const { peer, inst, env, jobs } = await setup();
    peer.expect("block-stream", { error: { class: "GenericError", desc: "Node 'vda-0' is busy: block device is in use by block job: stream" } });
    const error = await startQemuPull(env, inst, inst.disks[0]!, {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(QmpError);
    expect((error as QmpError).errorClass).toBe("GenericError");
    expect(await jobs.list()).toEqual([]);
    expect(jobs.holder("disk:vm/vda")).toBeUndefined();
  });

  it("BLOCK_JOB_COMPLETED with an error fails the job with QEMU's text and the BLOCK_JOB_ERROR detail", async () => {
    const { peer, inst, env } = await setup();
    peer.expect("block-stream", { return: {} }, { emitBefore: [jsc("job-1", "created"), jsc("job-1", "running")] });
    peer.expect("query-jobs", { return: [] });
    const { job } = await startQemuPull(env, inst, inst.disks[0]!, {});
    await peer.whenReceived(3);
    peer.expect("job-dismiss", { return: {} }, { args: { id: "job-1" } });
    peer.emit({ event: "BLOCK_JOB_ERROR", data: { device: "job-1", operation: "read", action: "report" } });
    peer.emit(jsc("job-1", "aborting"));
    peer.emit({ event: "BLOCK_JOB_COMPLETED", data: { device: "job-1", len: 4 * MiB, offset: MiB, speed: 0, type: "stream", error: "Input/output error" } });
    peer.emit(jsc("job-1", "concluded"));
    await expect(job.wait()).rejects.toBeInstanceOf(JobError);
    expect((await job.info()).error).toBe('Block pull of disk "vda" of domain "vm" failed: Input/output error; read error (action report)');
  });

  it("garbage on the QMP socket closes it with a typed error; the job fails and the domain is reported crashed", async () => {
    const { peer, inst, env, qmp, events } = await setup();
    peer.expect("block-stream", { return: {} }, { emitBefore: [jsc("job-1", "created"), jsc("job-1", "running")] });
    peer.expect("query-jobs", { return: [] });
    const { job } = await startQemuPull(env, inst, inst.disks[0]!, {});
    await peer.whenReceived(3);
    peer.allowUnused();
    peer.sendRaw("this is not JSON\r\n");
    const closed = await qmp.closed.then(() => undefined, (e: unknown) => e);
    expect((closed as Error).name).toBe("QmpProtocolError");
    await expect(job.wait()).rejects.toBeInstanceOf(JobError);
    expect((await job.info()).error).toMatch(/^Block pull of disk "vda" of domain "vm" failed: QEMU \(pid \d+\) exited/);
    await inst.ended;
    expect(inst.state).toBe("crashed");
    expect(events.slice(-3)).toEqual(["job:state:failed", "job:failed", "domain:crashed"]);
  });

  it("a hang-up fails the job; verbs then reject instead of hanging", async () => {
    const { peer, inst, env } = await setup();
    peer.expect("block-stream", { return: {} }, { emitBefore: [jsc("job-1", "created"), jsc("job-1", "running")] });
    peer.expect("query-jobs", { return: [] });
    const { job } = await startQemuPull(env, inst, inst.disks[0]!, {});
    await peer.whenReceived(3);
    peer.hangUp();
    await expect(job.wait()).rejects.toBeInstanceOf(JobError);
    expect((await job.info()).state).toBe("failed");
    await job.dismiss();
  });

  it("re-attaching a job that finished its work while nobody listened finalizes, dismisses and completes it", async () => {
    const { peer, inst, env, finished } = await setup();
    peer.expect("job-finalize", { return: {} }, {
      args: { id: "job-3" },
      thenEmit: [
        { event: "BLOCK_JOB_COMPLETED", data: { device: "job-3", len: 4 * MiB, offset: 4 * MiB, speed: 0, type: "stream" } },
        jsc("job-3", "concluded"),
      ],
    });
    peer.expect("job-dismiss", { return: {} }, { args: { id: "job-3" } });
    const pull = await QemuBlockJob.attach(env, inst, { id: "job-3", disk: "vda", endBytes: 4 * MiB, bandwidth: 0 }, {
      id: "job-3",
      type: "stream",
      status: "pending",
      "current-progress": 4 * MiB,
      "total-progress": 4 * MiB,
    });
    // Finished before attach() resolves: a new connection lists it completed at once, never "running".
    expect((await pull.job.info()).state).toBe("completed");
    expect(finished).toEqual(["job-3"]);
    await pull.job.wait();
    expect((await pull.job.info()).cur).toBe(4 * MiB);
    expect(inst.disks[0]!.layers.length).toBe(1);
    peer.assertDone();
  });

  it("re-attaching a paused job keeps its id, state, progress and cap; resume() then works as usual", async () => {
    const { peer, inst, env, clock } = await setup();
    const pull = await QemuBlockJob.attach(env, inst, { id: "job-5", disk: "vda", endBytes: 4 * MiB, bandwidth: 2 * MiB }, {
      id: "job-5",
      type: "stream",
      status: "paused",
      "current-progress": 3 * MiB,
      "total-progress": 4 * MiB,
    });
    expect(await pull.job.info()).toMatchObject({ id: "job-5", state: "paused", cur: 3 * MiB, end: 4 * MiB, bandwidth: 2 * MiB });
    expect(pull.job.target).toEqual({ domain: "vm", disk: "vda" });
    peer.expect("job-resume", { return: {} }, { args: { id: "job-5" }, thenEmit: [jsc("job-5", "running")] });
    await pull.job.resume();
    expect((await pull.job.info()).state).toBe("running");
    // Progress is polled every 100 ms of the connection's clock while the job runs (not while paused).
    peer.expect("query-jobs", {
      return: [{ id: "job-5", type: "stream", status: "running", "current-progress": 3.5 * MiB, "total-progress": 4 * MiB }],
    });
    await clock.advance(100);
    await until(async () => (await pull.job.info()).cur === 3.5 * MiB, "polled progress");
    peer.assertDone();
  });

  it("an aborted signal refuses the pull before QEMU is asked", async () => {
    const { inst, env, jobs } = await setup();
    const reason = new Error("stop");
    await expect(startQemuPull(env, inst, inst.disks[0]!, { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    expect(await jobs.list()).toEqual([]);
  });

  it("re-attaching a job that concluded with an error while nobody listened reports it failed", async () => {
    const { peer, inst, env } = await setup();
    peer.expect("job-dismiss", { return: {} }, { args: { id: "job-7" } });
    const pull = await QemuBlockJob.attach(env, inst, { id: "job-7", disk: "vda", endBytes: 4 * MiB, bandwidth: MiB }, {
      id: "job-7",
      type: "stream",
      status: "concluded",
      "current-progress": MiB,
      "total-progress": 4 * MiB,
      error: "No space left on device",
    });
    expect(pull.job.id).toBe("job-7");
    await expect(pull.job.wait()).rejects.toBeInstanceOf(JobError);
    expect((await pull.job.info()).error).toContain("No space left on device");
    peer.assertDone();
  });
});
