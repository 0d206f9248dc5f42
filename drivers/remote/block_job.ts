/**
 * A libvirt block job (pull, copy, commit) as a virtkit job. Pull is started with BLOCK_PULL, or
 * BLOCK_REBASE when a base is kept; copy and commit by their starters (`block_copy.ts`,
 * `block_commit.ts`), which hand this class the call that starts them. Caps are always in bytes per
 * second (libvirt's BANDWIDTH_BYTES flags); `setSpeed` is BLOCK_JOB_SET_SPEED and `abort` BLOCK_JOB_ABORT.
 * Progress comes from GET_BLOCK_JOB_INFO, polled every {@linkcode POLL_MS} (the manager throttles
 * `job:progress`); the outcome comes from the BLOCK_JOB_2 event the connection routes here, so `wait()`
 * settles as soon as it arrives rather than at the next poll.
 *
 * Two-phase jobs (a copy, an active commit) become `ready` on the event's READY status, or when a poll
 * reads `cur == end` (libvirt's qemu driver holds `cur` below `end` until QEMU says the job is ready,
 * so polling clients may rely on it); `finalize()` is BLOCK_JOB_ABORT with PIVOT, which libvirt answers
 * once the pivot is done. libvirt has no pause or resume for block jobs: those verbs are left out, and
 * the job manager answers them with `UnsupportedError`.
 *
 * @module
 */
import type { VolumeRef } from "../../core/domain.ts";
import { ConflictError, UnsupportedError, VirtError } from "../../core/errors.ts";
import type { Job, JobType } from "../../core/job.ts";
import type { JobController, JobHandle, JobManager } from "../../core/jobs/types.ts";
import type { SignalOptions } from "../../core/options.ts";
import type { CallOptions, RpcClient } from "./rpc/client.ts";
import type { DomainRefValue } from "./rpc/protocol/common.ts";
import {
  BandwidthBytes,
  BlockJobAbortFlags,
  BlockJobStatus,
  DOMAIN_BLOCK_JOB_ABORT,
  DOMAIN_BLOCK_JOB_SET_SPEED,
  DOMAIN_BLOCK_PULL,
  DOMAIN_BLOCK_REBASE,
  DOMAIN_GET_BLOCK_JOB_INFO,
} from "./rpc/protocol/domain.ts";

/** Progress polling period while the job runs. */
export const POLL_MS = 200;
/** How long a job libvirt no longer lists waits for its outcome event before it counts as completed (virsh's rule). */
const EVENT_GRACE_MS = 2_000;

/** What a block job needs from its connection. */
export interface BlockJobEnv {
  /** The RPC client. */
  readonly client: RpcClient;
  /** The connection's jobs. */
  readonly jobs: JobManager;
  /** Routes BLOCK_JOB_2 events of `(uuid, disk)` here until the returned function is called. */
  route(uuid: string, disk: string, onEvent: (status: number) => void): () => void;
}

/** What starts a block job, as `start()` takes it. */
export interface BlockJobSpec extends SignalOptions {
  /** `block-pull`, `block-copy` or `block-commit`. */
  readonly type: JobType;
  /** The verb for messages: `"pull"`, `"copy"`, `"commit"`. */
  readonly verb: string;
  /** A copy or an active commit: `ready`, then `finalize()` pivots. */
  readonly twoPhase: boolean;
  /** Initial cap, bytes per second. */
  readonly bandwidth: number;
  /** Locks the job takes (the disk's). */
  readonly locks: readonly string[];
  /** The pool volume behind the disk, for the job's target. */
  readonly volume?: VolumeRef;
  /** Asks libvirt to start the job. */
  begin(context: CallOptions): Promise<void>;
  /**
   * Undoes what the starter made (a destination it created) when the job fails to start, fails, or is
   * aborted before it was ever `ready` (a copy aborted in `ready` is a consistent image: it stays).
   */
  cleanup?(): Promise<void>;
}

/**
 * One running libvirt block job.
 *
 * @example
 * ```ts
 * import { RemoteBlockJob } from "./block_job.ts";
 * if (typeof RemoteBlockJob.startPull !== "function" || typeof RemoteBlockJob.start !== "function") throw new Error("unexpected");
 * ```
 */
export class RemoteBlockJob {
  readonly #env: BlockJobEnv;
  readonly #dom: DomainRefValue;
  readonly #disk: string;
  readonly #spec: BlockJobSpec;
  #handle!: JobHandle<void>;
  #unroute: () => void = () => {};
  #goneSinceMs: number | undefined;
  /** The range libvirt last reported, so a completion can report all of it done. */
  #lastEnd = 0;
  /** An abort of a two-phase job was asked: COMPLETED then still means aborted (QEMU completes a mirror cancelled in ready). */
  #aborting = false;
  #wasReady = false;

