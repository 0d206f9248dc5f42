/**
 * The one way down for a disk job: `dom.blockPull()`, `dom.blockCopy()` and `dom.blockCommit()` check
 * their arguments, find the disk, refuse when a job works on it, then either hand a running domain's
 * disk to the driver (`liveBlockPull`, `liveBlockCopy`, `liveBlockCommit`; absent: `UnsupportedError`
 * naming the driver) or run the offline job in core, through the image engine and the copy loop. A
 * driver whose peer runs offline jobs itself (`peerRunsOfflineBlockJobs`: the remote driver on
 * virtkitd) gets shut-off domains' jobs too; the checks and the lock stay here.
 *
 * @module
 */
import type { BackingLayer, BlockCommitOptions, BlockCopyOptions, BlockPullOptions, DiskConfig } from "../domain.ts";
import type { HypervisorConnection, LiveBlockJobRequest } from "../driver.ts";
import type { StorageAccess } from "../storage_backend.ts";
import { NotFoundError, StateError } from "../errors.ts";
import type { EventBus } from "../event_bus.ts";
import type { Job } from "../job.ts";
import type { JobManager } from "../jobs/types.ts";
import type { SignalOptions } from "../options.ts";
import { requireOp } from "../require_op.ts";
import { checkCommitOptions, checkCopyOptions, checkPullOptions } from "./block_job_options.ts";
import { assertDiskIdle, diskLockKey } from "./disk_lock.ts";
import { startVolumeBlockCommit } from "./volume_block_commit.ts";
import { startVolumeBlockCopy } from "./volume_block_copy.ts";
import { startVolumeBlockPull } from "./volume_block_pull.ts";

/** What the disk jobs of a connection need. */
export interface DiskJobsContext {
  /** The driver's side of the connection. */
  readonly driver: HypervisorConnection;
  /** The driver's name, recorded in errors. */
  readonly driverName: string;
  /** The connection's job manager. */
  readonly jobs: JobManager;
  /** The connection's pools. */
  readonly storage: StorageAccess;
  /** The connection's bus. */
  readonly bus: EventBus;
}

/** The disk jobs of one connection. */
export interface DiskJobs {
  /** `dom.blockPull()`. */
  blockPull(domain: string, disk: string, options?: BlockPullOptions): Promise<Job<void>>;
  /** `dom.blockCopy()`. */
  blockCopy(domain: string, disk: string, options: BlockCopyOptions): Promise<Job<void>>;
  /** `dom.blockCommit()`. */
  blockCommit(domain: string, disk: string, options?: BlockCommitOptions): Promise<Job<void>>;
}

/**
 * Finds an image of a disk's chain by path or by libvirt's index notation (`"vda[1]"`).
 *
 * @param chain The chain, active image first.
 * @param target The disk target.
 * @param ref The path or index.
 * @param what `"top"` or `"base"`, for the message.
 * @returns Its index in `chain`.
 * @throws {NotFoundError} When no image of the chain matches.
 * @example
 * ```ts
 * import { chainIndex } from "./disk_jobs.ts";
 * const chain = [{ path: "/i/top.qcow2", format: "qcow2" }, { path: "/i/base.raw", format: "raw" }];
 * if (chainIndex(chain, "vda", "vda[1]", "base") !== 1 || chainIndex(chain, "vda", "/i/top.qcow2", "top") !== 0) throw new Error("unexpected");
 * ```
 */
export function chainIndex(chain: readonly BackingLayer[], target: string, ref: string, what: string): number {
  const indexed = /^(.+)\[(\d+)\]$/.exec(ref);
  if (indexed && indexed[1] === target && Number(indexed[2]) < chain.length) return Number(indexed[2]);
  const index = chain.findIndex((layer) => layer.path === ref);
  if (index >= 0) return index;
  throw new NotFoundError("volume", ref, { detail: `the ${what} of a commit must be an image of the chain of disk "${target}" (a path of disks() or "${target}[N]")` });
}

/**
 * Creates the disk jobs of a connection.
 *
 * @param ctx The driver, jobs, pools and bus.
 * @returns The three starters.
 * @example How a second job on a busy disk is refused, whichever kind it is
 * ```ts
 * import { connect, createVirtualClock } from "virtkit";
 * const clock = createVirtualClock();
 * await using conn = await connect("test:///default", { clock });
 * const dom = await conn.domains.get("test");
 * const pull = await dom.blockPull("vda", { bandwidth: 1024 });
 * const error = await dom.blockCommit("vda").catch((e) => e);
 * if (error.code !== "conflict" || error.jobId !== pull.id) throw new Error("unexpected");
 * await pull.abort();
 * ```
 */
