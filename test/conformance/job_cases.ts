/**
 * Conformance cases for jobs, run on volume clones: the one job list, completion and results, dismissal,
 * verbs and their state rules, live caps, abort and failure clean-up, and write conflicts.
 *
 * @module
 */
import type { Connection } from "../../core/connection.ts";
import { ConflictError, JobError, NotFoundError, StateError } from "../../core/errors.ts";
import type { Job, JobInfo } from "../../core/job.ts";
import type { StoragePool } from "../../core/storage_pool.ts";
import { KiB, MiB } from "../../core/units.ts";
import type { Volume } from "../../core/volume.ts";
import { assert, assertEquals, assertRejects } from "./assert.ts";
import {
  assertAbortedWith,
  downloadBytes,
  drive,
  elapse,
  filledVolume,
  patternBytes,
  record,
  scoped,
  uniqueName,
  withConnection,
  withDeadline,
  withPool,
} from "./_support.ts";
import type { Capability, ConformanceCase, ConformanceTarget } from "./types.ts";

const CLONE: readonly Capability[] = ["storage", "volumeCreate", "raw", "volumeStreams", "volumeClone"];
/** A capped clone: 8 MiB at 1 MiB/s cannot finish in the moments a case needs before it acts on it. */
const CAPPED_SOURCE_BYTES = MiB(8);
const CAP_BYTES_PER_SECOND = MiB(1);

interface CappedClone {
  job: Job<Volume>;
  source: Volume;
  cloneName: string;
}

/** Starts a capped clone of a filled 8 MiB volume and, on a virtual clock, lets it run one second. */
async function startCappedClone(target: ConformanceTarget, pool: StoragePool): Promise<CappedClone> {
  const { volume: source } = await filledVolume(target, pool, CAPPED_SOURCE_BYTES, 7);
  const cloneName = uniqueName("clone");
  const job = await pool.volumes.clone(source, { name: cloneName, bandwidth: CAP_BYTES_PER_SECOND });
  await elapse(target, 1000);
  const info = await job.info();
  assertEquals(info.state, "running", `state of capped clone job "${job.id}"`);
  assert(info.cur < info.end, `a clone capped at 1 MiB/s has not finished 8 MiB (cur ${info.cur} of ${info.end})`);
  return { job, source, cloneName };
}

/** Waits for a job that must end `aborted` or `failed`, and returns the JobError's final info. */
async function expectJobError(target: ConformanceTarget, job: Job, state: "aborted" | "failed"): Promise<JobError["info"]> {
  const error = await assertRejects(() => drive(target, job.wait(), `job "${job.id}" to end`), JobError, undefined, `wait() on a job that ends ${state}`);
  assertEquals([error.info.id, error.info.state], [job.id, state], "JobError.info of the ended job");
  assertEquals((await job.info()).state, state, `info().state of job "${job.id}"`);
  return error.info;
}

async function expectNoVolume(pool: StoragePool, name: string, why: string): Promise<void> {
  await assertRejects(() => pool.volumes.get(name), NotFoundError, undefined, `get("${name}") ${why}`);
  assert(!(await pool.volumes.list()).some((v) => v.name === name), `no volume "${name}" is listed ${why}`);
}

async function listedIds(conn: Connection, filter?: Parameters<Connection["jobs"]["list"]>[0]): Promise<string[]> {
  return (await conn.jobs.list(filter)).map((j) => j.id);
}

const cloneCompletes: ConformanceCase = {
  name: 'jobs: a clone is listed as "volume-clone", completes, and wait() returns an equal volume',
  requires: CLONE,
  run: (target) =>
    withConnection(target, (conn) =>
      withPool(target, conn, async (pool) => {
        const { volume: source, data } = await filledVolume(target, pool, MiB(1) + KiB(4), 2);
        const name = uniqueName("clone");
        const job = await pool.volumes.clone(source, { name });
        assertEquals(job.type, "volume-clone", "job.type");
        assertEquals([job.target.pool, job.target.volume], [pool.name, name], "job.target names the new volume");
        assert((await listedIds(conn)).includes(job.id), `conn.jobs.list() includes job "${job.id}"`);
        assert((await listedIds(conn, { type: "volume-clone" })).includes(job.id), "jobs.list({ type }) includes it");
        assert(!(await listedIds(conn, { type: "volume-wipe" })).includes(job.id), "jobs.list() filters by type");
        assertEquals((await conn.jobs.get(job.id)).id, job.id, "jobs.get(id)");
        const clone = await drive(target, job.wait(), `clone job "${job.id}"`);
        assertEquals([clone.name, clone.pool], [name, pool.name], "wait() resolves to the new volume");
        const info = await job.info();
        assertEquals([info.id, info.type, info.state, info.cur, info.end], [job.id, "volume-clone", "completed", data.byteLength, data.byteLength], "info() of the completed clone");
        assert(info.finishedAt !== undefined && info.finishedAt >= info.createdAt, "finishedAt is set, not before createdAt");
        assertEquals((await clone.info()).capacityBytes, data.byteLength, "capacity of the clone");
        assertEquals(await downloadBytes(target, clone), data, "content of the clone");
        assertEquals(await downloadBytes(target, source), data, "content of the source after the clone");
      })),
};