  private constructor(env: BlockJobEnv, dom: DomainRefValue, disk: string, spec: BlockJobSpec) {
    this.#env = env;
    this.#dom = dom;
    this.#disk = disk;
    this.#spec = spec;
  }

  /**
   * Registers a pull: BLOCK_PULL, or BLOCK_REBASE with the base kept.
   *
   * @param env The connection's parts.
   * @param dom The domain.
   * @param disk Target (`"vda"`).
   * @param options Cap (bytes/s), base path, and the pool volume behind the disk (for the job's target).
   * @returns The job, running.
   */
  static startPull(
    env: BlockJobEnv,
    dom: DomainRefValue,
    disk: string,
    options: { bandwidth?: number; base?: string; volume?: VolumeRef; locks: readonly string[] } & SignalOptions,
  ): Promise<Job<void>> {
    const bandwidth = options.bandwidth ?? 0;
    const base = options.base;
    return RemoteBlockJob.start(env, dom, disk, {
      type: "block-pull",
      verb: "pull",
      twoPhase: false,
      bandwidth,
      locks: options.locks,
      ...(options.volume ? { volume: options.volume } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      begin: async (context) => {
        if (base === undefined) await env.client.call(DOMAIN_BLOCK_PULL, { dom, path: disk, bandwidth, flags: BandwidthBytes.PULL }, context);
        else await env.client.call(DOMAIN_BLOCK_REBASE, { dom, path: disk, base, bandwidth, flags: BandwidthBytes.REBASE }, context);
      },
    });
  }

  /**
   * Registers the job (taking the disk's lock), routes its events, then asks libvirt to start it.
   * When libvirt refuses, the job is failed and dismissed again, the starter's cleanup runs, and
   * libvirt's error is thrown.
   *
   * @param env The connection's parts.
   * @param dom The domain.
   * @param disk Target (`"vda"`).
   * @param spec What the job is and the call that starts it.
   * @returns The job, running.
   */
  static async start(env: BlockJobEnv, dom: DomainRefValue, disk: string, spec: BlockJobSpec): Promise<Job<void>> {
    const self = new RemoteBlockJob(env, dom, disk, spec);
    const controller: JobController = {
      setSpeed: (bps, o) => self.#setSpeed(bps, o),
      abort: (o) => self.#abort(o),
      ...(spec.twoPhase ? { finalize: (o?: SignalOptions) => self.#finalize(o) } : {}),
      dismiss: async () => self.#unroute(),
    };
    const handle = env.jobs.create<void>({
      type: spec.type,
      target: { domain: dom.name, disk, ...(spec.volume ? { pool: spec.volume.pool, volume: spec.volume.name } : {}) },
      endBytes: 0,
      bandwidth: spec.bandwidth,
      locks: spec.locks,
      controller,
      driver: "remote",
    });
    self.#handle = handle;
    self.#unroute = env.route(dom.uuid, disk, (status) => self.#onEvent(status));
    try {
      await spec.begin({ signal: spec.signal, objectName: dom.name, operation: `${spec.verb} disk "${disk}" of domain "${dom.name}"` });
    } catch (error) {
      self.#unroute();
      handle.fail(error);
      await handle.job.dismiss().catch(() => {});
      await spec.cleanup?.().catch(() => {});
      throw asConflict(error, `${spec.verb} disk "${disk}" of domain "${dom.name}"`);
    }
    if (handle.state === "created") handle.setState("running");
    void self.#poll();
    return handle.job;
  }

  get #finished(): boolean {
    const state = this.#handle.state;
    return state === "completed" || state === "failed" || state === "aborted";
  }

  get #what(): string {
    const verb = this.#spec.verb;
    return `Block ${verb} of disk "${this.#disk}" of domain "${this.#dom.name}"`;
  }

  #ready(): void {
    if (!this.#spec.twoPhase || this.#handle.state !== "running") return;
    this.#wasReady = true;
    if (this.#lastEnd > 0) this.#handle.progress(this.#lastEnd, this.#lastEnd);
    this.#handle.setState("ready");
  }

  #onEvent(status: number): void {
    if (this.#finished) return;
    // A job that ends at once (a small intermediate commit) can send its event before the reply of the
    // call that started it: it was running all along, so it gets there first.
    if (this.#handle.state === "created") this.#handle.setState("running");
    if (status === BlockJobStatus.READY) return this.#ready();
    if (status === BlockJobStatus.COMPLETED && !this.#aborting) {
      // libvirt reports no final offset in the event: the whole range is done.
      if (this.#lastEnd > 0) this.#handle.progress(this.#lastEnd, this.#lastEnd);
      this.#handle.complete(undefined);
    } else if (status === BlockJobStatus.FAILED) {
      this.#handle.fail(new VirtError("job-failed", `${this.#what} failed (libvirt reported the job as failed)`, { driver: "remote" }));
      this.#cleanup();
    } else {
      this.#handle.aborted();
      this.#cleanup();
    }
    this.#unroute();
  }

  /** After failure or an abort before `ready`: the starter's cleanup (its errors are not the job's). */
  #cleanup(): void {
    if (!this.#wasReady) void this.#spec.cleanup?.().catch(() => {});
  }

  async #poll(): Promise<void> {
    while (!this.#finished) {
      try {
        const info = await this.#env.client.call(DOMAIN_GET_BLOCK_JOB_INFO, { dom: this.#dom, path: this.#disk, flags: BandwidthBytes.JOB_INFO });
        if (this.#finished) return;
        if (info.found === 1) {
          this.#goneSinceMs = undefined;
          if (info.end > 0) {
            this.#lastEnd = info.end;
            this.#handle.progress(Math.min(info.cur, info.end), info.end);
            if (info.cur >= info.end) this.#ready();
          }
        } else {
          // Gone from libvirt's list: the event says how it ended; without one, it completed (as virsh decides).
          const now = Date.now();
          this.#goneSinceMs ??= now;
          if (now - this.#goneSinceMs >= EVENT_GRACE_MS) return this.#onEvent(BlockJobStatus.COMPLETED);
        }
      } catch (error) {
        if (this.#env.client.closed) {
          this.#handle.fail(new VirtError("job-failed", `${this.#what}: lost the connection to libvirt, outcome unknown`, { driver: "remote", cause: error }));
          this.#unroute();
          return;
        }
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  #context(verb: string, options?: SignalOptions): CallOptions {
    return { signal: options?.signal, objectName: this.#dom.name, operation: `${verb} the block job on disk "${this.#disk}"` };
  }

  async #setSpeed(bytesPerSecond: number, options?: SignalOptions): Promise<void> {
    await this.#env.client.call(DOMAIN_BLOCK_JOB_SET_SPEED, { dom: this.#dom, path: this.#disk, bandwidth: bytesPerSecond, flags: BandwidthBytes.SET_SPEED }, this.#context("set the speed of", options));
    this.#handle.setBandwidth(bytesPerSecond);
  }

  async #abort(options?: SignalOptions): Promise<void> {
    // Synchronous abort: libvirtd sends the CANCELED event before this reply (observed), which ends the job.
    this.#aborting = this.#spec.twoPhase;
    try {
      await this.#env.client.call(DOMAIN_BLOCK_JOB_ABORT, { dom: this.#dom, path: this.#disk, flags: 0 }, this.#context("abort", options));
    } catch (error) {
      this.#aborting = false;
      throw error;
    }
    if (!this.#finished) this.#onEvent(BlockJobStatus.CANCELED);
  }

  async #finalize(options?: SignalOptions): Promise<void> {
    // A synchronous pivot: libvirt answers once the domain runs on the new image (its COMPLETED event first).
    await this.#env.client.call(DOMAIN_BLOCK_JOB_ABORT, { dom: this.#dom, path: this.#disk, flags: BlockJobAbortFlags.PIVOT }, this.#context("pivot", options));
    if (!this.#finished) this.#onEvent(BlockJobStatus.COMPLETED);
  }
}

/**
 * libvirt refuses a block job on a disk that has one with OPERATION_UNSUPPORTED ("disk 'vda' already in
 * active block job"), which the error tree reads as `UnsupportedError`; virtkit's contract says a second
 * job on a busy disk is a `ConflictError`. That one refusal is recognised by its text (stable since
 * libvirt 1.2) and rethrown as the conflict it is; every other error is returned as it was.
 *
 * @param error What the start call threw.
 * @param operation What was being done, for the message.
 * @returns The error to throw.
 * @example
 * ```ts
 * import { UnsupportedError } from "virtkit";
 * import { asConflict } from "./block_job.ts";
 * const busy = asConflict(new UnsupportedError("copy", { detail: "disk 'vda' already in active block job" }), "copy disk \"vda\"");
 * if (busy.name !== "ConflictError" || !busy.message.includes("already in active block job")) throw new Error(busy.message);
 * const other = new UnsupportedError("copy", { detail: "no" });
 * if (asConflict(other, "copy") !== other) throw new Error("other errors pass through");
 * ```
 */
export function asConflict(error: unknown, operation: string): unknown {
  const busy = error instanceof UnsupportedError ? /disk '[^']*' already in active block job/.exec(error.message) : null;
  return busy ? new ConflictError(`Cannot ${operation}: ${busy[0]}`, { driver: "remote", cause: error }) : error;
}
