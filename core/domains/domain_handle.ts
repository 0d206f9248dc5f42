/**
 * The public {@linkcode Domain} handle over a driver's {@linkcode HypervisorConnection}: it checks
 * arguments, then dispatches. It holds no state besides the name and UUID, and emits no events (the
 * driver does, because only it knows about crashes and guest-initiated shutdowns).
 *
 * @module
 */
import type { BlockCommitOptions, BlockCopyOptions, BlockPullOptions, Domain } from "../domain.ts";
import type { HypervisorConnection } from "../driver.ts";
import { type Job, type JobList, UNFINISHED_JOB_STATES } from "../job.ts";
import type { SignalOptions } from "../options.ts";
import { type OperationName, requireOp } from "../require_op.ts";
import { assertName } from "../validate.ts";
import { type DomainXmlOptions, domainToXml } from "../xml/domain_xml.ts";
import type { DiskJobs } from "./disk_jobs.ts";

/** What every domain handle of a connection shares. */
export interface DomainHandleContext {
  /** The driver's side of the connection. */
  readonly driver: HypervisorConnection;
  /** The driver's name, recorded in `UnsupportedError`. */
  readonly driverName: string;
  /** The connection's job list, to find a disk's block job. */
  readonly jobs: JobList;
  /** The connection's disk jobs (pull, copy, commit), see `disk_jobs.ts`. */
  readonly diskJobs: DiskJobs;
  /**
   * Throws a `StateError` once the connection is closed.
   *
   * @param what The action, for the message (`'start'`, `'list domains'`).
   * @param domain The domain acted on, appended as `domain "web1"` (the message is only built when
   *   thrown: every call of every domain method checks).
   */
  assertOpen(what: string, domain?: string): void;
}


/**
 * Creates the handle of one domain. The domain's existence is not checked here: the collection does
 * that (`get` asks the driver), and every method asks the driver again.
 *
 * @param ctx The connection's driver, job list and open-check.
 * @param name The domain's name (already validated).
 * @param uuid The domain's UUID.
 * @returns The frozen handle.
 * @example
 * ```ts
 * import { createDomainHandle } from "./domain_handle.ts";
 * const dom = createDomainHandle({
 *   driver: { listDomains: async () => [], domainInfo: async () => { throw new Error("none"); },
 *             domainConfig: async () => { throw new Error("none"); }, close: async () => {} },
 *   driverName: "demo",
 *   jobs: { list: async () => [], get: async () => { throw new Error("none"); } },
 *   diskJobs: {} as never,
 *   assertOpen() {},
 * }, "web1", "6f1e3a4c-54d6-4a8e-9f6e-1b2c3d4e5f60");
 * let code = "";
 * try { await dom.start(); } catch (error) { code = (error as { code: string }).code; }
 * if (code !== "unsupported") throw new Error("unexpected");
 * ```
 */
export function createDomainHandle(ctx: DomainHandleContext, name: string, uuid: string): Domain {
  const { driver } = ctx;
  /** Checks the connection and the signal, then finds the driver's method (or throws UnsupportedError). */
  const dispatch = <K extends OperationName<HypervisorConnection>>(
    verb: string,
    operation: K,
    options: SignalOptions | undefined,
  ): NonNullable<HypervisorConnection[K]> => {
    ctx.assertOpen(verb, name);
    options?.signal?.throwIfAborted();
    return requireOp(driver, operation, ctx.driverName);
  };
  /** The checks every disk job starts with: a valid target, an open connection, a live signal. */
  const diskJob = (verb: string, disk: string, options: SignalOptions | undefined) => {
    assertName(disk, "disk target");
    ctx.assertOpen(verb, name);
    options?.signal?.throwIfAborted();
  };
  return Object.freeze({
    name,
    uuid,
    // The one method every daemon call makes, so without the layers of the others (an async wrapper,
    // a bound method): domainInfo is a required driver method. Its checks still reject, not throw.
    info: (options?: SignalOptions) => {
      try {
        ctx.assertOpen("read", name);
        options?.signal?.throwIfAborted();
        return driver.domainInfo(name, options);
      } catch (error) {
        return Promise.reject(error);
      }
    },
    config: async (options?: SignalOptions) => await dispatch("read the config of", "domainConfig", options)(name, options),
    xml: async (options?: SignalOptions & DomainXmlOptions) =>
      domainToXml(await dispatch("read the config of", "domainConfig", options)(name, options), options),
    start: async (options?: SignalOptions) => await dispatch("start", "startDomain", options)(name, options),
    async shutdown(options?: SignalOptions & { timeoutMs?: number }): Promise<void> {
      const timeoutMs = options?.timeoutMs;
      if (timeoutMs !== undefined) {
        if (typeof timeoutMs !== "number") throw new TypeError(`Invalid timeoutMs: expected a number, got ${typeof timeoutMs}`);
        if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 0) {
          throw new RangeError(`Invalid timeoutMs: ${timeoutMs} is not a whole number of milliseconds from 0`);
        }
      }
      await dispatch("shut down", "shutdownDomain", options)(name, options);
    },
    destroy: async (options?: SignalOptions) => await dispatch("destroy", "destroyDomain", options)(name, options),
    suspend: async (options?: SignalOptions) => await dispatch("suspend", "suspendDomain", options)(name, options),
    resume: async (options?: SignalOptions) => await dispatch("resume", "resumeDomain", options)(name, options),
    undefine: async (options?: SignalOptions) => await dispatch("undefine", "undefineDomain", options)(name, options),
    disks: async (options?: SignalOptions) => await dispatch("list the disks of", "domainDisks", options)(name, options),
    async blockPull(disk: string, options?: BlockPullOptions): Promise<Job<void>> {
      diskJob(`pull disk "${disk}" of`, disk, options);
      return await ctx.diskJobs.blockPull(name, disk, options);
    },
    async blockCopy(disk: string, options: BlockCopyOptions): Promise<Job<void>> {
      diskJob(`copy disk "${disk}" of`, disk, options);
      return await ctx.diskJobs.blockCopy(name, disk, options);
    },
    async blockCommit(disk: string, options?: BlockCommitOptions): Promise<Job<void>> {
      diskJob(`commit disk "${disk}" of`, disk, options);
      return await ctx.diskJobs.blockCommit(name, disk, options);
    },
    async blockJob(disk: string, options?: SignalOptions): Promise<Job | undefined> {
      assertName(disk, "disk target");
      ctx.assertOpen("find the block job of", name);
      const jobs = await ctx.jobs.list({ domain: name, state: UNFINISHED_JOB_STATES, signal: options?.signal });
      return jobs.find((job) => job.target.domain === name && job.target.disk === disk);
    },
  });
}