const dismissal: ConformanceCase = {
  name: "jobs: finished jobs stay listed until dismiss(); a second dismiss() throws NotFoundError",
  requires: CLONE,
  run: (target) =>
    withConnection(target, (conn) =>
      withPool(target, conn, async (pool) => {
        const { volume: source } = await filledVolume(target, pool, KiB(256), 4);
        const job = await pool.volumes.clone(source, { name: uniqueName("clone") });
        await drive(target, job.wait(), `clone job "${job.id}"`);
        await elapse(target, 60_000);
        assert((await listedIds(conn)).includes(job.id), "a completed job is still listed a minute later");
        assert((await listedIds(conn, { state: "completed" })).includes(job.id), "jobs.list({ state: \"completed\" }) has it");
        assert(!(await listedIds(conn, { state: "running" })).includes(job.id), "jobs.list() filters by state");
        await job.dismiss();
        assert(!(await listedIds(conn)).includes(job.id), "a dismissed job is no longer listed");
        const error = await assertRejects(() => conn.jobs.get(job.id), NotFoundError, undefined, "jobs.get() of a dismissed job");
        assertEquals(error.objectType, "job", "NotFoundError.objectType");
        await assertRejects(() => job.dismiss(), NotFoundError, undefined, "a second dismiss()");
      })),
};

const verbStates: ConformanceCase = {
  name: "jobs: verbs in the wrong state throw StateError; pause() holds progress; setSpeed(0) lifts the cap",
  requires: CLONE,
  run: (target) =>
    withConnection(target, (conn) =>
      withPool(target, conn, async (pool) => {
        const { job, source } = await startCappedClone(target, pool);
        const refused = (verb: "pause" | "resume" | "abort" | "finalize" | "dismiss", state: string) =>
          assertRejects(() => job[verb](), StateError, undefined, `${verb}() on a ${state} job`);
        await refused("resume", "running");
        await refused("finalize", "running");
        await refused("dismiss", "running");
        await job.pause();
        assertEquals((await job.info()).state, "paused", "state after pause()");
        await refused("pause", "paused");
        // A chunk already under way may still land (jobs pause between chunks, as QEMU's do); after that, nothing.
        await elapse(target, 2000);
        const held = (await job.info()).cur;
        await elapse(target, 3000);
        assertEquals((await job.info()).cur, held, "a paused job makes no progress");
        assertEquals((await job.info()).state, "paused", "state of a paused job three seconds later");
        await job.resume();
        assertEquals((await job.info()).state, "running", "state after resume()");
        await job.setSpeed(0);
        const clone = await drive(target, job.wait(), `clone job "${job.id}" after setSpeed(0)`);
        assertEquals(await downloadBytes(target, clone), await downloadBytes(target, source), "content of the clone");
        for (const verb of ["pause", "resume", "abort", "finalize"] as const) await refused(verb, "completed");
        await assertRejects(() => job.setSpeed(MiB(1)), StateError, undefined, "setSpeed() on a completed job");
        await job.dismiss();
      })),
};

const setSpeed: ConformanceCase = {
  name: "jobs: setSpeed() rejects bad values with RangeError and shows a new cap in info().bandwidth",
  requires: CLONE,
  run: (target) =>
    withConnection(target, (conn) =>
      withPool(target, conn, async (pool) => {
        const { job, source } = await startCappedClone(target, pool);
        await scoped(async () => {
          assertEquals((await job.info()).bandwidth, CAP_BYTES_PER_SECOND, "info().bandwidth of a capped clone");
          for (const bad of [-1, 0.5, Number.NaN, Number.POSITIVE_INFINITY]) {
            await assertRejects(() => job.setSpeed(bad), RangeError, undefined, `setSpeed(${bad})`);
          }
          assertEquals((await job.info()).bandwidth, CAP_BYTES_PER_SECOND, "info().bandwidth after refused setSpeed() calls");
          await job.setSpeed(MiB(2));
          assertEquals((await job.info()).bandwidth, MiB(2), "info().bandwidth after setSpeed(2 MiB)");
        }, async () => {
          if ((await job.info()).state === "running") await job.abort();
          await drive(target, job.wait().catch(() => undefined), `job "${job.id}" to end`);
        });
        const before = await listedIds(conn);
        const name = uniqueName("clone");
        await assertRejects(() => pool.volumes.clone(source, { name, bandwidth: -1 }), RangeError, undefined, "clone() with bandwidth -1");
        await assertRejects(() => pool.volumes.clone(source, { name: "a/b" }), TypeError, undefined, 'clone() named "a/b"');
        await assertRejects(() => pool.volumes.clone(source, { name: source.name }), ConflictError, undefined, "clone() onto a taken name");
        assertEquals(await listedIds(conn), before, "refused clone() calls create no job");
        await expectNoVolume(pool, name, "after a refused clone()");
      })),
};