export function createDiskJobs(ctx: DiskJobsContext): DiskJobs {
  const env = { storage: ctx.storage, jobs: ctx.jobs, bus: ctx.bus };
  const { driver, driverName } = ctx;

  /** The disk, whether the driver runs the job (the domain runs, or its peer runs offline jobs), and the request fields every job shares. */
  async function prepare(domain: string, target: string, action: string, bandwidth: number, options: SignalOptions | undefined) {
    const signal = options?.signal;
    const call = signal ? { signal } : undefined;
    const config = await driver.domainConfig(domain, call);
    const disk: DiskConfig | undefined = config.disks.find((d) => d.target === target);
    if (!disk) throw new NotFoundError("disk", target, { driver: driverName, detail: `domain "${domain}" has no such disk` });
    assertDiskIdle(ctx.jobs, domain, target, action, driverName);
    const { state } = await driver.domainInfo(domain, call);
    const request: LiveBlockJobRequest = { domain, disk, locks: [diskLockKey(domain, target)], bandwidth, ...(signal ? { signal } : {}) };
    // A driver whose peer runs offline jobs itself (virtkitd) takes them in every state.
    return { byDriver: state === "running" || state === "paused" || driver.peerRunsOfflineBlockJobs === true, request };
  }
  /**
   * An offline job is started once the domain read shut off; a start that raced it (the driver checks
   * for disk jobs when it launches) shows here: then the job is aborted and the caller told to retry.
   */
  async function offline(domain: string, target: string, action: string, job: Job<void>): Promise<Job<void>> {
    const { state } = await driver.domainInfo(domain);
    if (state !== "running" && state !== "paused") return job;
    await job.abort().catch(() => {});
    await job.wait().catch(() => {});
    throw new StateError(`Cannot ${action} disk "${target}" of domain "${domain}": the domain started meanwhile; its job "${job.id}" was aborted, start it again to run it live`, {
      state,
      driver: driverName,
    });
  }
  /** The offline pivot: the driver switches the disk's definition. */
  const pivotOf = (domain: string, target: string) => {
    const setDiskSource = requireOp(driver, "setDiskSource", driverName);
    return { pivot: (source: Parameters<typeof setDiskSource>[2]) => setDiskSource(domain, target, source) };
  };

  return Object.freeze({
    async blockPull(domain: string, target: string, options?: BlockPullOptions): Promise<Job<void>> {
      const checked = checkPullOptions(target, options);
      const { byDriver, request } = await prepare(domain, target, "pull", checked.bandwidth, options);
      const pull = { ...request, ...(checked.base === undefined ? {} : { base: checked.base }) };
      if (byDriver) return await requireOp(driver, "liveBlockPull", driverName)(pull);
      return await offline(domain, target, "pull", await startVolumeBlockPull(env, pull));
    },
    async blockCopy(domain: string, target: string, options: BlockCopyOptions): Promise<Job<void>> {
      const checked = checkCopyOptions(target, options);
      const { byDriver, request } = await prepare(domain, target, "copy", checked.bandwidth, options);
      const copy = { ...request, ...checked };
      if (byDriver) return await requireOp(driver, "liveBlockCopy", driverName)(copy);
      return await offline(domain, target, "copy", await startVolumeBlockCopy(env, copy, pivotOf(domain, target)));
    },
    async blockCommit(domain: string, target: string, options?: BlockCommitOptions): Promise<Job<void>> {
      const checked = checkCommitOptions(target, options);
      const { byDriver, request } = await prepare(domain, target, "commit", checked.bandwidth, options);
      const disks = await requireOp(driver, "domainDisks", driverName)(domain, options?.signal ? { signal: options.signal } : undefined);
      const info = disks.find((d) => d.target === target)!;
      const chain: BackingLayer[] = [{ path: info.path, format: info.format }, ...info.backingChain];
      const topIndex = checked.top === undefined ? 0 : chainIndex(chain, target, checked.top, "top");
      const baseIndex = checked.base === undefined ? chain.length - 1 : chainIndex(chain, target, checked.base, "base");
      const top = chain[topIndex]!;
      if (topIndex === chain.length - 1) {
        const why = top.format === "raw" ? "it is raw, so it has no backing image" : "it is the deepest image of the chain";
        throw new TypeError(`Invalid top of block commit on disk "${target}" of domain "${domain}": "${top.path}" has nothing below it to commit into (${why})`);
      }
      if (baseIndex <= topIndex) {
        throw new TypeError(`Invalid base of block commit on disk "${target}" of domain "${domain}": "${chain[baseIndex]!.path}" is not below the top "${top.path}"`);
      }
      const commit = { ...request, chain, topIndex, baseIndex, deleteCommitted: checked.deleteCommitted };
      if (byDriver) return await requireOp(driver, "liveBlockCommit", driverName)(commit);
      // Only an active commit pivots; an intermediate one re-links the chain and needs no definition change.
      const hooks = topIndex === 0 ? pivotOf(domain, target) : { pivot: () => Promise.resolve() };
      return await offline(domain, target, "commit", await startVolumeBlockCommit(env, commit, hooks));
    },
  });
}
