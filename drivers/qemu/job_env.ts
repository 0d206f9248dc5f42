/**
 * What the block jobs of a `qemu:` connection reach outside QEMU: the definitions (a pivot persists the
 * disk's new image), the pools and files (a copy's destination is removed after an early abort; a commit
 * with `deleteCommitted` removes what it committed), and the state directory, where a finished job's
 * outcome is kept until it is dismissed, so a connection opened later lists it in its final state.
 *
 * @module
 */
import { rm } from "node:fs/promises";
import type { DriverContext } from "../../core/driver.ts";
import { jobSpecFromInfo } from "../../core/jobs/job_spec.ts";
import type { JobManager } from "../../core/jobs/types.ts";
import { TERMINAL_JOB_STATES } from "../../core/job.ts";
import type { QemuBlockJob, QemuBlockJobEnv } from "./block_job.ts";
import type { DomainDefinitions } from "./domain_table.ts";
import type { Instance } from "./instance.ts";
import type { StateStore } from "./state_store.ts";

/** What {@linkcode createBlockJobEnv} wires together. */
export interface BlockJobEnvParts {
  /** The connection's context. */
  readonly ctx: DriverContext;
  /** The state directory. */
  readonly store: StateStore;
  /** The definitions. */
  readonly defs: DomainDefinitions;
  /** Records a job of an instance. */
  track(inst: Instance, job: QemuBlockJob): void;
  /** Saves an instance's run record. */
  persist(inst: Instance): Promise<void>;
}

/**
 * The block job environment of a connection.
 *
 * @param parts The connection's context, store, definitions and run-record hooks.
 * @returns The environment.
 * @example A dismissed job's kept outcome is forgotten
 * ```ts
 * import { createBlockJobEnv } from "./job_env.ts";
 * import { StateStore } from "./state_store.ts";
 * import { mkdtempSync, rmSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * const dir = mkdtempSync(join(tmpdir(), "virtkit-doc-"));
 * try {
 *   const store = new StateStore(dir);
 *   await store.init();
 *   await store.saveFinishedJob({ id: "job-1", type: "block-pull", state: "completed", target: {}, cur: 1, end: 1,
 *     bandwidth: 0, bytesPerSecond: 0, createdAt: 0, finishedAt: 1 });
 *   const env = createBlockJobEnv({ ctx: {} as never, store, defs: {} as never, track() {}, persist: async () => {} });
 *   await env.dismissed("job-1");
 *   if ((await store.loadFinishedJobs()).length !== 0) throw new Error("unexpected");
 * } finally {
 *   rmSync(dir, { recursive: true, force: true });
 * }
 * ```
 */
export function createBlockJobEnv(parts: BlockJobEnvParts): QemuBlockJobEnv {
  const { ctx, store, defs } = parts;
  return {
    jobs: ctx.jobs,
    clock: ctx.clock,
    track: parts.track,
    persist: parts.persist,
    setDiskSource: (domain, disk, source) => defs.setDiskSource(domain, disk, source),
    async removeImage(image) {
      if ("path" in image) return await rm(image.path, { force: true });
      const backend = await ctx.storage.backend(image.pool);
      await backend.deleteVolume?.(image.name);
      ctx.bus.emit("volume:deleted", { pool: image.pool, volume: image.name });
    },
    async finished(job) {
      const info = await job.job.info();
      // Listed until dismissed: a job the manager already dropped (autoDismiss) is not kept.
      if ((await ctx.jobs.list()).some((j) => j.id === info.id)) await store.saveFinishedJob(info);
    },
    dismissed: (jobId) => store.removeFinishedJob(jobId),
  };
}

/**
 * Lists the finished jobs a previous connection kept, in their final state (no lock, only `job:created`);
 * `dismiss()` forgets them.
 *
 * @param store The state directory.
 * @param jobs The connection's job manager.
 * @example
 * ```ts
 * import { restoreFinishedJobs } from "./job_env.ts";
 * import { StateStore } from "./state_store.ts";
 * import { createJobManager } from "../../core/jobs/job_manager.ts";
 * import { createEventBus } from "../../core/event_bus.ts";
 * import { createVirtualClock } from "virtkit";
 * import { mkdtempSync, rmSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * const dir = mkdtempSync(join(tmpdir(), "virtkit-doc-"));
 * try {
 *   const store = new StateStore(dir);
 *   await store.init();
 *   await store.saveFinishedJob({ id: "job-4", type: "block-pull", state: "failed", target: { domain: "web1", disk: "vda" },
 *     cur: 5, end: 9, bandwidth: 0, bytesPerSecond: 0, error: "QEMU (pid 7) was killed by SIGKILL", createdAt: 10, finishedAt: 20 });
 *   const clock = createVirtualClock();
 *   const jobs = createJobManager({ bus: createEventBus({ clock }), clock });
 *   await restoreFinishedJobs(store, jobs);
 *   const info = await (await jobs.get("job-4")).info();
 *   if (info.state !== "failed" || !info.error?.includes("SIGKILL") || info.finishedAt !== 20) throw new Error("unexpected");
 *   await (await jobs.get("job-4")).dismiss();
 *   if ((await store.loadFinishedJobs()).length !== 0) throw new Error("unexpected");
 * } finally {
 *   rmSync(dir, { recursive: true, force: true });
 * }
 * ```
 */
export async function restoreFinishedJobs(store: StateStore, jobs: JobManager): Promise<void> {
  for (const info of await store.loadFinishedJobs()) {
    if (!TERMINAL_JOB_STATES.includes(info.state)) continue;
    if ((await jobs.list()).some((j) => j.id === info.id)) continue;
    jobs.create(jobSpecFromInfo(info, {
      setSpeed: () => Promise.resolve(),
      abort: () => Promise.resolve(),
      dismiss: () => store.removeFinishedJob(info.id),
    }, { driver: "qemu" }));
  }
}
