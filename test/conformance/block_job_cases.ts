/**
 * Conformance cases for block jobs, each on a shut-off domain (core's offline path, through the image
 * engine) and on a running one (the driver's live path): `blockPull()`, `blockCopy()` with `ready`,
 * `finalize()` and `abort()`, and the active `blockCommit()`. Disks are a qcow2 top over a raw base,
 * both pool volumes; every result is read back and compared byte for byte.
 *
 * @module
 */
import { ConflictError, NotFoundError } from "../../core/errors.ts";
import type { Domain } from "../../core/domain.ts";
import { MiB } from "../../core/units.ts";
import { assert, assertEquals, assertRejects } from "./assert.ts";
import { downloadBytes, drive, scoped, uniqueName, withConnection, withPool } from "./_support.ts";
import { CHAIN_BYTES, makeDiskChain, waitReady } from "./disk_chain_support.ts";
import type { Capability, ConformanceCase } from "./types.ts";

const BASE: readonly Capability[] = ["domains", "storage", "volumeCreate", "raw", "qcow2", "volumeStreams"];

/** A live case stops its domain before reading its volumes back (a running QEMU may still cache). */
async function stopped(domain: Domain): Promise<void> {
  if ((await domain.info()).state !== "shutoff") await domain.destroy();
}

function pullCase(live: boolean): ConformanceCase {
  return {
    name: `block jobs: blockPull() ${live ? "on a running domain" : "on a shut-off domain"} fills the thin disk from its backing volume and drops the chain`,
    requires: [...BASE, "blockPull", ...(live ? ["liveBlockJobs" as const] : [])],
    run: (target) =>
      withConnection(target, (conn) =>
        withPool(target, conn, async (pool) => {
          const { domain, base, top, view, baseData } = await makeDiskChain(target, conn, pool, live);
          await scoped(async () => {
            const [before] = await domain.disks();
            assertEquals([before?.target, before?.format, before?.backingChain.length], ["vda", "qcow2", 1], "the disk before the pull");
            await assertRejects(() => domain.blockPull("vdz"), NotFoundError, undefined, 'blockPull("vdz") of an unknown disk');
            const job = await domain.blockPull("vda", { bandwidth: MiB(1) });
            assertEquals(job.type, "block-pull", "job.type");
            assertEquals([job.target.domain, job.target.disk], [domain.name, "vda"], "job.target");
            assertEquals((await domain.blockJob("vda"))?.id, job.id, "blockJob() returns the running pull");
            await assertRejects(() => domain.blockPull("vda"), ConflictError, job.id, "a second blockPull() on the same disk");
            assert((await conn.jobs.list({ domain: domain.name })).some((j) => j.id === job.id), "jobs.list({ domain }) has the pull");
            await job.setSpeed(0);
            await drive(target, job.wait(), `block pull job "${job.id}"`);
            assertEquals((await job.info()).state, "completed", "state of the pull");
            assertEquals(await domain.blockJob("vda"), undefined, "blockJob() after the pull ended");
            assertEquals((await domain.disks())[0]?.backingChain.length, 0, "backing chain after the pull");
            await stopped(domain);
            assertEquals((await top.info()).backing, undefined, "the pulled volume has no backing image");
            assertEquals(await downloadBytes(target, top), view, "the pulled volume reads as before");
          }, () => stopped(domain).then(() => domain.undefine()));
          await top.delete();
          assertEquals(await downloadBytes(target, base), baseData, "the backing volume is unchanged");
        })),
  };
}

