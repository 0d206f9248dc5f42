/**
 * Block pull on a running `qemu:` domain: QMP `block-stream` with the virtkit job id as its `job-id`,
 * `auto-finalize` and `auto-dismiss` off, so the outcome is never lost: a job that ends while no
 * connection listens stays `concluded` in QEMU, with its error, until a new connection re-attaches and
 * reads it from `query-jobs`. A connected driver finalizes on `pending` and dismisses the QMP job as
 * soon as it has recorded the outcome, as libvirt does (QEMU keeps the node busy until then); the
 * virtkit job stays listed until `dismiss()`. The verbs map onto `block-job-set-speed`, `job-pause`,
 * `job-resume` and `job-cancel`; the job's states come from `JOB_STATUS_CHANGE`,
 * `BLOCK_JOB_COMPLETED` (its `error`), `BLOCK_JOB_CANCELLED` and `BLOCK_JOB_ERROR`. Progress comes from
 * `query-jobs`, polled every 100 ms on the connection's clock while the job runs. The cap is QEMU's own
 * rate limiter: clusters already in the top image are skipped and not counted against it.
 *
 * @module
 */
import type { Clock } from "../../core/clock.ts";
import type { LiveBlockPullRequest } from "../../core/driver.ts";
import { diskLockKey } from "../../core/domains/disk_lock.ts";
import { NotFoundError, StateError, VirtError } from "../../core/errors.ts";
import { type Job, type JobState, UNFINISHED_JOB_STATES } from "../../core/job.ts";
import type { JobController, JobHandle, JobManager } from "../../core/jobs/types.ts";
import type { SignalOptions } from "../../core/options.ts";
import type { Instance } from "./instance.ts";
import type { QmpEvent } from "./qmp/types.ts";
import type { RunDisk, RunJob } from "./state_store.ts";

/** One entry of `query-jobs`. */
export interface QmpJobInfo {
  /** Job id. */
  readonly id: string;
  /** Job type (`"stream"`). */
  readonly type: string;
  /** QEMU job status. */
  readonly status: string;
  /** Progress so far. */
  readonly "current-progress": number;
  /** Whole range. */
  readonly "total-progress": number;
  /** Set once the job failed. */
  readonly error?: string;
}

/** What a pull needs from the connection. */
export interface QemuPullEnv {
  /** The connection's jobs. */
  readonly jobs: JobManager;
  /** The connection's clock. */
  readonly clock: Clock;
  /** Records a new job of the domain (before anything is persisted). */
  track(inst: Instance, job: QemuPullJob): void;
  /** Saves the domain's run record (with its jobs), after a job starts, changes its cap or ends. */
  persist(inst: Instance): Promise<void>;
}

const POLL_MS = 100;
const VERB_TIMEOUT_MS = 10_000;

/**
 * A block-stream job of one QEMU, with its QMP wiring. Reached through `dom.blockPull()` on a running
 * `qemu:` domain; block_pull_fake.test.ts shows the whole QMP exchange against the fake peer.
 *
 * @example
 * ```ts
 * import { QemuPullJob } from "./block_pull.ts";
 * if (typeof QemuPullJob.start !== "function" || typeof QemuPullJob.attach !== "function") throw new Error("unexpected");
 * ```
 */
export class QemuPullJob {
  /** Job id, shared by virtkit and QEMU. */
  readonly id: string;
  /** Its persistent description. */
  readonly record: RunJob;
  /** Whether QEMU still lists the job (until `job-dismiss`). */
  inQemu = true;
  readonly #env: QemuPullEnv;
  readonly #inst: Instance;
  readonly #domain: string;
  readonly #offs: Array<() => void> = [];
  readonly #waiters = new Set<{ status: string; resolve: () => void }>();
  #handle!: JobHandle<void>;
  #lastError: string | undefined;
  /** The outcome QEMU reported, applied once the QMP job is concluded and dismissed (its node is free then). */
  #outcome: (() => void) | undefined;

