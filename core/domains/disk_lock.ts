/**
 * The lock every job on a domain's disk takes, and the checks that a disk (or a whole domain) has no
 * job: one key and one message for pull, copy and commit on every driver, and for the domain verbs
 * (start, undefine) that must not run under a disk job.
 *
 * @module
 */
import { ConflictError } from "../errors.ts";
import type { JobManager } from "../jobs/types.ts";

/**
 * The lock key of one disk of a domain.
 *
 * @param domain Domain name.
 * @param disk Disk target.
 * @returns The key (`"disk:web1/vda"`).
 * @example
 * ```ts
 * import { diskLockKey } from "./disk_lock.ts";
 * if (diskLockKey("web1", "vda") !== "disk:web1/vda") throw new Error("unexpected");
 * ```
 */
export function diskLockKey(domain: string, disk: string): string {
  return `disk:${domain}/${disk}`;
}

/**
 * Refuses when a job works on a disk.
 *
 * @param jobs The connection's job manager.
 * @param domain Domain name.
 * @param disk Disk target.
 * @param action What the caller wanted to do, for the message (`"copy"`).
 * @param driver Driver name recorded in the error.
 * @throws {ConflictError} Naming the job (its id is `jobId`).
 * @example
 * ```ts
 * import { assertDiskIdle, diskLockKey } from "./disk_lock.ts";
 * import { createJobManager } from "../jobs/job_manager.ts";
 * import { createEventBus } from "../event_bus.ts";
 * import { createVirtualClock } from "virtkit";
 * const clock = createVirtualClock();
 * const jobs = createJobManager({ bus: createEventBus({ clock }), clock });
 * assertDiskIdle(jobs, "web1", "vda", "copy"); // no job: passes
 * const job = jobs.startLocal({ type: "block-pull", target: {}, endBytes: 1, locks: [diskLockKey("web1", "vda")],
 *   run: (ctx) => ctx.ready() });
 * let jobId = "";
 * try { assertDiskIdle(jobs, "web1", "vda", "copy"); } catch (error) { jobId = (error as { jobId: string }).jobId; }
 * if (jobId !== job.id) throw new Error("unexpected");
 * await job.abort();
 * ```
 */
export function assertDiskIdle(jobs: Pick<JobManager, "holder">, domain: string, disk: string, action: string, driver?: string): void {
  const holder = jobs.holder(diskLockKey(domain, disk));
  if (holder === undefined) return;
  throw new ConflictError(`Cannot ${action} disk "${disk}" of domain "${domain}": job "${holder}" works on it`, {
    jobId: holder,
    ...(driver === undefined ? {} : { driver }),
  });
}

/**
 * Refuses a domain verb while a job works on any of its disks.
 *
 * @param jobs The connection's job manager.
 * @param domain The domain's name and disk targets.
 * @param verb The verb, for the message (`"undefine"`).
 * @param driver Driver name recorded in the error.
 * @throws {ConflictError} Naming the job and the disk.
 * @example
 * ```ts
 * import { assertDomainIdle } from "./disk_lock.ts";
 * const jobs = { holder: (lock: string) => (lock === "disk:web1/vdb" ? "job-3" : undefined) };
 * let message = "";
 * try {
 *   assertDomainIdle(jobs as never, { name: "web1", disks: [{ target: "vda" }, { target: "vdb" }] }, "undefine");
 * } catch (error) { message = (error as Error).message; }
 * if (message !== 'Cannot undefine domain "web1": job "job-3" works on its disk "vdb"') throw new Error("unexpected");
 * ```
 */
export function assertDomainIdle(
  jobs: Pick<JobManager, "holder">,
  domain: { readonly name: string; readonly disks: ReadonlyArray<{ readonly target: string }> },
  verb: string,
  driver?: string,
): void {
  for (const disk of domain.disks) {
    const holder = jobs.holder(diskLockKey(domain.name, disk.target));
    if (holder === undefined) continue;
    throw new ConflictError(`Cannot ${verb} domain "${domain.name}": job "${holder}" works on its disk "${disk.target}"`, {
      jobId: holder,
      ...(driver === undefined ? {} : { driver }),
    });
  }
}
