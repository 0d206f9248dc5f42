/**
 * Block jobs of a remote connection on virtkitd: the libvirt procedure (BLOCK_PULL or BLOCK_REBASE,
 * BLOCK_COPY, BLOCK_COMMIT) starts the daemon's job, and that job, mirrored in the connection's list
 * (daemon_jobs.ts), is the one returned: one job per daemon job id, never a local twin, with the
 * daemon's progress, pause and resume, which libvirt's protocol cannot carry. On a plain libvirtd the
 * connection uses block_job.ts instead.
 *
 * @module
 */
import type { LiveBlockCommitRequest, LiveBlockCopyRequest, LiveBlockJobRequest, LiveBlockPullRequest } from "../../core/driver.ts";
import { ConflictError } from "../../core/errors.ts";
import type { Job } from "../../core/job.ts";
import type { JobManager } from "../../core/jobs/types.ts";
import { copyDestinationToXml } from "../../core/xml/copy_destination_xml.ts";
import { commitFlags } from "./block_commit.ts";
import { copyParams } from "./block_copy.ts";
import type { DaemonJobs } from "./daemon_jobs.ts";
import type { DomainRefs } from "./domain_refs.ts";
import type { CallOptions, RpcClient } from "./rpc/client.ts";
import type { DomainRefValue } from "./rpc/protocol/common.ts";
import { BandwidthBytes, BlockCopyFlags, DOMAIN_BLOCK_COMMIT, DOMAIN_BLOCK_COPY, DOMAIN_BLOCK_PULL, DOMAIN_BLOCK_REBASE } from "./rpc/protocol/domain.ts";

/** What the daemon's block jobs need of the connection. */
export interface DaemonBlockJobEnv {
  readonly client: RpcClient;
  /** The connection's job list (local locks are checked in it). */
  readonly jobs: JobManager;
  /** The daemon's jobs, mirrored. */
  readonly daemon: DaemonJobs;
  readonly refs: DomainRefs;
}

/**
 * Sends the procedure that starts a block job on virtkitd and returns the daemon's job, found in the
 * mirror. A disk a job here already holds is a `ConflictError` before anything is sent.
 */
async function start(
  env: DaemonBlockJobEnv,
  request: LiveBlockJobRequest,
  type: "block-pull" | "block-copy" | "block-commit",
  verb: string,
  send: (dom: DomainRefValue, context: CallOptions) => Promise<unknown>,
): Promise<Job<void>> {
  const { domain: name, disk: { target: disk }, locks, signal } = request;
  for (const lock of locks) {
    const holder = env.jobs.holder(lock);
    if (holder) throw new ConflictError(`Cannot ${verb} disk "${disk}" of domain "${name}": job "${holder}" works on it`, { jobId: holder, driver: "remote" });
  }
  const dom = await env.refs.get(name, { signal });
  const pending = env.daemon.expect({ type, target: { domain: name, disk } });
  try {
    await send(dom, { signal, objectName: name, operation: `${verb} disk "${disk}" of domain "${name}"` });
  } catch (error) {
    pending.cancel();
    throw error;
  }
  return await pending.found({ signal }) as Job<void>;
}

/**
 * A pull: BLOCK_PULL, or BLOCK_REBASE with a base, the cap in bytes per second.
 *
 * @param env The connection's wiring.
 * @param request The request core checked.
 * @returns The daemon's job.
 * @throws {ConflictError} When a job of this connection holds the disk; nothing is sent.
 * @example A disk a job here holds is refused before any call
 * ```ts
 * import { ConflictError } from "virtkit";
 * import { startDaemonPull } from "./daemon_block_jobs.ts";
 * const calls: unknown[] = [];
 * const env = { client: { call: async (p: unknown) => void calls.push(p) }, jobs: { holder: () => "job-1" } };
 * const error = await startDaemonPull(env as never, { domain: "vm1", disk: { target: "vda" }, locks: ["disk:vm1/vda"], bandwidth: 0 } as never).catch((e) => e);
 * if (!(error instanceof ConflictError) || calls.length !== 0) throw new Error(String(error));
 * ```
 */
