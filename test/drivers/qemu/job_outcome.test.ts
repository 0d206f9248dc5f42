/**
 * A QEMU block job that finishes while no virtkit connection is open: the next connection finds it in
 * its final state at once (never "running" with the whole range done), with its events emitted once,
 * and every later connection lists it until it is dismissed.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { Connection } from "../../../core/connection.ts";
import type { CoreEvent } from "../../../core/events.ts";
import { domainConfig, MiB, Scratch, skipReal, until, verifyImage } from "./_support.ts";

const scratches: Scratch[] = [];
afterEach(async () => {
  for (const s of scratches.splice(0)) await s.cleanup();
});

/** Records every event of a connection's bus from its first, until `stop()`. */
function watch(conn: Connection): { events: CoreEvent[]; stop(): Promise<void> } {
  const controller = new AbortController();
  const events: CoreEvent[] = [];
  const stream = conn.events.subscribe({ since: 0, signal: controller.signal });
  const reading = (async () => {
    for await (const event of stream) events.push(event as CoreEvent);
  })().catch(() => {});
  return {
    events,
    async stop() {
      // The replayed events are queued synchronously: one turn delivers them all.
      await new Promise((resolve) => setTimeout(resolve, 0));
      controller.abort();
      await reading;
    },
  };
}

/** Every event the connection's bus still holds, from its first. */
async function replay(conn: Connection): Promise<CoreEvent[]> {
  const watching = watch(conn);
  await watching.stop();
  return watching.events;
}

const completionsOf = (events: CoreEvent[], jobId: string) =>
  events.filter((e) => e.type === "job:completed" && (e as { job: { id: string } }).job.id === jobId).length;

describe("qemu driver: a job that concluded while nobody was connected", () => {
  it.skipIf(skipReal)("is found in its final state with its outcome, events once, and stays listed until dismissed", async () => {
    const s = new Scratch();
    scratches.push(s);
    const { overlay, ref } = s.images(16);
    const first = await s.connect();
    const dom = await first.domains.define(domainConfig("later", [{ target: "vda", path: overlay, format: "qcow2" }]));
    await dom.start();
    const job = await dom.blockPull("vda", { bandwidth: 16 * MiB });
    await first.close();
    // Poll with new connections: one that opens while QEMU still runs the job re-attaches it (running).
    // The pull may end while such a connection is open: that one announces the outcome, and no later
    // one does. So the announcements are counted over every connection: exactly one in all.
    let seen: Connection | undefined;
    let announcedWhilePolling = 0;
    await until(async () => {
      const conn = await s.connect();
      const watching = watch(conn);
      const found = (await conn.jobs.list()).find((j) => j.id === job.id);
      const state = found && (await found.info()).state;
      if (state === "completed" || state === "failed" || state === "aborted") {
        await watching.stop();
        return Boolean((seen = conn));
      }
      expect(state).toBe("running");
      await conn.close();
      await watching.stop();
      announcedWhilePolling += completionsOf(watching.events, job.id);
      return false;
    }, "a connection that finds the pull concluded", 20_000);
    const conn = seen!;
    const [listed] = await conn.jobs.list();
    const info = await listed!.info();
    expect([info.id, info.type, info.state, info.cur, info.end]).toEqual([job.id, "block-pull", "completed", 16 * MiB, 16 * MiB]);
    expect(info.finishedAt).toBeDefined();
    expect(announcedWhilePolling + completionsOf(await replay(conn), job.id)).toBe(1);
    expect((await (await conn.domains.get("later")).disks())[0]?.backingChain).toEqual([]);
    await conn.close();

    // Later connections list it as it ended, without announcing the outcome again.
    const again = await s.connect();
    const kept = await again.jobs.get(job.id);
    expect((await kept.info()).state).toBe("completed");
    expect((await replay(again)).filter((e) => e.type === "job:completed")).toEqual([]);
    await kept.dismiss();
    await again.close();
    const after = await s.connect();
    expect(await after.jobs.list()).toEqual([]);
    await (await after.domains.get("later")).destroy();
    expect(verifyImage(overlay, ref)).toMatchObject({ check: 0, compare: 0 });
  });
});
