/**
 * Block jobs of a running `qemu:` domain: pull (`block-stream`), copy (`blockdev-mirror`) and commit
 * (`block-commit`) share one QMP wiring. Each job uses the virtkit job id as its QMP `job-id`, with
 * `auto-finalize` and `auto-dismiss` off, so the outcome is never lost: a job that ends while no
 * connection listens stays `pending` or `concluded` in QEMU, with its error, until a new connection
 * re-attaches and finishes it. A connected driver finalizes on `pending` and dismisses the QMP job as
 * soon as it has recorded the outcome, as libvirt does (QEMU keeps the node busy until then); the
 * virtkit job stays listed until `dismiss()`. The verbs map onto `block-job-set-speed`, `job-pause`,
 * `job-resume` and `job-cancel`; a two-phase job (copy, active commit) becomes `ready` on QEMU's
 * `ready` status (`BLOCK_JOB_READY`), `finalize()` sends `job-complete` (the pivot), and `abort()` in
 * `ready` sends `block-job-cancel`, which QEMU ends with a consistent copy and no pivot. The job's states
 * come from `JOB_STATUS_CHANGE`, `BLOCK_JOB_COMPLETED` (its `error`), `BLOCK_JOB_CANCELLED` and
 * `BLOCK_JOB_ERROR`. Progress comes from `query-jobs`, polled every 100 ms on the connection's clock.
 * The cap is QEMU's own rate limiter.
 *
 * @module
 */
import { diskLockKey } from "../../core/domains/disk_lock.ts";
import { StateError, VirtError } from "../../core/errors.ts";
import { type Job, type JobState, UNFINISHED_JOB_STATES } from "../../core/job.ts";
import type { JobController, JobHandle } from "../../core/jobs/types.ts";
import type { SignalOptions } from "../../core/options.ts";
import type { Instance } from "./instance.ts";
import type { QmpEvent } from "./qmp/types.ts";
import { diskAfter, jobTypeOf, type QemuBlockJobEnv, type QemuBlockJobStart, type QmpJobInfo } from "./block_job_parts.ts";
import type { RunDisk, RunJob } from "./state_store.ts";

export { jobTypeOf };
export type { QemuBlockJobEnv, QemuBlockJobStart, QmpJobInfo };

const POLL_MS = 100;
const VERB_TIMEOUT_MS = 10_000;
const NAMES: Record<string, string> = { "block-pull": "Block pull", "block-copy": "Block copy", "block-commit": "Block commit" };

/**
 * A block job of one QEMU, with its QMP wiring. Reached through `dom.blockPull()`, `dom.blockCopy()` and
 * `dom.blockCommit()` on a running `qemu:` domain; block_pull_fake.test.ts and block_copy_fake.test.ts
 * show the whole QMP exchange against the fake peer.
 *
 * @example The job type a record without one stands for (records written before copy and commit)
 * ```ts
 * import { jobTypeOf } from "./block_job.ts";
 * if (jobTypeOf({ id: "job-1", disk: "vda", endBytes: 1, bandwidth: 0 }) !== "block-pull") throw new Error("unexpected");
 * ```
 */
export class QemuBlockJob {
  /** Job id, shared by virtkit and QEMU. */
  readonly id: string;
  /** Its persistent description. */
  readonly record: RunJob;
  /** Whether QEMU still lists the job (until `job-dismiss`). */
  inQemu = true;
  readonly #env: QemuBlockJobEnv;
  readonly #inst: Instance;
  readonly #domain: string;
  readonly #offs: Array<() => void> = [];
  readonly #waiters = new Set<{ status: string; resolve: () => void }>();
  #handle!: JobHandle<void>;
  #lastError: string | undefined;
  /** The outcome QEMU reported, applied once the QMP job is concluded and dismissed (its node is free then). */
  #outcome: (() => unknown) | undefined;
  /** `abort()` came in `ready`: QEMU completes without a pivot, and virtkit reports `aborted`. */
  #abortInReady = false;
  #readyReached = false;
  #ending: Promise<void> | undefined;
  /** Settles once QEMU answered the `job-dismiss` sent when the job concluded (at once when none was sent). */
  #dismissed: Promise<void> = Promise.resolve();

