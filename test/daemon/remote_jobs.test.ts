/**
 * The remote driver's `conn.jobs` on virtkitd: every daemon job is listed (started by virsh or another
 * client, storage jobs included), with live state and progress from the extension's events, and the
 * verbs libvirt lacks (pause, resume, dismiss) reach the daemon; a job this client starts through a
 * libvirt procedure is the daemon's job, once.
 */
import { describe, expect, it } from "vitest";
import { connect, JobError, KiB, MiB, type Connection, type CoreEvent, type Job } from "../../mod.ts";
import { useVirtkitd, type VirtkitdProcess, skipDaemon, virsh } from "./_support/virtkitd.ts";

async function until<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Records a connection's job events of one job. */
function recordJob(conn: Connection): { events: CoreEvent[]; of(id: string): string[]; stop(): void } {
  const events: CoreEvent[] = [];
  const stop = conn.events.on("job:*", (e) => void events.push(e));
  return { events, of: (id) => events.filter((e) => "job" in e && e.job.id === id).map((e) => e.type), stop };
}

describe.skipIf(skipDaemon)("remote driver: conn.jobs on virtkitd", () => {
  let daemon: VirtkitdProcess;
  useVirtkitd((d) => (daemon = d));

  it("lists a pull virsh started, follows it live, and pauses, resumes and aborts it through the daemon", async () => {
    await using watcher = await connect(daemon.uri());
    await using other = await connect(daemon.uri());
    const seen = recordJob(watcher);
    expect((await virsh(daemon.uri(), ["blockpull", "test", "vda", "--bandwidth", "1"])).code).toBe(0);
    const [job] = await watcher.jobs.list({ type: "block-pull", state: "running" });
    expect(job?.target).toMatchObject({ domain: "test", disk: "vda" });
    const id = job!.id;
    // The same daemon job, under the same id, on another connection.
    expect((await other.jobs.get(id)).type).toBe("block-pull");
    const first = (await job!.info()).cur;
    await until(async () => ((await job!.info()).cur > first ? true : undefined), "progress from the daemon");
    await until(async () => (seen.of(id).includes("job:progress") ? true : undefined), "a job:progress event");
    // Pause on one connection; the other sees it from the daemon's events.
    const otherJob = await other.jobs.get(id);
    await otherJob.pause();
    expect((await otherJob.info()).state).toBe("paused");
    await until(async () => ((await job!.info()).state === "paused" ? true : undefined), "the pause to reach the watcher");
    expect(seen.of(id)).toContain("job:state");
    await job!.resume();
    expect((await job!.info()).state).toBe("running");
    await job!.setSpeed(MiB(2));
    // The new cap reaches the other client with the daemon's next snapshot of the job.
    await until(async () => ((await otherJob.info()).bandwidth === MiB(2) ? true : undefined), "the new cap on the other client");
    await job!.abort();
    await expect(job!.wait()).rejects.toBeInstanceOf(JobError);
    await until(async () => ((await otherJob.info()).state === "aborted" ? true : undefined), "the abort to reach the other client");
    await until(async () => (seen.of(id).includes("job:aborted") ? true : undefined), "job:aborted on the watcher");
    // Dismissed by the other client: gone here too.
    await otherJob.dismiss();
    await until(async () => ((await watcher.jobs.list()).some((j) => j.id === id) ? undefined : true), "the dismissal to reach the watcher");
    seen.stop();
  }, 60_000);

  it("a pull this client starts is the daemon's job, listed once under the daemon's id", async () => {
    await using conn = await connect(daemon.uri());
    await using other = await connect(daemon.uri());
    const dom = await conn.domains.get("test");
    const job: Job<void> = await dom.blockPull("vda", { bandwidth: MiB(1) });
    const pulls = await conn.jobs.list({ type: "block-pull", state: "running" });
    expect(pulls.map((j) => j.id)).toEqual([job.id]);
    expect((await other.jobs.list({ type: "block-pull", state: "running" })).map((j) => j.id)).toEqual([job.id]);
    expect(await dom.blockJob("vda")).toBe(job);
    // libvirt has no pause for block jobs; virtkit's program does.
    await job.pause();
    expect((await job.info()).state).toBe("paused");
    // The other client hears it from its own event feed, which may come a moment later.
    await until(async () => ((await (await other.jobs.get(job.id)).info()).state === "paused" ? true : undefined), "the pause to reach the other client");
    await job.resume();
    await job.setSpeed(0);
    await job.wait();
    expect((await job.info()).state).toBe("completed");
    await job.dismiss();
  }, 60_000);

  it("a capped clone and a wipe run as daemon jobs that another client lists and drives", async () => {
    await using conn = await connect(daemon.uri());
    await using other = await connect(daemon.uri());
    const pool = await conn.pools.get("default-pool");
    const source = await pool.volumes.create({ name: `src-${Date.now()}`, capacityBytes: MiB(4), format: "raw" });
    const upload = await source.upload({ offset: 0, length: KiB(64) });
    const writer = upload.writable.getWriter();
    await writer.write(new Uint8Array(KiB(64)).fill(7));
    await writer.close();
    await upload.wait();
    const clone = await pool.volumes.clone(source, { name: `${source.name}-clone`, bandwidth: MiB(1) });
    const mirrored = await other.jobs.get(clone.id);
    expect([mirrored.type, (await mirrored.info()).bandwidth]).toEqual(["volume-clone", MiB(1)]);
    await mirrored.setSpeed(0);
    const volume = await clone.wait();
    expect(volume.name).toBe(`${source.name}-clone`);
    const wipe = await volume.wipe({ bandwidth: MiB(64) });
    expect((await other.jobs.get(wipe.id)).type).toBe("volume-wipe");
    await wipe.wait();
    await volume.delete();
    await source.delete();
  }, 60_000);
});