const abortCapped: ConformanceCase = {
  name: 'jobs: abort() of a capped clone ends "aborted", wait() throws JobError, and no partial volume is left',
  requires: CLONE,
  run: (target) =>
    withConnection(target, (conn) =>
      withPool(target, conn, async (pool) => {
        const aborted = record(conn.events, "job:aborted");
        const { job, cloneName } = await startCappedClone(target, pool);
        await job.abort();
        await expectJobError(target, job, "aborted");
        aborted.stop();
        const mine = aborted.events.filter((e) => e.job.id === job.id);
        assertEquals(mine.map((e) => e.job.state), ["aborted"], "job:aborted events carry the final state");
        await assertRejects(() => job.abort(), StateError, undefined, "abort() of an aborted job");
        await expectNoVolume(pool, cloneName, "after the clone was aborted");
        assert((await listedIds(conn, { state: "aborted" })).includes(job.id), "the aborted job stays listed");
      })),
};

const failedJob: ConformanceCase = {
  name: 'jobs: a failed clone ends "failed" with the error text, and no partial volume is left',
  requires: [...CLONE, "faultInjection"],
  run: (target) =>
    withConnection(target, (conn) =>
      withPool(target, conn, async (pool) => {
        assert(conn.testing, "a target declaring faultInjection has conn.testing");
        const failed = record(conn.events, "job:failed");
        const { job, cloneName } = await startCappedClone(target, pool);
        const text = `injected failure ${uniqueName("x")}`;
        conn.testing.failJob(job.id, new Error(text));
        const info = await expectJobError(target, job, "failed");
        assert(info.error?.includes(text), `JobError.info.error includes the cause (got ${JSON.stringify(info.error)})`);
        const current: JobInfo = await job.info();
        assert(current.error?.includes(text), `info().error includes the cause (got ${JSON.stringify(current.error)})`);
        failed.stop();
        const mine = failed.events.filter((e) => e.job.id === job.id);
        assertEquals(mine.length, 1, "one job:failed event");
        assertEquals(mine[0]!.job.state, "failed", "job:failed carries the final state");
        assert(mine[0]!.error.includes(text), `job:failed carries the error text (got ${JSON.stringify(mine[0]!.error)})`);
        await expectNoVolume(pool, cloneName, "after the clone failed");
      })),
};

const waitSignal: ConformanceCase = {
  name: "jobs: aborting wait()'s signal rejects with the signal's reason and leaves the job running",
  requires: CLONE,
  run: (target) =>
    withConnection(target, (conn) =>
      withPool(target, conn, async (pool) => {
        const { job } = await startCappedClone(target, pool);
        const controller = new AbortController();
        const reason = new Error("the conformance kit stopped waiting");
        const waiting = job.wait({ signal: controller.signal });
        controller.abort(reason);
        await assertAbortedWith(() => withDeadline(waiting, 5000, "wait() to reject after its signal aborted"), reason, "job.wait()");
        assertEquals((await job.info()).state, "running", "state of a job whose waiter gave up");
        await job.setSpeed(0);
        await drive(target, job.wait(), `clone job "${job.id}" after an abandoned wait()`);
      })),
};

const writeConflict: ConformanceCase = {
  name: "jobs: a second job writing the same volume throws ConflictError naming the first job",
  requires: ["storage", "volumeCreate", "raw", "volumeStreams"],
  run: (target) =>
    withConnection(target, (conn) =>
      withPool(target, conn, async (pool) => {
        const volume = await pool.volumes.create({ name: uniqueName("vol"), capacityBytes: MiB(1), format: "raw" });
        const first = await volume.upload({ offset: 0, length: KiB(4) });
        const writer = first.writable.getWriter();
        const conflict = await assertRejects(() => volume.upload({ offset: KiB(64), length: KiB(4) }), ConflictError, first.id, "a second upload() while one runs");
        assertEquals(conflict.jobId, first.id, "ConflictError.jobId");
        await assertRejects(() => volume.delete(), ConflictError, undefined, "delete() while an upload runs");
        await drive(target, writer.write(patternBytes(KiB(4), 9)).then(() => writer.close()), "the first upload to take its bytes");
        await drive(target, first.wait(), `upload job "${first.id}"`);
        const second = await volume.upload({ offset: KiB(64), length: KiB(4) });
        const w2 = second.writable.getWriter();
        await drive(target, w2.write(patternBytes(KiB(4), 10)).then(() => w2.close()), "the second upload");
        await drive(target, second.wait(), `upload job "${second.id}"`);
      })),
};

/**
 * Cases for volume jobs (capabilities `storage`, `volumeCreate`, `raw`, `volumeStreams`, `volumeClone`;
 * the failure case also `faultInjection`).
 *
 * @example
 * ```ts
 * import { volumeJobCases } from "./job_cases.ts";
 * if (!volumeJobCases.some((c) => c.name.includes("abort()"))) throw new Error("unexpected");
 * ```
 */
export const volumeJobCases: readonly ConformanceCase[] = Object.freeze([
  cloneCompletes,
  dismissal,
  verbStates,
  setSpeed,
  abortCapped,
  failedJob,
  waitSignal,
  writeConflict,
]);
