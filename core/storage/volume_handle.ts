/**
 * The public {@linkcode Volume} and {@linkcode VolumeCollection} objects: argument checks, busy checks and
 * events around the pool backend's volume methods; long operations become jobs (see `volume_jobs.ts` and
 * `upload_download.ts`).
 *
 * @module
 */
import { checkVolumeSpec } from "../config/volume_spec.ts";
import type { VolumeCreateSpec, VolumeRecord } from "../storage_backend.ts";
import { ConflictError } from "../errors.ts";
import { UNFINISHED_JOB_STATES } from "../job.ts";
import { assertBytes } from "../units.ts";
import { assertName, assertObject } from "../validate.ts";
import type { BackingRef, Extent, RangeOptions, Volume, VolumeCollection, VolumeCreateOptions } from "../volume.ts";
import type { PoolTable } from "./pool_table.ts";
import { startDownloadJob, startUploadJob } from "./upload_download.ts";
import {
  assertIdle,
  findReader,
  optionsOf,
  requireOp,
  resolveRange,
  volumeLabel,
} from "./volume_checks.ts";
import { signalOnly, type VolumeJobEnv } from "./job_support.ts";
import { startAllocateJob, startCloneJob, startPullJob, startWipeJob } from "./volume_jobs.ts";

/**
 * The volumes of one pool. Every call needs the pool active (`StateError` otherwise).
 *
 * @param table The connection's pools.
 * @param pool The pool's name.
 * @returns The collection.
 * @internal Reached through `pool.volumes`.
 * @example How a user reaches it
 * ```ts
 * import { connect } from "virtkit";
 * await using conn = await connect("test:///default");
 * const pool = await conn.pools.get("default-pool");
 * const template = await pool.volumes.get("template.img");
 * const thin = await pool.volumes.create({
 *   name: "web1.qcow2", capacityBytes: 10 * 2 ** 30, format: "qcow2", backing: { path: template.path, format: "raw" },
 * });
 * const info = await thin.info();
 * if (info.backing?.path !== template.path || info.allocationBytes >= 1 << 20) throw new Error("unexpected");
 * ```
 */
export function createVolumeCollection(table: PoolTable, pool: string): VolumeCollection {
  return {
    async list(options) {
      const { backend } = await table.activeBackend(pool, "list volumes");
      const records = await backend.listVolumes(signalOnly(options));
      return records.map((record) => createVolumeHandle(table, pool, record));
    },
    async get(name, options) {
      assertName(name, "volume name");
      const { backend } = await table.activeBackend(pool, `look up volume "${name}"`);
      return createVolumeHandle(table, pool, await backend.lookupVolume(name, signalOnly(options)));
    },
    async create(options) {
      const spec = checkCreate(options);
      const { backend, driver } = await table.activeBackend(pool, `create volume "${spec.name}"`);
      const record = await requireOp(backend, "createVolume", driver, pool)(spec, signalOnly(options));
      table.bus.emit("volume:created", { pool, volume: record.name });
      return createVolumeHandle(table, pool, record);
    },
    clone(source, options) {
      const { name, format, bandwidth, signal } = optionsOf(options, "clone options");
      return startCloneJob({
        ...envOf(table),
        toVolume: (record) => createVolumeHandle(table, pool, record),
        source,
        pool,
        name: name as string,
        format,
        bandwidth,
        signal,
      });
    },
  };
}

/**
 * The handle of one volume. It names the volume by pool and name, as libvirt's handles do.
 *
 * @param table The connection's pools.
 * @param pool The pool's name.
 * @param record What the backend reported.
 * @returns The public volume object.
 * @internal Reached through `pool.volumes.get()`, `list()` and `conn.volumes.lookup()`.
 * @example How a user reaches it
 * ```ts
 * import { connect } from "virtkit";
 * await using conn = await connect("test:///default");
 * const volume = await (await conn.pools.get("default-pool")).volumes.get("test.qcow2");
 * let own = 0;
 * for await (const extent of volume.extents()) if (extent.depth === 0 && extent.data) own += extent.length;
 * if (own !== 5 * 2 ** 20) throw new Error("unexpected"); // the seed writes 1 MiB and 4 MiB into the thin disk
 * ```
 */
