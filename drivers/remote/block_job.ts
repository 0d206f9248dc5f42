/**
 * A libvirt block job (pull) as a virtkit job. Started with BLOCK_PULL, or BLOCK_REBASE when a base is
 * kept, the cap always in bytes per second (libvirt's BANDWIDTH_BYTES flag); `setSpeed` is
 * BLOCK_JOB_SET_SPEED and `abort` BLOCK_JOB_ABORT, both in bytes too. Progress comes from
 * GET_BLOCK_JOB_INFO, polled every {@linkcode POLL_MS} (the manager throttles `job:progress`); the
 * outcome comes from the BLOCK_JOB_2 event the connection routes here, so `wait()` settles as soon as it
 * arrives rather than at the next poll. libvirt has no pause or resume for block jobs: those verbs are
 * left out, and the job manager answers them with `UnsupportedError`.
 *
 * @module
 */
import type { VolumeRef } from "../../core/domain.ts";
import { VirtError } from "../../core/errors.ts";
import type { Job } from "../../core/job.ts";
import type { JobController, JobHandle, JobManager } from "../../core/jobs/types.ts";
import type { SignalOptions } from "../../core/options.ts";
import type { RpcClient } from "./rpc/client.ts";
import type { DomainRefValue } from "./rpc/protocol/common.ts";
import {
  BandwidthBytes,
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

/**
 * One running libvirt block pull.
 *
 * @example
 * ```ts
 * import { RemoteBlockJob } from "./block_job.ts";
 * if (typeof RemoteBlockJob.startPull !== "function") throw new Error("unexpected");
 * ```
 */
export class RemoteBlockJob {
  readonly #env: BlockJobEnv;
  readonly #dom: DomainRefValue;
  readonly #disk: string;
  #handle!: JobHandle<void>;
  #unroute: () => void = () => {};
  #goneSinceMs: number | undefined;
  /** The range libvirt last reported, so a completion can report all of it done. */
  #lastEnd = 0;

  private constructor(env: BlockJobEnv, dom: DomainRefValue, disk: string) {
    this.#env = env;
    this.#dom = dom;
    this.#disk = disk;
  }

  /**
   * Registers the job (taking the disk's lock), routes its events, then asks libvirt to start it.
   * When libvirt refuses, the job is failed and dismissed again, and libvirt's error is thrown.
   *
   * @param env The connection's parts.
   * @param dom The domain.
   * @param disk Target (`"vda"`).
   * @param options Cap (bytes/s), base path, and the pool volume behind the disk (for the job's target).
   * @returns The job, running.
   */
  static async startPull(
    env: BlockJobEnv,
    dom: DomainRefValue,
    disk: string,
    options: { bandwidth?: number; base?: string; volume?: VolumeRef; locks: readonly string[] } & SignalOptions,
  ): Promise<Job<void>> {
    const self = new RemoteBlockJob(env, dom, disk);
    const bandwidth = options.bandwidth ?? 0;
    const controller: JobController = {
      setSpeed: (bps, o) => self.#setSpeed(bps, o),
      abort: (o) => self.#abort(o),
      dismiss: async () => self.#unroute(),
    };
    const handle = env.jobs.create<void>({
      type: "block-pull",
      target: { domain: dom.name, disk, ...(options.volume ? { pool: options.volume.pool, volume: options.volume.name } : {}) },
      endBytes: 0,
      bandwidth,
      locks: options.locks,
      controller,
      driver: "remote",
    });
    self.#handle = handle;
    self.#unroute = env.route(dom.uuid, disk, (status) => self.#onEvent(status));
    const context = { signal: options.signal, objectName: dom.name, operation: `pull disk "${disk}" of domain "${dom.name}"` };
    try {
      if (options.base === undefined) {
        await env.client.call(DOMAIN_BLOCK_PULL, { dom, path: disk, bandwidth, flags: BandwidthBytes.PULL }, context);
      } else {
        await env.client.call(DOMAIN_BLOCK_REBASE, { dom, path: disk, base: options.base, bandwidth, flags: BandwidthBytes.REBASE }, context);
      }
    } catch (error) {
      self.#unroute();
      handle.fail(error);
      await handle.job.dismiss().catch(() => {});
      throw error;
    }
    if (handle.state === "created") handle.setState("running");
    void self.#poll();
    return handle.job;
  }

  get #finished(): boolean {
    const state = this.#handle.state;
    return state === "completed" || state === "failed" || state === "aborted";
  }

  #onEvent(status: number): void {
    if (this.#finished) return;
    if (status === BlockJobStatus.COMPLETED) {
      // libvirt reports no final offset in the event: the whole range is done.
      if (this.#lastEnd > 0) this.#handle.progress(this.#lastEnd, this.#lastEnd);
      this.#handle.complete(undefined);
    } else if (status === BlockJobStatus.FAILED) {
      this.#handle.fail(new VirtError("job-failed", `Block pull of disk "${this.#disk}" of domain "${this.#dom.name}" failed (libvirt reported the job as failed)`, { driver: "remote" }));
    } else if (status === BlockJobStatus.CANCELED) {
      this.#handle.aborted();
    } else return; // READY does not happen for a pull
    this.#unroute();
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
          }
        } else {
          // Gone from libvirt's list: the event says how it ended; without one, it completed (as virsh decides).
          const now = Date.now();
          this.#goneSinceMs ??= now;
          if (now - this.#goneSinceMs >= EVENT_GRACE_MS) return this.#onEvent(BlockJobStatus.COMPLETED);
        }
      } catch (error) {
        if (this.#env.client.closed) {
          this.#handle.fail(new VirtError("job-failed", `Block pull of disk "${this.#disk}" of domain "${this.#dom.name}": lost the connection to libvirt, outcome unknown`, { driver: "remote", cause: error }));
          this.#unroute();
          return;
        }
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  async #setSpeed(bytesPerSecond: number, options?: SignalOptions): Promise<void> {
    await this.#env.client.call(DOMAIN_BLOCK_JOB_SET_SPEED, { dom: this.#dom, path: this.#disk, bandwidth: bytesPerSecond, flags: BandwidthBytes.SET_SPEED }, {
      signal: options?.signal,
      objectName: this.#dom.name,
      operation: `set the speed of the block job on disk "${this.#disk}"`,
    });
    this.#handle.setBandwidth(bytesPerSecond);
  }

  async #abort(options?: SignalOptions): Promise<void> {
    // Synchronous abort: libvirtd sends the CANCELED event before this reply (observed), which ends the job.
    await this.#env.client.call(DOMAIN_BLOCK_JOB_ABORT, { dom: this.#dom, path: this.#disk, flags: 0 }, {
      signal: options?.signal,
      objectName: this.#dom.name,
      operation: `abort the block job on disk "${this.#disk}"`,
    });
    if (!this.#finished) {
      this.#handle.aborted();
      this.#unroute();
    }
  }
}
