/**
 * Argument and busy-state checks shared by the volume handles and the volume jobs, so each rule and its
 * message lives in one place.
 *
 * @module
 */
import type { StoragePoolBackend } from "../storage_backend.ts";
import { ConflictError, UnsupportedError } from "../errors.ts";
import type { JobManager } from "../jobs/types.ts";
import { assertBytes } from "../units.ts";
import { assertObject } from "../validate.ts";
import type { RangeOptions } from "../volume.ts";


/**
 * How messages name a volume: `volume "disk1" in pool "images"`.
 *
 * @param pool Pool name.
 * @param volume Volume name.
 * @returns The phrase.
 * @example
 * ```ts
 * import { volumeLabel } from "./volume_checks.ts";
 * if (volumeLabel("images", "disk1") !== 'volume "disk1" in pool "images"') throw new Error("unexpected");
 * ```
 */
export function volumeLabel(pool: string, volume: string): string {
  return `volume "${volume}" in pool "${pool}"`;
}

/**
 * Checks a range option against a capacity, defaulting to the whole rest of the volume.
 *
 * @param options The caller's `offset` and `length`.
 * @param capacityBytes The volume's capacity.
 * @param label The volume, for messages (see {@linkcode volumeLabel}).
 * @returns The resolved range.
 * @throws {TypeError} When an option is not a number.
 * @throws {RangeError} When an option is not a byte count or the range passes the end.
 * @example
 * ```ts
 * import { resolveRange } from "./volume_checks.ts";
 * const range = resolveRange({ offset: 512 }, 2048, 'volume "a" in pool "p"');
 * if (range.offset !== 512 || range.length !== 1536) throw new Error("unexpected");
 * ```
 */
export function resolveRange(
  options: RangeOptions | undefined,
  capacityBytes: number,
  label: string,
): { offset: number; length: number } {
  const offset = assertBytes(options?.offset ?? 0, "offset");
  if (offset > capacityBytes) {
    throw new RangeError(`Invalid offset ${offset}: ${label} has ${capacityBytes} bytes`);
  }
  const length = options?.length === undefined ? capacityBytes - offset : assertBytes(options.length, "length");
  if (offset + length > capacityBytes) {
    throw new RangeError(`Invalid range ${offset}+${length}: it passes the end of ${label} (${capacityBytes} bytes)`);
  }
  return { offset, length };
}

/**
 * Checks an options argument: absent, or an object.
 *
 * @param options The argument.
 * @param what Its name for the message.
 * @returns The options, or an empty object.
 * @throws {TypeError} When it is present but not an object.
 * @example
 * ```ts
 * import { optionsOf } from "./volume_checks.ts";
 * if (Object.keys(optionsOf(undefined, "options")).length !== 0) throw new Error("unexpected");
 * ```
 */
export function optionsOf<T extends object>(options: T | undefined, what: string): Partial<T> {
  if (options === undefined) return {};
  return assertObject(options, what) as Partial<T>;
}

/**
 * Returns an optional backend method bound to its backend, or throws libvirt's "no support" error.
 *
 * @param backend The pool backend.
 * @param operation The method name (`"createVolume"`).
 * @param driver The backend's name, for the error, when known.
 * @param pool The pool name, for the error.
 * @returns The bound method.
 * @throws {UnsupportedError} When the backend lacks it.
 * @example
 * ```ts
 * import { requireOp } from "./volume_checks.ts";
 * import type { StoragePoolBackend } from "virtkit";
 * const backend = { deleteVolume: async () => {} } as unknown as StoragePoolBackend;
 * let threw = false;
 * try { requireOp(backend, "createVolume", "iscsi", "lun-pool"); } catch { threw = true; }
 * if (!threw) throw new Error("unexpected");
 * ```
 */