function copyCase(live: boolean): ConformanceCase {
  return {
    name: `block jobs: blockCopy() ${live ? "on a running domain" : "on a shut-off domain"} is ready in sync; abort() keeps the source, finalize() pivots`,
    requires: [...BASE, "blockCopy", ...(live ? ["liveBlockJobs" as const] : [])],
    run: (target) =>
      withConnection(target, (conn) =>
        withPool(target, conn, async (pool) => {
          const { domain, base, top, view } = await makeDiskChain(target, conn, pool, live);
          const kept = uniqueName("point");
          const copy = uniqueName("copy");
          await scoped(async () => {
            const first = await domain.blockCopy("vda", { destination: { pool: pool.name, name: kept }, format: "raw" });
            assertEquals(first.type, "block-copy", "job.type");
            await assertRejects(() => domain.blockCopy("vda", { destination: { pool: pool.name, name: copy } }), ConflictError, first.id, "a second job on the disk");
            await waitReady(target, conn, first);
            await drive(target, first.abort(), `abort of "${first.id}" in ready`);
            await drive(target, first.wait().catch(() => {}), `copy job "${first.id}"`);
            assertEquals((await first.info()).state, "aborted", "a copy aborted in ready");
            assertEquals((await domain.disks())[0]?.volume?.name, top.name, "after abort() the domain stays on its source");
            const job = await domain.blockCopy("vda", { destination: { pool: pool.name, name: copy } });
            await waitReady(target, conn, job);
            await drive(target, job.finalize(), `finalize of "${job.id}"`);
            await drive(target, job.wait(), `copy job "${job.id}"`);
            assertEquals((await job.info()).state, "completed", "a finalized copy");
            const [after] = await domain.disks();
            assertEquals([after?.volume?.name, after?.backingChain.length], [copy, 0], "after finalize() the disk is the flat copy");
            assertEquals((await domain.config()).disks[0]?.volume?.name, copy, "the definition names the copy");
            await stopped(domain);
            assertEquals(await downloadBytes(target, await pool.volumes.get(copy)), view, "the copy reads as the disk did");
            assertEquals(await downloadBytes(target, await pool.volumes.get(kept)), view, "the copy aborted in ready is consistent");
          }, () => stopped(domain).then(() => domain.undefine()));
          for (const name of [copy, kept, top.name, base.name]) await (await pool.volumes.get(name)).delete();
        })),
  };
}

function commitCase(live: boolean): ConformanceCase {
  return {
    name: `block jobs: blockCommit() ${live ? "on a running domain" : "on a shut-off domain"} of the active image is ready; finalize() pivots onto the base`,
    requires: [...BASE, "blockCommit", ...(live ? ["liveBlockJobs" as const] : [])],
    run: (target) =>
      withConnection(target, (conn) =>
        withPool(target, conn, async (pool) => {
          const { domain, base, top, view } = await makeDiskChain(target, conn, pool, live);
          await scoped(async () => {
            await assertRejects(() => domain.blockCommit("vda", { top: "/no/such/image.qcow2" }), NotFoundError, undefined, "a top not in the chain");
            await assertRejects(() => domain.blockCommit("vda", { top: "vda[1]" }), TypeError, undefined, "a raw top with nothing below it");
            await assertRejects(() => domain.blockCommit("vda", { base: "vda[0]" }), TypeError, undefined, "a base that is not below the top");
            const job = await domain.blockCommit("vda", { base: base.path });
            assertEquals(job.type, "block-commit", "job.type");
            await waitReady(target, conn, job);
            await drive(target, job.finalize(), `finalize of "${job.id}"`);
            await drive(target, job.wait(), `commit job "${job.id}"`);
            const [after] = await domain.disks();
            assertEquals([after?.volume?.name, after?.format, after?.backingChain.length], [base.name, "raw", 0], "after finalize() the disk is the base");
            await stopped(domain);
            assertEquals((await base.info()).capacityBytes, CHAIN_BYTES, "the base keeps its size");
            assertEquals(await downloadBytes(target, base), view, "the base holds what the disk read");
          }, () => stopped(domain).then(() => domain.undefine()));
          await top.delete();
          await base.delete();
        })),
  };
}

/**
 * Cases for block jobs (capabilities `domains`, `storage`, `volumeCreate`, `raw`, `qcow2`,
 * `volumeStreams`, and `blockPull`, `blockCopy` or `blockCommit`; the live ones also `liveBlockJobs`).
 *
 * @example
 * ```ts
 * import { blockJobCases } from "./block_job_cases.ts";
 * const live = blockJobCases.filter((c) => c.requires?.includes("liveBlockJobs"));
 * if (blockJobCases.length !== 6 || live.length !== 3) throw new Error("unexpected");
 * ```
 */
export const blockJobCases: readonly ConformanceCase[] = Object.freeze([
  pullCase(false),
  pullCase(true),
  copyCase(false),
  copyCase(true),
  commitCase(false),
  commitCase(true),
]);
