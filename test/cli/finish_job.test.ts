import { describe, expect, it } from "vitest";
import { finishJob } from "../../cli/commands/job_run.ts";
import { createOutput } from "../../cli/output.ts";
import { connect, createVirtualClock, MiB } from "../../mod.ts";

function sinks() {
  const text = { stdout: "", stderr: "" };
  return { text, out: createOutput({ write: (s: string) => (text.stdout += s) }, { write: (s: string) => (text.stderr += s) }, false) };
}

describe("a followed job's outcome becomes the exit code", () => {
  it("a job that fails half-way exits 1 with its error text", async () => {
    const clock = createVirtualClock();
    await using conn = await connect("test:///default", { clock });
    const job = await (await conn.domains.get("test")).blockPull("vda", { bandwidth: MiB(64) });
    conn.testing!.failJob(job.id, new Error("disk full"), { atBytes: MiB(64) });
    const { text, out } = sinks();
    const code = finishJob({ out, options: {}, signal: new AbortController().signal }, conn, job, { wait: true });
    await clock.runUntilIdle();
    expect(await code).toBe(1);
    expect(text.stderr.trim().split("\n").at(-1)).toBe("error: job-1 block-pull failed: disk full");
    expect(text.stdout).toBe("");
  });

  it("an aborted job exits 1 too", async () => {
    const clock = createVirtualClock();
    await using conn = await connect("test:///default", { clock });
    const job = await (await conn.domains.get("test")).blockPull("vda", { bandwidth: MiB(1) });
    const { text, out } = sinks();
    const code = finishJob({ out, options: {}, signal: new AbortController().signal }, conn, job, { wait: true });
    await clock.advance(1000);
    await job.abort();
    await clock.runUntilIdle();
    expect(await code).toBe(1);
    expect(text.stderr).toContain("error: job-1 block-pull aborted");
  });
});