export function requireOp<K extends keyof StoragePoolBackend>(
  backend: StoragePoolBackend,
  operation: K,
  driver: string | undefined,
  pool: string,
): NonNullable<StoragePoolBackend[K]> {
  const method = backend[operation];
  if (typeof method !== "function") {
    throw new UnsupportedError(operation, { ...(driver === undefined ? {} : { driver }), detail: `pool "${pool}" cannot do it` });
  }
  return (method as (...args: unknown[]) => unknown).bind(backend) as NonNullable<StoragePoolBackend[K]>;
}

/** Jobs reading each volume (clones, downloads), per job manager: a reader is not a lock holder, many may share a source. */
const readersByManager = new WeakMap<JobManager, Map<string, { jobId: string; key: string; pool: string }>>();

/**
 * Records that a job reads a volume (a clone's source, a download) until `release` is called, so that
 * it cannot be deleted, written or have its pool stopped under it.
 *
 * @param jobs The connection's job manager.
 * @param reader The reading job, the volume's key and its pool.
 * @returns A function that forgets the record.
 * @example
 * ```ts
 * import { findReader, trackReader } from "./volume_checks.ts";
 * import type { JobManager } from "virtkit";
 * const jobs = {} as JobManager;
 * const release = trackReader(jobs, { jobId: "job-1", key: "/p/a", pool: "p" });
 * if (findReader(jobs, { key: "/p/a" }) !== "job-1") throw new Error("unexpected");
 * release();
 * ```
 */
export function trackReader(jobs: JobManager, reader: { jobId: string; key: string; pool: string }): () => void {
  let readers = readersByManager.get(jobs);
  if (!readers) readersByManager.set(jobs, (readers = new Map()));
  const token = `${reader.jobId}\u0000${reader.key}`;
  readers.set(token, { jobId: reader.jobId, key: reader.key, pool: reader.pool });
  return () => void readers.delete(token);
}

/**
 * The id of a job reading a volume (by key) or any volume of a pool, if any.
 *
 * @param jobs The connection's job manager.
 * @param query A volume key or a pool name.
 * @returns The first reading job's id.
 * @example
 * ```ts
 * import { findReader } from "./volume_checks.ts";
 * import type { JobManager } from "virtkit";
 * if (findReader({} as JobManager, { pool: "p" }) !== undefined) throw new Error("unexpected");
 * ```
 */
export function findReader(jobs: JobManager, query: { key: string } | { pool: string }): string | undefined {
  for (const reader of readersByManager.get(jobs)?.values() ?? []) {
    if ("key" in query ? reader.key === query.key : reader.pool === query.pool) {
      return reader.jobId;
    }
  }
  return undefined;
}

/**
 * Throws when a volume is in use by a job: one holding its key or one of `locks`, or a clone reading it.
 *
 * @param jobs The connection's job manager.
 * @param use The volume's `key` (its lock), its `label` for messages, the `action` refused (`"delete"`),
 *   further `locks` the caller would take, and whether readers (clones, downloads) count (default true).
 * @throws {ConflictError} Naming the job that uses the volume.
 * @example
 * ```ts
 * import { assertIdle } from "./volume_checks.ts";
 * import type { JobManager } from "virtkit";
 * const jobs = { holder: () => "job-1" } as unknown as JobManager;
 * let message = "";
 * try { assertIdle(jobs, { key: "/p/a", label: 'volume "a" in pool "p"', action: "wipe" }); } catch (e) { message = String(e); }
 * if (!message.includes('job "job-1"')) throw new Error("unexpected");
 * ```
 */
export function assertIdle(
  jobs: JobManager,
  use: { key: string; label: string; action: string; locks?: readonly string[]; readers?: boolean },
): void {
  for (const lock of [use.key, ...(use.locks ?? [])]) {
    const holder = jobs.holder(lock);
    if (holder !== undefined) {
      throw new ConflictError(`Cannot ${use.action} ${use.label}: job "${holder}" is using it`, { jobId: holder });
    }
  }
  const reader = use.readers === false ? undefined : findReader(jobs, { key: use.key });
  if (reader !== undefined) {
    throw new ConflictError(`Cannot ${use.action} ${use.label}: job "${reader}" is reading it`, { jobId: reader });
  }
}
