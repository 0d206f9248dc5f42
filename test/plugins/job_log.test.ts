import { describe, expect, it } from "vitest";
import { createDefaultRegistry, createVirtualClock, MiB } from "../../mod.ts";
import { jobLogPlugin } from "../../plugins/job_log/mod.ts";

async function setup(progress = false) {
  const lines: Array<Record<string, unknown>> = [];
  const registry = createDefaultRegistry();
  const remove = await registry.use(jobLogPlugin({ write: (line) => lines.push(JSON.parse(line)), progress }));
  const clock = createVirtualClock();
  const conn = await registry.connect("test:///default", { clock });
  return { lines, remove, clock, conn };
}

describe("job-log plugin", () => {
  it("logs every transition of a job with its outcome, in seq order", async () => {
    const { lines, remove, clock, conn } = await setup();
    const job = await (await conn.domains.get("test")).blockPull("vda", { bandwidth: MiB(64) });
    await clock.runUntilIdle();
    await job.wait();
    await job.dismiss();
    const mine = lines.filter((line) => line.id === job.id);
    expect(mine.map((line) => line.event)).toEqual(["job:created", "job:state", "job:state", "job:completed", "job:dismissed"]);
    expect(mine.map((line) => line.state)).toEqual(["created", "running", "completed", "completed", "completed"]);
    expect(mine.every((line) => line.uri === "test:///default" && line.type === "block-pull")).toBe(true);
    const seqs = mine.map((line) => line.seq as number);
    expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);
    await conn.close();
    await remove();
  });

  it("records the error text of a failed job", async () => {
    const { lines, remove, clock, conn } = await setup();
    const job = await (await conn.domains.get("test")).blockPull("vda", { bandwidth: MiB(64) });
    conn.testing!.failJob(job.id, new Error("disk on fire"));
    await clock.runUntilIdle();
    await expect(job.wait()).rejects.toThrow(/disk on fire/);
    expect(lines.find((line) => line.event === "job:failed")?.error).toMatch(/disk on fire/);
    await conn.close();
    await remove();
  });

  it("logs progress only when asked", async () => {
    const quiet = await setup(false);
    const loud = await setup(true);
    for (const { clock, conn } of [quiet, loud]) {
      const job = await (await conn.domains.get("test")).blockPull("vda", { bandwidth: MiB(64) });
      await clock.runUntilIdle();
      await job.wait();
    }
    expect(quiet.lines.some((line) => line.event === "job:progress")).toBe(false);
    expect(loud.lines.some((line) => line.event === "job:progress")).toBe(true);
    for (const { conn, remove } of [quiet, loud]) {
      await conn.close();
      await remove();
    }
  });

  it("stops logging once removed, and only logs connections opened through its registry", async () => {
    const { lines, remove, conn } = await setup();
    await remove();
    await (await conn.domains.get("test")).blockPull("vda");
    expect(lines).toEqual([]);
    await conn.close();
  });

  it("rejects a write option that is not a function", () => {
    expect(() => jobLogPlugin({ write: "stdout" as unknown as (line: string) => void })).toThrow(TypeError);
  });
});
