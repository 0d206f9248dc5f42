/**
 * Block commit through libvirt (`virDomainBlockCommit`, REMOTE_PROC_DOMAIN_BLOCK_COMMIT): `top` and
 * `base` go as the paths of the images core resolved in the disk's chain; ACTIVE when `top` is the
 * active image (libvirt refuses an active commit without it), which makes a two-phase job: `ready`,
 * then `finalize()` pivots the domain onto the base. The cap is in bytes per second (BANDWIDTH_BYTES);
 * `deleteCommitted` is libvirt's DELETE (libvirt removes the committed images once the job completed).
 *
 * @module
 */
import type { DiskInfo } from "../../core/domain.ts";
import type { LiveBlockCommitRequest } from "../../core/driver.ts";
import type { Job } from "../../core/job.ts";
import { type BlockJobEnv, RemoteBlockJob } from "./block_job.ts";
import type { DomainRefValue } from "./rpc/protocol/common.ts";
import { BlockCommitFlags, DOMAIN_BLOCK_COMMIT } from "./rpc/protocol/domain.ts";

/**
 * libvirt's commit flags for a request.
 *
 * @param request Which images (by index in the chain) and whether to delete them.
 * @returns The flags.
 * @example
 * ```ts
 * import { commitFlags } from "./block_commit.ts";
 * if (commitFlags({ topIndex: 0, deleteCommitted: false }) !== (4 | 16)) throw new Error("active commit: ACTIVE | BANDWIDTH_BYTES");
 * if (commitFlags({ topIndex: 1, deleteCommitted: true }) !== (2 | 16)) throw new Error("intermediate with DELETE");
 * ```
 */
export function commitFlags(request: Pick<LiveBlockCommitRequest, "topIndex" | "deleteCommitted">): number {
  return BlockCommitFlags.BANDWIDTH_BYTES | (request.topIndex === 0 ? BlockCommitFlags.ACTIVE : 0) | (request.deleteCommitted ? BlockCommitFlags.DELETE : 0);
}

/**
 * Starts a commit on a running domain.
 *
 * @param env The block job wiring.
 * @param dom The domain.
 * @param disk The disk.
 * @param request The request core checked, `top` and `base` resolved.
 * @returns The job, running.
 * @example What goes on the wire for an active commit (a scripted client stands in for libvirtd)
 * ```ts
 * import { createRealClock } from "virtkit";
 * import { createEventBus } from "../../core/event_bus.ts";
 * import { createJobManager } from "../../core/jobs/job_manager.ts";
 * import { startRemoteCommit } from "./block_commit.ts";
 * const clock = createRealClock();
 * const jobs = createJobManager({ bus: createEventBus({ clock }), clock });
 * const sent: Array<{ top?: string; base?: string; flags?: number }> = [];
 * const client = { closed: false, call: async (proc: { number: number }, args: never) => (proc.number === 290 && sent.push(args), { found: 0 }) };
 * const dom = { name: "vm1", uuid: "6695eb01-f6a4-8304-79aa-97f2502e193f", id: 1 };
 * const chain = [{ path: "/i/top.qcow2", format: "qcow2" }, { path: "/i/base.raw", format: "raw" }];
 * const job = await startRemoteCommit({ client: client as never, jobs, route: () => () => {} }, dom,
 *   { target: "vda", path: chain[0]!.path, format: "qcow2", backingChain: [chain[1]!] },
 *   { domain: "vm1", disk: { target: "vda" }, locks: [], bandwidth: 0, chain, topIndex: 0, baseIndex: 1, deleteCommitted: false });
 * if (job.type !== "block-commit" || sent[0]?.top !== "/i/top.qcow2" || sent[0]?.base !== "/i/base.raw" || sent[0]?.flags !== (4 | 16)) throw new Error(JSON.stringify(sent));
 * await job.abort();
 * ```
 */
export async function startRemoteCommit(env: BlockJobEnv, dom: DomainRefValue, disk: DiskInfo, request: LiveBlockCommitRequest): Promise<Job<void>> {
  const top = request.chain[request.topIndex]!.path;
  const base = request.chain[request.baseIndex]!.path;
  const flags = commitFlags(request);
  return await RemoteBlockJob.start(env, dom, disk.target, {
    type: "block-commit",
    verb: "commit",
    twoPhase: request.topIndex === 0,
    bandwidth: request.bandwidth,
    locks: request.locks,
    ...(disk.volume ? { volume: disk.volume } : {}),
    ...(request.signal ? { signal: request.signal } : {}),
    begin: (context) =>
      env.client.call(DOMAIN_BLOCK_COMMIT, { dom, disk: disk.target, base, top, bandwidth: request.bandwidth, flags }, context),
  });
}
