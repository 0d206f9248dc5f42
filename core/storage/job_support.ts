/**
 * What the volume jobs share: the connection parts they need, and opening a volume for a writing job
 * after the argument and busy checks. Internal to `core/storage`.
 *
 * @module
 */
import type { StorageAccess, VolumeRecord } from "../storage_backend.ts";
import type { EventBus } from "../event_bus.ts";
import type { JobManager } from "../jobs/types.ts";
import type { SignalOptions } from "../options.ts";
import { assertBandwidth } from "../units.ts";
import { assertName } from "../validate.ts";
import type { VolumeIO } from "../volume_io.ts";
import { assertIdle, volumeLabel } from "./volume_checks.ts";

/** What every volume job needs from the connection. */
export interface VolumeJobEnv {
  /** The connection's pools. */
  access: StorageAccess;
  /** The connection's job manager. */
  jobs: JobManager;
  /** The connection's bus, for the volume events of a clone (none are emitted without it). */
  bus?: EventBus;
  /** The backend name of a pool, for errors (`StorageAccess` does not tell it). */
  driverName?: (pool: string) => string | undefined;
}

/** Which volume a job works on. */
export interface VolumeJobOptions extends VolumeJobEnv, SignalOptions {
  /** Pool name. */
  pool: string;
  /** Volume name. */
  volume: string;
  /** Cap in bytes per second (0 or absent: unlimited). */
  bandwidth?: number;
}

/** A volume opened for writing by a job, after the argument and busy checks. */
export interface PreparedVolume {
  /** Its record. */
  record: VolumeRecord;
  /** Its label for messages. */
  label: string;
  /** Its writable handle (the job closes it). */
  io: VolumeIO;
  /** The job's cap. */
  bandwidth: number;
  /** Every lock the job takes. */
  locks: string[];
  /**
   * Throws `ConflictError` when a job uses the volume (or a lock); called right before the job starts,
   * with no await between, so the check and the start are one step (a job started meanwhile is seen).
   */
  assertIdle(): void;
}

/**
 * Checks a job's arguments, finds the volume and opens it; whether a job uses it is checked once, by
 * the returned `assertIdle()` just before the job starts.
 *
 * @param options The volume and cap.
 * @param use The job's verb for messages, locks besides the volume's key, and whether it writes
 *   (default true; a reader takes no lock).
 * @returns The open volume and what the job needs.
 * @throws {NotFoundError} For an unknown pool or volume. `StateError` for an inactive pool.
 * @internal
 * @example A volume a job holds is opened, then refused by the one check
 * ```ts
 * import { prepare } from "./job_support.ts";
 * const jobs = { startLocal() {}, holder: (key: string) => (key === "/pool/disk1" ? "job-7" : undefined) };
 * const access = {
 *   backend: async () => ({ lookupVolume: async (name: string) => ({ name, key: "/pool/disk1", path: "/pool/disk1" }) }),
 *   openVolume: async () => ({ close: async () => {} }),
 * };
 * const prepared = await prepare({ access, jobs, pool: "images", volume: "disk1" } as never, { action: "wipe" });
 * let error: { jobId?: string; message?: string } | undefined;
 * try { prepared.assertIdle(); } catch (e) { error = e as { jobId?: string }; }
 * if (error?.jobId !== "job-7" || !error.message?.includes("Cannot wipe") || prepared.locks[0] !== "/pool/disk1") throw new Error("unexpected");
 * ```
 */
