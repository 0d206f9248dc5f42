/**
 * Conformance cases for block jobs: `domain.blockPull()` on a qcow2 disk over a raw backing volume.
 *
 * @module
 */
import { ConflictError, NotFoundError } from "../../core/errors.ts";
import { MiB } from "../../core/units.ts";
import { assert, assertEquals, assertRejects } from "./assert.ts";
import { downloadBytes, drive, filledVolume, scoped, uniqueName, withConnection, withPool } from "./_support.ts";
import type { ConformanceCase } from "./types.ts";

const blockPull: ConformanceCase = {
  name: "block jobs: blockPull() fills a thin disk from its backing volume and drops the backing chain",
  requires: ["domains", "storage", "volumeCreate", "raw", "qcow2", "volumeStreams", "blockPull"],
  run: (target) =>
    withConnection(target, (conn) =>
      withPool(target, conn, async (pool) => {
        const size = MiB(2);
        const { volume: base, data } = await filledVolume(target, pool, size, 11);
        const top = await pool.volumes.create({
          name: uniqueName("top"),
          capacityBytes: size,
          format: "qcow2",
          backing: { path: base.path, format: "raw" },
        });
        assertEquals((await top.info()).format, "qcow2", "format of the thin volume");
        assert((await top.info()).backing !== undefined, "the thin volume records its backing image");
        assertEquals(await downloadBytes(target, top), data, "a thin volume reads its backing data");
        const config = target.domainConfig!(uniqueName("dom"));
        const disk = { target: "vda", volume: { pool: pool.name, name: top.name }, format: "qcow2" };
        const domain = await conn.domains.define({ ...config, disks: [disk] });
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
          const [after] = await domain.disks();
          assertEquals(after?.backingChain.length, 0, "backing chain after the pull");
          assertEquals((await top.info()).backing, undefined, "the pulled volume has no backing image");
          assertEquals(await downloadBytes(target, top), data, "the pulled volume holds the backing data");
        }, () => domain.undefine());
        await top.delete();
        assertEquals(await downloadBytes(target, base), data, "the backing volume is unchanged");
      })),
};

/**
 * Cases for block jobs (capabilities `domains`, `storage`, `volumeCreate`, `raw`, `qcow2`,
 * `volumeStreams` and `blockPull`).
 *
 * @example
 * ```ts
 * import { blockJobCases } from "./block_job_cases.ts";
 * if (!blockJobCases[0]!.requires?.includes("blockPull")) throw new Error("unexpected");
 * ```
 */
export const blockJobCases: readonly ConformanceCase[] = Object.freeze([blockPull]);