  private constructor(env: QemuPullEnv, inst: Instance, record: RunJob) {
    this.#env = env;
    this.#inst = inst;
    this.#domain = inst.name;
    this.id = record.id;
    this.record = record;
  }

  /** The public job. */
  get job(): Job<void> {
    return this.#handle.job;
  }

  /** Whether the job has ended in virtkit. */
  get finished(): boolean {
    return !UNFINISHED_JOB_STATES.includes(this.#handle.state);
  }

  /**
   * Starts a pull: registers the job (taking the disk's lock), wires the events, then sends
   * `block-stream`. When QEMU refuses, the job is removed again and QEMU's error is thrown.
   *
   * @param env The connection's parts.
   * @param inst The running domain.
   * @param disk The disk.
   * @param options Cap and base.
   * @returns The job, `running`.
   * @throws {NotFoundError} When `base` is not in the disk's chain.
   * @throws {ConflictError} When a job already works on the disk.
   * @throws {QmpError} When QEMU refuses the stream.
   */
  static async start(env: QemuPullEnv, inst: Instance, disk: RunDisk, options: Partial<Pick<LiveBlockPullRequest, "bandwidth" | "base" | "signal">>): Promise<QemuPullJob> {
    const [top, ...below] = disk.layers;
    let baseNode: string | undefined;
    if (options.base !== undefined) {
      const base = below.find((l) => l.path === options.base);
      if (!base) {
        throw new NotFoundError("volume", options.base, { driver: "qemu", detail: `it is not in the backing chain of disk "${disk.target}" of domain "${inst.name}"` });
      }
      baseNode = base.node;
    }
    const bandwidth = options.bandwidth ?? 0;
    // Checked once, before QEMU is asked: a block-stream sent cannot be taken back by dropping its reply.
    options.signal?.throwIfAborted();
    const self = new QemuPullJob(env, inst, { id: "", disk: disk.target, endBytes: top!.virtualBytes, bandwidth, ...(baseNode ? { baseNode } : {}) });
    const handle = self.#register(disk, "created", 0);
    self.#wire();
    try {
      await inst.qmp.execute("block-stream", {
        "job-id": self.id,
        device: top!.node,
        ...(bandwidth > 0 ? { speed: bandwidth } : {}),
        ...(baseNode ? { "base-node": baseNode } : {}),
        "auto-finalize": false,
        "auto-dismiss": false,
      });
    } catch (error) {
      self.inQemu = false;
      self.#unwire();
      handle.fail(error);
      await handle.job.dismiss().catch(() => {});
      throw error;
    }
    if (handle.state === "created") handle.setState("running");
    await env.persist(inst);
    void self.#poll();
    return self;
  }

  /**
   * Re-attaches a job QEMU still lists (after the library restarted), with its id, state and progress.
   *
   * @param env The connection's parts.
   * @param inst The running domain.
   * @param record What the run record says about the job.
   * @param info What `query-jobs` says.
   * @returns The job.
   */
  static attach(env: QemuPullEnv, inst: Instance, record: RunJob, info: QmpJobInfo): QemuPullJob {
    const self = new QemuPullJob(env, inst, record);
    const disk = inst.disks.find((d) => d.target === record.disk);
    const state = info.status === "paused" || info.status === "standby" ? "paused" : "running";
    self.#register(disk, state, Math.min(info["current-progress"], record.endBytes));
    self.#wire();
    if (info.status === "pending") void self.#finalize();
    else if (info.status === "concluded") self.#concludedWithoutEvent(info);
    else void self.#poll();
    return self;
  }

  #register(disk: RunDisk | undefined, state: JobState, cur: number): JobHandle<void> {
    const controller: JobController = {
      setSpeed: (bps, o) => this.#setSpeed(bps, o),
      pause: (o) => this.#verb("job-pause", "paused", o),
      resume: (o) => this.#verb("job-resume", "running", o),
      abort: async (o) => void await this.#inst.qmp.execute("job-cancel", { id: this.id }, o ?? {}),
      dismiss: () => this.#dismiss(),
    };
    const volume = disk?.volume ? { pool: disk.volume.pool, volume: disk.volume.name } : {};
    const handle = this.#env.jobs.create<void>({
      type: "block-pull",
      target: { domain: this.#domain, disk: this.record.disk, ...volume },
      endBytes: this.record.endBytes,
      bandwidth: this.record.bandwidth,
      locks: [diskLockKey(this.#domain, this.record.disk)],
      controller,
      driver: "qemu",
      ...(this.record.id ? { id: this.record.id, state, cur } : {}),
    });
    this.#handle = handle;
    if (!this.record.id) {
      (this as { id: string }).id = handle.job.id;
      (this as { record: RunJob }).record = { ...this.record, id: handle.job.id };
    }
    this.#env.track(this.#inst, this);
    return handle;
  }

  #wire(): void {
    const { qmp } = this.#inst;
    const mine = (e: QmpEvent) => e.data.id === this.id || e.data.device === this.id;
    this.#offs.push(
      qmp.on("JOB_STATUS_CHANGE", (e) => this.#onStatus(String(e.data.status)), mine),
      qmp.on("BLOCK_JOB_ERROR", (e) => {
        this.#lastError = `${String(e.data.operation)} error (action ${String(e.data.action)})`;
      }, mine),
      qmp.on("BLOCK_JOB_CANCELLED", () => (this.#outcome = () => this.#handle.aborted()), mine),
      qmp.on("BLOCK_JOB_COMPLETED", (e) => {
        const error = e.data.error;
        if (typeof error === "string") return void (this.#outcome = () => this.#handle.fail(this.#failure(error)));
        this.#progress(Number(e.data.offset), Number(e.data.len));
        this.#outcome = () => this.#completed();
      }, mine),
    );
    // QEMU may have reported the outcome just before it ended (a quit cancels jobs): that outcome stands.
    this.#offs.push(this.#inst.onEnd((end) => this.#end(this.#outcome ?? (() => this.#handle.fail(this.#failure(end.why))))));
  }

  #unwire(): void {
    for (const off of this.#offs.splice(0)) off();
  }

  #onStatus(status: string): void {
    const state = this.#handle.state;
    // A quitting QEMU drains its jobs (paused, running again) before cancelling them: not the user's doing.
    if (this.#inst.exiting && (status === "paused" || status === "running")) return;
    if (status === "running" && (state === "created" || state === "paused")) this.#handle.setState("running");
    else if (status === "paused" && state === "running") this.#handle.setState("paused");
    else if (status === "pending") void this.#finalize();
    else if (status === "concluded") void this.#conclude();
    else if (status === "null") this.inQemu = false;
    for (const waiter of [...this.#waiters]) if (waiter.status === status) waiter.resolve();
  }

  #failure(why: string): VirtError {
    const detail = this.#lastError && !why.includes(this.#lastError) ? `${why}; ${this.#lastError}` : why;
    return new VirtError("job-failed", `Block pull of disk "${this.record.disk}" of domain "${this.#domain}" failed: ${detail}`, { driver: "qemu" });
  }

  #completed(): void {
    const disk = this.#inst.disks.find((d) => d.target === this.record.disk);
    if (disk) {
      const [top, ...below] = disk.layers;
      const keep = this.record.baseNode ? below.slice(below.findIndex((l) => l.node === this.record.baseNode)) : [];
      this.#inst.disks = this.#inst.disks.map((d) => (d === disk ? { ...d, layers: [top!, ...keep] } : d));
    }
    this.#handle.complete(undefined);
  }

  /** Runs a terminal report once, then tidies the wiring (the QMP job stays until dismissed). */
  #end(report: () => void): void {
    if (this.finished) return;
    report();
    for (const waiter of [...this.#waiters]) waiter.resolve();
    if (this.#inst.isEnded) this.inQemu = false;
    this.#unwire();
    void this.#env.persist(this.#inst).catch(() => {});
  }

  #progress(cur: number, end: number): void {
    if (this.finished || !Number.isFinite(cur) || !Number.isFinite(end) || end <= 0) return;
    this.#handle.progress(Math.min(Math.max(0, Math.round(cur)), end), end);
  }

  /**
   * The QMP job has ended: dismiss it in QEMU at once (as libvirt does: the node stays busy until then,
   * and virtkit now keeps the outcome itself), then report the outcome.
   */
  async #conclude(): Promise<void> {
    await this.#inst.qmp.execute("job-dismiss", { id: this.id }).then(() => (this.inQemu = false), () => {});
    const outcome = this.#outcome ?? (() => this.#handle.fail(this.#failure("QEMU ended the job without reporting an outcome")));
    this.#end(outcome);
  }

  async #finalize(): Promise<void> {
    try {
      await this.#inst.qmp.execute("job-finalize", { id: this.id });
    } catch (error) {
      this.#end(() => this.#handle.fail(this.#failure(`job-finalize failed: ${(error as Error).message}`)));
    }
  }

  #concludedWithoutEvent(info: QmpJobInfo): void {
    if (info.error === undefined) {
      this.#progress(info["total-progress"], info["total-progress"]);
      this.#outcome = () => this.#completed();
    } else if (/cancel/i.test(info.error)) this.#outcome = () => this.#handle.aborted();
    else this.#outcome = () => this.#handle.fail(this.#failure(info.error!));
    void this.#conclude();
  }

  async #poll(): Promise<void> {
    while (!this.finished && !this.#inst.isEnded) {
      // A paused job stands still: nothing to ask QEMU until it runs again.
      if (this.#handle.state === "running") {
        try {
          const jobs = await this.#inst.qmp.execute<QmpJobInfo[]>("query-jobs");
          const info = jobs.find((j) => j.id === this.id);
          if (info && this.#handle.state === "running") this.#progress(info["current-progress"], info["total-progress"]);
        } catch {
          return; // QMP is gone: the instance's end fails the job
        }
      }
      await this.#env.clock.sleep(POLL_MS);
    }
  }

  async #setSpeed(bytesPerSecond: number, options?: SignalOptions): Promise<void> {
    await this.#inst.qmp.execute("block-job-set-speed", { device: this.id, speed: bytesPerSecond }, options ?? {});
    this.#handle.setBandwidth(bytesPerSecond);
    (this as { record: RunJob }).record = { ...this.record, bandwidth: bytesPerSecond };
    await this.#env.persist(this.#inst);
  }