export async function prepare(
  options: VolumeJobOptions,
  use: { action: string; locks?: readonly string[]; write?: boolean },
): Promise<PreparedVolume> {
  if (typeof options.access?.openVolume !== "function" || typeof options.jobs?.startLocal !== "function") {
    throw new TypeError(`Cannot ${use.action} a volume: access and jobs are required`);
  }
  assertName(options.pool, "pool name");
  assertName(options.volume, "volume name");
  const bandwidth = assertBandwidth(options.bandwidth, "bandwidth");
  options.signal?.throwIfAborted();
  const write = use.write !== false;
  const extra = use.locks ?? [];
  const label = volumeLabel(options.pool, options.volume);
  const backend = await options.access.backend(options.pool);
  const record = await backend.lookupVolume(options.volume, signalOnly(options));
  const io = await options.access.openVolume(options.pool, options.volume, { write }, signalOnly(options));
  const jobs = options.jobs;
  return {
    record,
    label,
    io,
    bandwidth,
    locks: write ? [record.key, ...extra] : [...extra],
    assertIdle: () => assertIdle(jobs, { key: record.key, label, action: use.action, locks: extra, readers: write }),
  };
}

/**
 * Runs `body`, closing `io` when it throws.
 *
 * @param io The handle to close on failure.
 * @param body The work.
 * @returns What `body` returns.
 * @example
 * ```ts
 * import { guard } from "./job_support.ts";
 * import type { VolumeIO } from "virtkit";
 * let closed = false;
 * const io = { close: async () => { closed = true; } } as unknown as VolumeIO;
 * await guard(io, () => { throw new Error("no"); }).catch(() => {});
 * if (!closed) throw new Error("unexpected");
 * ```
 */
export async function guard<T>(io: VolumeIO, body: () => T | Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (error) {
    await io.close().catch(() => {});
    throw error;
  }
}

/**
 * The options a backend gets: only the signal, never the caller's other option fields. Every storage
 * call reaches its backend through here, so an already aborted signal is refused here, by core, with
 * the signal's own reason: a backend that never looks at its signal still cannot start an aborted call.
 *
 * @param options The caller's options.
 * @returns `{ signal }`, or undefined without one.
 * @throws The signal's reason, when it is already aborted.
 * @example
 * ```ts
 * import { signalOnly } from "./job_support.ts";
 * if (signalOnly({ bandwidth: 5 } as { signal?: AbortSignal }) !== undefined) throw new Error("unexpected");
 * const reason = new Error("stop");
 * let caught: unknown;
 * try { signalOnly({ signal: AbortSignal.abort(reason) }); } catch (error) { caught = error; }
 * if (caught !== reason) throw new Error("unexpected");
 * ```
 */
export function signalOnly(options: SignalOptions | undefined): SignalOptions | undefined {
  options?.signal?.throwIfAborted();
  return options?.signal ? { signal: options.signal } : undefined;
}

/**
 * The target side of a copy that waits at the job's pause gate before every write: a chunk whose tokens
 * were being paid when `pause()` came lands only after `resume()`, so a paused job's progress stands still.
 *
 * @param io Where the job writes.
 * @param checkpoint The job's `ctx.checkpoint`.
 * @returns `write`, `writeZeroes` and (when `io` has it) `copyFrom` behind the gate.
 * @internal
 * @example
 * ```ts
 * import { pausable } from "./job_support.ts";
 * const writes: number[] = [];
 * const target = pausable({ write: async (offset) => { writes.push(offset); }, writeZeroes: async () => {} }, () => Promise.resolve());
 * await target.write(512, new Uint8Array(1));
 * if (writes.join() !== "512") throw new Error("unexpected");
 * ```
 */
export function pausable(
  io: Pick<VolumeIO, "write" | "writeZeroes" | "copyFrom">,
  checkpoint: () => Promise<void>,
): Pick<VolumeIO, "write" | "writeZeroes" | "copyFrom"> {
  const gated: Pick<VolumeIO, "write" | "writeZeroes" | "copyFrom"> = {
    async write(offset, data, options) {
      await checkpoint();
      await io.write(offset, data, options);
    },
    async writeZeroes(offset, length, options) {
      await checkpoint();
      await io.writeZeroes(offset, length, options);
    },
  };
  if (typeof io.copyFrom === "function") {
    gated.copyFrom = async (source, sourceOffset, offset, length, options) => {
      await checkpoint();
      return await io.copyFrom!(source, sourceOffset, offset, length, options);
    };
  }
  return gated;
}