  private constructor(env: QemuBlockJobEnv, inst: Instance, record: RunJob) {
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

  /** Resolves once the job has ended and its outcome is applied. */
  get ended(): Promise<void> {
    return this.#handle.job.wait().then(() => {}, () => {}).then(() => this.#ending);
  }

  /**
   * Starts a job: registers it (taking the disk's lock), wires the events, then sends the command. When
   * QEMU refuses, the job is removed again and QEMU's error is thrown.
   *
   * @param env The connection's parts.
   * @param inst The running domain.
   * @param disk The disk.
   * @param start The job's description and its QMP command.
   * @returns The job, `running`.
   * @throws {ConflictError} When a job already works on the disk.
   * @throws {QmpError} When QEMU refuses the command.
   */
  static async start(env: QemuBlockJobEnv, inst: Instance, disk: RunDisk, start: QemuBlockJobStart): Promise<QemuBlockJob> {
    // Checked once, before QEMU is asked: a command sent cannot be taken back by dropping its reply.
    start.signal?.throwIfAborted();
    const self = new QemuBlockJob(env, inst, { id: "", ...start.record });
    const handle = self.#register(disk, "created", 0);
    self.#wire();
    try {
      await inst.qmp.execute(start.command, { "job-id": self.id, ...start.args, "auto-finalize": false, "auto-dismiss": false });
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
   * A job that ended while no connection listened (QEMU holds it `pending` or `concluded`) is finished
   * here, before this resolves: the job is listed in its final state, with its outcome, at once.
   *
   * @param env The connection's parts.
   * @param inst The running domain.
   * @param record What the run record says about the job.
   * @param info What `query-jobs` says.
   * @returns The job.
   */
  static async attach(env: QemuBlockJobEnv, inst: Instance, record: RunJob, info: QmpJobInfo): Promise<QemuBlockJob> {
    const self = new QemuBlockJob(env, inst, record);
    const disk = inst.disks.find((d) => d.target === record.disk);
    const state = info.status === "paused" || info.status === "standby" ? "paused" : info.status === "ready" ? "ready" : "running";
    self.#readyReached = state === "ready";
    self.#register(disk, state === "ready" ? "running" : state, Math.min(info["current-progress"], info["total-progress"] || record.endBytes));
    if (state === "ready") self.#handle.setState("ready");
    self.#wire();
    if (info.status === "pending") await self.#finalize();
    else if (info.status === "concluded") self.#concludedWithoutEvent(info);
    else void self.#poll();
    if (info.status === "pending" || info.status === "concluded") await self.ended;
    return self;
  }

  #register(disk: RunDisk | undefined, state: JobState, cur: number): JobHandle<void> {
    const controller: JobController = {
      setSpeed: (bps, o) => this.#setSpeed(bps, o),
      pause: (o) => this.#verb("job-pause", "paused", o),
      resume: (o) => this.#verb("job-resume", "running", o),
      abort: (o) => this.#abort(o),
      ...(this.record.twoPhase ? { finalize: (o?: SignalOptions) => this.#complete(o) } : {}),
      dismiss: () => this.#dismiss(),
    };
    const volume = disk?.volume ? { pool: disk.volume.pool, volume: disk.volume.name } : {};
    const handle = this.#env.jobs.create<void>({
      type: jobTypeOf(this.record),
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
      qmp.on("BLOCK_JOB_CANCELLED", () => (this.#outcome = () => this.#abortedOutcome()), mine),
      qmp.on("BLOCK_JOB_COMPLETED", (e) => {
        const error = e.data.error;
        if (typeof error === "string") return void (this.#outcome = () => this.#failedOutcome(error));
        this.#progress(Number(e.data.offset), Number(e.data.len));
        this.#outcome = this.#abortInReady ? () => this.#abortedOutcome() : () => this.#completedOutcome();
      }, mine),
    );
    // QEMU may have reported the outcome just before it ended (a quit cancels jobs): that outcome stands.
    this.#offs.push(this.#inst.onEnd((end) => void this.#end(this.#outcome ?? (() => this.#handle.fail(this.#failure(end.why))))));
  }

  #unwire(): void {
    for (const off of this.#offs.splice(0)) off();
  }

  #onStatus(status: string): void {
    const state = this.#handle.state;
    // A quitting QEMU drains its jobs (paused, running again) before cancelling them: not the user's doing.
    if (this.#inst.exiting && (status === "paused" || status === "running" || status === "ready")) return;
    if (status === "running" && (state === "created" || state === "paused")) this.#handle.setState("running");
    else if (status === "paused" && state === "running") this.#handle.setState("paused");
    else if (status === "ready" && (state === "running" || state === "created")) {
      if (state === "created") this.#handle.setState("running");
      this.#readyReached = true;
      this.#handle.setState("ready");
    } else if (status === "pending") void this.#finalize();
    else if (status === "concluded") void this.#conclude();
    else if (status === "null") this.inQemu = false;
    for (const waiter of [...this.#waiters]) if (waiter.status === status) waiter.resolve();
  }

  #failure(why: string): VirtError {
    const detail = this.#lastError && !why.includes(this.#lastError) ? `${why}; ${this.#lastError}` : why;
    const name = NAMES[jobTypeOf(this.record)] ?? "Block job";
    return new VirtError("job-failed", `${name} of disk "${this.record.disk}" of domain "${this.#domain}" failed: ${detail}`, { driver: "qemu" });
  }

  /**
   * Success: the disk's nodes and (after a pivot) its definition become what the job made them. The
   * definition is written while QEMU drops the old nodes (both only after the outcome is known), and the
   * job completes once both are done, so `disks()` and the persisted definition name the new image when
   * `wait()` resolves.
   */
  async #completedOutcome(): Promise<void> {
    const disk = this.#inst.disks.find((d) => d.target === this.record.disk);
    if (disk) {
      const [top, ...below] = disk.layers;
      const layers = this.record.layersAfter ??
        [top!, ...(this.record.baseNode ? below.slice(below.findIndex((l) => l.node === this.record.baseNode)) : [])];
      this.#inst.disks = this.#inst.disks.map((d) => (d === disk ? diskAfter(this.record, d, layers) : d));
    }
    const source = this.record.sourceAfter;
    const saved = source
      ? this.#env.setDiskSource(this.#domain, this.record.disk, source).then(() => undefined, (error: unknown) => error as Error)
      : Promise.resolve(undefined);
    const [unsaved] = await Promise.all([saved, this.#deleteNodes(this.record.dropNodes), this.#dismissed]);
    if (unsaved) {
      this.#handle.fail(this.#failure(`QEMU pivoted, but the definition could not be saved: ${unsaved.message}`));
      return;
    }
    for (const image of this.record.deleteAfter ?? []) await this.#env.removeImage(image).catch(() => {});
    this.#handle.complete(undefined);
  }

  async #abortedOutcome(): Promise<void> {
    await Promise.all([this.#deleteNodes(this.record.targetNodes), this.#dismissed]);
    // A destination that never got in sync is half-made: it goes. One in sync is a consistent copy: it stays.
    if (!this.#readyReached && this.record.createdDestination) await this.#env.removeImage(this.record.createdDestination).catch(() => {});
    this.#handle.aborted();
  }

  async #failedOutcome(error: string): Promise<void> {
    await Promise.all([this.#deleteNodes(this.record.targetNodes), this.#dismissed]);
    this.#handle.fail(this.#failure(error));
  }

  /**
   * `blockdev-del` of nodes the job no longer needs (format node first, then its file node), sent one
   * behind the other without waiting: QEMU runs a monitor's commands in order, so each runs after the
   * `job-dismiss` that frees the nodes and after the node above it is gone.
   */
  async #deleteNodes(nodes: readonly string[] | undefined): Promise<void> {
    if (this.#inst.isEnded) return;
    await Promise.all((nodes ?? []).map((node) => this.#inst.qmp.execute("blockdev-del", { "node-name": node }).catch(() => {})));
  }

  /** Runs a terminal report once, then tidies the wiring (the QMP job stays until dismissed). */
  #end(report: () => unknown): Promise<void> {
    this.#ending ??= (async () => {
      if (this.finished) return;
      try {
        await report();
      } catch (error) {
        this.#handle.fail(error);
      }
      for (const waiter of [...this.#waiters]) waiter.resolve();
      if (this.#inst.isEnded) this.inQemu = false;
      this.#unwire();
      await this.#env.persist(this.#inst).catch(() => {});
      await this.#env.finished(this).catch(() => {});
    })();
    return this.#ending;
  }

  #progress(cur: number, end: number): void {
    if (this.finished || !Number.isFinite(cur) || !Number.isFinite(end) || end <= 0) return;
    this.#handle.progress(Math.min(Math.max(0, Math.round(cur)), end), end);
  }

  /**
   * The QMP job has ended: dismiss it in QEMU at once (as libvirt does: the node stays busy until then,
   * and virtkit now holds the outcome, which QEMU reported before it concluded), then report the outcome.
   * The outcome's own commands go right behind `job-dismiss` instead of waiting for its reply.
   */
  async #conclude(): Promise<void> {
    this.#dismissed = this.#inst.qmp.execute("job-dismiss", { id: this.id }).then(() => void (this.inQemu = false), () => {});
    const outcome = this.#outcome ?? (() => this.#handle.fail(this.#failure("QEMU ended the job without reporting an outcome")));
    await this.#end(outcome);
  }

  async #finalize(): Promise<void> {
    try {
      await this.#inst.qmp.execute("job-finalize", { id: this.id });
    } catch (error) {
      await this.#end(() => this.#handle.fail(this.#failure(`job-finalize failed: ${(error as Error).message}`)));
    }
  }

  #concludedWithoutEvent(info: QmpJobInfo): void {
    if (info.error === undefined) {
      this.#progress(info["total-progress"], info["total-progress"]);
      this.#outcome = () => this.#completedOutcome();
    } else if (/cancel/i.test(info.error)) this.#outcome = () => this.#abortedOutcome();
    else this.#outcome = () => this.#failedOutcome(info.error!);
    void this.#conclude();
  }

  async #poll(): Promise<void> {
    while (!this.finished && !this.#inst.isEnded) {
      // A paused job stands still: nothing to ask QEMU until it runs again.
      const state = this.#handle.state;
      if (state === "running" || state === "ready") {
        try {
          const jobs = await this.#inst.qmp.execute<QmpJobInfo[]>("query-jobs");
          const info = jobs.find((j) => j.id === this.id);
          if (info && (this.#handle.state === "running" || this.#handle.state === "ready")) {
            this.#progress(info["current-progress"], info["total-progress"]);
          }
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

  /** Before `ready`: `job-cancel`. In `ready`: `block-job-cancel`, which leaves a consistent copy and no pivot. */
  async #abort(options?: SignalOptions): Promise<void> {
    if (this.#handle.state === "ready") {
      this.#abortInReady = true;
      await this.#inst.qmp.execute("block-job-cancel", { device: this.id }, options ?? {});
      return;
    }
    await this.#inst.qmp.execute("job-cancel", { id: this.id }, options ?? {});
  }

  /** `finalize()` in `ready`: `job-complete`, the pivot; the job completes once QEMU has concluded it. */
  async #complete(options?: SignalOptions): Promise<void> {
    await this.#inst.qmp.execute("job-complete", { id: this.id }, options ?? {});
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
        throw new StateError(`${NAMES[jobTypeOf(this.record)] ?? "Block job"} "${this.id}" did not become ${status} within ${VERB_TIMEOUT_MS} ms after ${command}`, {
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
    await this.#env.dismissed(this.id).catch(() => {});
  }
}