  /** Sends a verb and resolves once QEMU reports `status` (or the job ends). */
  async #verb(command: string, status: string, options?: SignalOptions): Promise<void> {
    let waiter!: { status: string; resolve: () => void };
    const reached = new Promise<void>((resolve) => {
      waiter = { status, resolve };
      this.#waiters.add(waiter);
    });
    const timer = new AbortController();
    try {
      await this.#inst.qmp.execute(command, { id: this.id }, options ?? {});
      const timeout = this.#env.clock.sleep(VERB_TIMEOUT_MS, timer.signal).then(() => "timeout" as const, () => "stopped" as const);
      if ((await Promise.race([reached, timeout])) === "timeout") {
        throw new StateError(`Block pull "${this.id}" did not become ${status} within ${VERB_TIMEOUT_MS} ms after ${command}`, {
          state: this.#handle.state,
          driver: "qemu",
        });
      }
    } finally {
      timer.abort();
      this.#waiters.delete(waiter);
    }
  }

  async #dismiss(): Promise<void> {
    if (this.inQemu && !this.#inst.isEnded) {
      await this.#inst.qmp.execute("job-dismiss", { id: this.id }).catch(() => {});
    }
    this.inQemu = false;
    await this.#env.persist(this.#inst).catch(() => {});
  }
}