export function createVolumeHandle(table: PoolTable, pool: string, record: VolumeRecord): Volume {
  const { name, key, path } = record;
  const label = volumeLabel(pool, name);
  const env = envOf(table);
  const active = (action: string) => table.activeBackend(pool, `${action} volume "${name}"`);
  return {
    name,
    key,
    path,
    pool,
    async info(options) {
      return await (await active("read")).backend.volumeInfo(name, signalOnly(options));
    },
    extents(options?: RangeOptions): AsyncIterable<Extent> {
      const opts = optionsOf(options, "extents options");
      // Bad numbers throw at the call; the range against the capacity is checked once the volume is open.
      if (opts.offset !== undefined) assertBytes(opts.offset, "offset");
      if (opts.length !== undefined) assertBytes(opts.length, "length");
      return mapExtents(table, pool, name, label, opts);
    },
    // Only the documented fields pass: a job's type, target and locks are not the caller's to choose.
    allocate: (options) => {
      const { offset, length, bandwidth, signal } = optionsOf(options, "allocate options");
      return startAllocateJob({ ...env, pool, volume: name, offset, length, bandwidth, signal });
    },
    pull: (options) => {
      const { bandwidth, base, signal } = optionsOf(options, "pull options");
      return startPullJob({ ...env, pool, volume: name, bandwidth, base, signal });
    },
    wipe: (options) => {
      const { bandwidth, signal } = optionsOf(options, "wipe options");
      return startWipeJob({ ...env, pool, volume: name, bandwidth, signal });
    },
    upload: (options) => {
      const { offset, length, bandwidth, signal } = optionsOf(options, "upload options");
      return startUploadJob({ ...env, pool, volume: name, offset, length, bandwidth, signal });
    },
    download: (options) => {
      const { offset, length, bandwidth, signal } = optionsOf(options, "download options");
      return startDownloadJob({ ...env, pool, volume: name, offset, length, bandwidth, signal });
    },
    async resize(capacityBytes, options) {
      const capacity = assertBytes(capacityBytes, "capacityBytes");
      if (capacity === 0) throw new RangeError(`Cannot resize ${label} to 0 bytes`);
      const { shrink = false, signal } = optionsOf(options, "resize options");
      const { backend, driver } = await active("resize");
      const resizeVolume = requireOp(backend, "resizeVolume", driver, pool);
      assertIdle(table.jobs, { key, label, action: "resize" });
      const current = (await backend.volumeInfo(name, signalOnly({ signal }))).capacityBytes;
      if (capacity < current && shrink !== true) {
        throw new RangeError(`Cannot shrink ${label} from ${current} to ${capacity} bytes without { shrink: true }`);
      }
      await resizeVolume(name, capacity, signalOnly({ signal }));
      table.bus.emit("volume:resized", { pool, volume: name, capacityBytes: capacity });
    },
    async delete(options) {
      const { backend, driver } = await active("delete");
      const deleteVolume = requireOp(backend, "deleteVolume", driver, pool);
      const busy = table.jobs.holder(key) ?? findReader(table.jobs, { key }) ??
        (await table.jobs.list({ pool, state: UNFINISHED_JOB_STATES })).find((job) => job.target.volume === name)?.id;
      if (busy !== undefined) throw new ConflictError(`Cannot delete ${label}: job "${busy}" is using it`, { jobId: busy, driver });
      await deleteVolume(name, signalOnly(options));
      table.bus.emit("volume:deleted", { pool, volume: name });
    },
  };
}

/** The allocation map, read through a read-only handle that is closed however the iteration ends. */
async function* mapExtents(
  table: PoolTable,
  pool: string,
  name: string,
  label: string,
  options: RangeOptions,
): AsyncGenerator<Extent> {
  const io = await table.access.openVolume(pool, name, { write: false }, signalOnly(options));
  try {
    const { offset, length } = resolveRange(options, io.capacityBytes, label);
    if (length > 0) yield* io.extents(offset, length, signalOnly(options));
  } finally {
    await io.close();
  }
}

function checkCreate(options: VolumeCreateOptions): VolumeCreateSpec {
  const { signal: _signal, ...spec } = assertObject(options, "volume options") as unknown as VolumeCreateOptions;
  return checkVolumeSpec(spec);
}

function envOf(table: PoolTable): VolumeJobEnv {
  return {
    access: table.access,
    jobs: table.jobs,
    bus: table.bus,
    driverName: (pool) => (table.has(pool) ? table.entry(pool).definition.name : undefined),
  };
}

