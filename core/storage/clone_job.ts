/**
 * `pool.volumes.clone()`: a full, flattened copy of a volume (of any pool) into a new volume, as a job.
 *
 * @module
 */
import { copyExtents } from "../copy/copy_loop.ts";
import type { VolumeRecord } from "../storage_backend.ts";
import { ConflictError } from "../errors.ts";
import type { Job } from "../job.ts";
import { assertBandwidth } from "../units.ts";
import { assertName, assertObject } from "../validate.ts";
import type { Volume, VolumeCloneOptions } from "../volume.ts";
import type { VolumeIO } from "../volume_io.ts";
import { pausable, signalOnly, type VolumeJobEnv } from "./job_support.ts";
import { assertIdle, requireOp, trackReader, volumeLabel } from "./volume_checks.ts";

/** Options of {@linkcode startCloneJob}. */
export interface CloneJobOptions extends VolumeJobEnv, VolumeCloneOptions {
  /** The volume to copy (any pool of the connection). */
  source: Pick<Volume, "pool" | "name">;
  /** The pool of the new volume. */
  pool: string;
  /** Makes the public handle of the new volume (the job's result). */
  toVolume(record: VolumeRecord): Volume;
}

/**
 * Creates `name` in `pool` with the source's capacity, then copies the source's guest-visible data into
 * it: what the source reads through its backing chain is copied too, holes and zeros are skipped, so the
 * clone is as sparse as the source and has no backing. The new volume is locked for the job's life and
 * the source cannot be written, deleted or have its pool stopped meanwhile. A failed or aborted clone
 * deletes the new volume.
 *
 * @param options The source, the target pool, the new name and format (default: the source's when it is
 *   raw or qcow2, raw otherwise), the cap, and the connection parts.
 * @returns The running job; it resolves to the new volume.
 * @throws {TypeError} For a bad name, format or source. `RangeError` for a bad bandwidth.
 * @throws {ConflictError} When the name is taken, or a job writes the source.
 * @throws {UnsupportedError} When the target pool cannot create or open volumes.
 * @internal Reached through `pool.volumes.clone()`.
 * @example How a user reaches it: `pool.volumes.clone()`
 * ```ts
 * import { connect } from "virtkit";
 * await using conn = await connect("test:///default");
 * const pool = await conn.pools.get("default-pool");
 * const template = await pool.volumes.get("template.img");
 * const clone = await (await pool.volumes.clone(template, { name: "web1.qcow2", format: "qcow2", bandwidth: 1 << 30 })).wait();
 * const info = await clone.info();
 * if (info.format !== "qcow2" || info.capacityBytes !== (await template.info()).capacityBytes) throw new Error("unexpected");
 * ```
 */
export async function startCloneJob(options: CloneJobOptions): Promise<Job<Volume>> {
  const { access, jobs, bus, pool } = options;
  const source = assertObject(options.source, "clone source") as Pick<Volume, "pool" | "name">;
  assertName(source.pool, "source pool name");
  assertName(source.name, "source volume name");
  const name = assertName(options.name, "volume name");
  if (options.format !== undefined && options.format !== "raw" && options.format !== "qcow2") {
    throw new TypeError(`Invalid format for volume "${name}": expected "raw" or "qcow2", got ${JSON.stringify(options.format)}`);
  }
  const bandwidth = assertBandwidth(options.bandwidth, "bandwidth");
  const call = signalOnly(options);
  options.signal?.throwIfAborted();
  const sourceLabel = volumeLabel(source.pool, source.name);
  const label = volumeLabel(pool, name);

  const sourceBackend = await access.backend(source.pool);
  const sourceRecord = await sourceBackend.lookupVolume(source.name, call);
  const sourceFormat = (await sourceBackend.volumeInfo(source.name, call)).format;
  const format = options.format ?? (sourceFormat === "qcow2" ? "qcow2" : "raw");
  const backend = await access.backend(pool);
  const driver = options.driverName?.(pool);
  const createVolume = requireOp(backend, "createVolume", driver, pool);
  requireOp(backend, "openVolume", driver, pool);
  const writer = jobs.holder(sourceRecord.key);
  if (writer !== undefined) {
    throw new ConflictError(`Cannot clone ${sourceLabel}: job "${writer}" is writing it`, { jobId: writer });
  }

  const opened: VolumeIO[] = [];
  const closeAll = async () => {
    for (const io of opened.splice(0)) await io.close().catch(() => {});
  };
  let created: VolumeRecord | undefined;
  const removeTarget = async () => {
    if (!created) return;
    created = undefined;
    await requireOp(backend, "deleteVolume", driver, pool)(name);
    bus?.emit("volume:deleted", { pool, volume: name });
  };
  try {
    const input = await access.openVolume(source.pool, source.name, { write: false }, call);
    opened.push(input);
    created = await createVolume({ name, capacityBytes: input.capacityBytes, format }, call);
    bus?.emit("volume:created", { pool, volume: name });
    const output = await access.openVolume(pool, name, { write: true }, call);
    opened.push(output);
    const record = created;
    assertIdle(jobs, { key: record.key, label, action: "clone into" });
    const job = jobs.startLocal<Volume>({
      type: "volume-clone",
      target: { pool, volume: name },
      endBytes: input.capacityBytes,
      bandwidth,
      locks: [record.key],
      async run(ctx) {
        try {
          await copyExtents({
            source: input,
            target: pausable(output, ctx.checkpoint),
            length: input.capacityBytes,
            // The new volume reads zeros everywhere: only data needs writing, and all-zero chunks stay holes.
            plan: (e) => (e.data && !e.zero ? "copy" : "skip"),
            zeroChunks: "skip",
            // Two different volumes: reading the next chunk while one is written is safe.
            readAhead: true,
            // Two raw files of one filesystem copy inside the kernel; the allocation stays the source's.
            offload: true,
            limiter: ctx.limiter,
            signal: ctx.signal,
            checkpoint: ctx.checkpoint,
            onProgress: (cur, copiedBytes) => ctx.progress(cur, undefined, copiedBytes),
          });
          await output.flush({ signal: ctx.signal });
        } finally {
          await closeAll();
        }
        return options.toVolume(record);
      },
      async cleanup() {
        await closeAll();
        await removeTarget();
      },
    });
    const release = trackReader(jobs, { jobId: job.id, key: sourceRecord.key, pool: source.pool });
    job.wait().then(release, release);
    return job;
  } catch (error) {
    await closeAll();
    await removeTarget().catch(() => {});
    throw error;
  }
}