export function startDaemonPull(env: DaemonBlockJobEnv, request: LiveBlockPullRequest): Promise<Job<void>> {
  const { disk: { target: disk }, bandwidth = 0, base } = request;
  return start(env, request, "block-pull", "pull", (dom, context) =>
    base === undefined
      ? env.client.call(DOMAIN_BLOCK_PULL, { dom, path: disk, bandwidth, flags: BandwidthBytes.PULL }, context)
      : env.client.call(DOMAIN_BLOCK_REBASE, { dom, path: disk, base, bandwidth, flags: BandwidthBytes.REBASE }, context));
}

/**
 * A copy: BLOCK_COPY with the destination as it was asked for (a `{ pool, name }` goes as
 * `<disk type='volume'>`), so the daemon's core creates the volume and removes it again if the copy never
 * becomes one, as for a local copy.
 *
 * @param env The connection's wiring.
 * @param request The request core checked.
 * @returns The daemon's job.
 */
export function startDaemonCopy(env: DaemonBlockJobEnv, request: LiveBlockCopyRequest): Promise<Job<void>> {
  const destxml = copyDestinationToXml({ destination: request.destination, ...(request.format ? { format: request.format } : {}) });
  const flags = BlockCopyFlags.TRANSIENT_JOB | (request.shallow ? BlockCopyFlags.SHALLOW : 0) | (request.reuseExisting ? BlockCopyFlags.REUSE_EXT : 0);
  const params = copyParams(request.bandwidth, request.granularityBytes);
  return start(env, request, "block-copy", "copy", (dom, context) =>
    env.client.call(DOMAIN_BLOCK_COPY, { dom, path: request.disk.target, destxml, params, flags }, context));
}

/**
 * A commit of the images core resolved, named by their place in the chain (`vda[N]`, which the daemon's
 * core reads as positions too): a pool volume's path reads `pool/name` in the XML but is the volume's
 * file in the daemon, so paths would not match.
 *
 * @param env The connection's wiring.
 * @param request The request core checked, `top` and `base` resolved.
 * @returns The daemon's job.
 * @example What goes on the wire, and the daemon's job returned (scripted stand-ins for the daemon)
 * ```ts
 * import { startDaemonCommit } from "./daemon_block_jobs.ts";
 * const sent: Array<{ top: string; base: string }> = [];
 * const daemonJob = { id: "job-9" };
 * const env = {
 *   client: { call: async (_p: unknown, args: { top: string; base: string }) => void sent.push(args) },
 *   jobs: { holder: () => undefined },
 *   daemon: { expect: () => ({ cancel() {}, found: async () => daemonJob }) },
 *   refs: { get: async () => ({ name: "vm1", uuid: "6695eb01-f6a4-8304-79aa-97f2502e193f", id: 1 }) },
 * };
 * const request = { domain: "vm1", disk: { target: "vda" }, locks: [], bandwidth: 0, chain: [], topIndex: 0, baseIndex: 1, deleteCommitted: false };
 * const job = await startDaemonCommit(env as never, request as never);
 * if ((job as unknown) !== daemonJob || sent[0]?.top !== "vda[0]" || sent[0]?.base !== "vda[1]") throw new Error(JSON.stringify(sent));
 * ```
 */
export function startDaemonCommit(env: DaemonBlockJobEnv, request: LiveBlockCommitRequest): Promise<Job<void>> {
  const target = request.disk.target;
  const top = `${target}[${request.topIndex}]`;
  const base = `${target}[${request.baseIndex}]`;
  return start(env, request, "block-commit", "commit", (dom, context) =>
    env.client.call(DOMAIN_BLOCK_COMMIT, { dom, disk: target, base, top, bandwidth: request.bandwidth, flags: commitFlags(request) }, context));
}
