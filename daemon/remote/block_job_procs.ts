/**
 * Block job procedures of libvirt's REMOTE program: pull (and rebase onto a base), job info, speed and
 * abort (with pivot for two-phase jobs), over virtkit's `dom.blockPull()` / `dom.blockJob()` and the
 * job verbs. Bandwidths honour libvirt's units: MiB/s unless the call's BANDWIDTH_BYTES flag is set.
 *
 * @module
 */
import type { Domain } from "../../core/domain.ts";
import { NotFoundError } from "../../core/errors.ts";
import { LibvirtErrorCode } from "../../drivers/remote/rpc/errors.ts";
import {
  BandwidthBytes,
  BlockJobAbortFlags,
  DOMAIN_BLOCK_JOB_ABORT,
  DOMAIN_BLOCK_JOB_SET_SPEED,
  DOMAIN_BLOCK_PULL,
  DOMAIN_BLOCK_REBASE,
  DOMAIN_GET_BLOCK_JOB_INFO,
} from "../../drivers/remote/rpc/protocol/domain.ts";
import { type CallContext, RpcFault, serve, type ServedProcedure } from "../dispatch.ts";
import { bandwidthFromWire, blockJobInfoOf } from "../libvirt_codes.ts";
import { checkFlags } from "./domain_procs.ts";
import { connOf, domainOf } from "./domain_refs.ts";

// virDomainBlockRebaseFlags the daemon can honour without block copy: BANDWIDTH_BYTES only.
const REBASE_COPY = 8;

/**
 * The disk a libvirt block call names: its target (`vda`) or its source path, as libvirt accepts both.
 *
 * @param dom The domain.
 * @param path What the call names.
 * @param targets The domain's disk targets when the caller has them (the shared handle table keeps
 *   them); read from its definition otherwise.
 * @throws {RpcFault} INVALID_ARG "invalid path ..." when no disk matches (libvirt's wording).
 * @example
 * ```ts
 * import { connect } from "../../mod.ts";
 * import { diskTargetOf } from "./block_job_procs.ts";
 * await using conn = await connect("test:///default");
 * const dom = await conn.domains.get("test");
 * if ((await diskTargetOf(dom, "/default-pool/test.qcow2")) !== "vda" || (await diskTargetOf(dom, "vda")) !== "vda") throw new Error("unexpected");
 * ```
 */
export async function diskTargetOf(dom: Domain, path: string, targets?: ReadonlySet<string>): Promise<string> {
  // A target (what virsh users type, and what every `blockjob --info` poll sends) is in the definition;
  // only a source path needs the disks resolved to their volumes and backing chains, which costs more.
  const known = targets ?? new Set((await dom.config()).disks.map((d) => d.target));
  if (known.has(path)) return path;
  const disks = await dom.disks();
  const disk = disks.find((d) => d.target === path) ?? disks.find((d) => d.path === path);
  if (!disk) throw new RpcFault(LibvirtErrorCode.INVALID_ARG, `invalid argument: invalid path ${path} not assigned to domain`);
  return disk.target;
}

async function activeJob(ctx: CallContext, ref: Parameters<typeof domainOf>[1], path: string) {
  const { dom } = await domainOf(ctx, ref);
  const disk = await diskTargetOf(dom, path, await connOf(ctx).shared.domains.diskTargets(dom.name));
  return { dom, disk, job: await dom.blockJob(disk) };
}

function noJob(disk: string): RpcFault {
  return new RpcFault(LibvirtErrorCode.OPERATION_INVALID, `Requested operation is not valid: disk '${disk}' does not have an active block job`);
}

async function startPull(ctx: CallContext, ref: Parameters<typeof domainOf>[1], path: string, bandwidth: number, inBytes: boolean, base?: string) {
  const { dom } = await domainOf(ctx, ref);
  const disk = await diskTargetOf(dom, path);
  try {
    await dom.blockPull(disk, { bandwidth: bandwidthFromWire(bandwidth, inBytes), ...(base === undefined ? {} : { base }) });
  } catch (error) {
    if (error instanceof RangeError) throw new RpcFault(LibvirtErrorCode.INVALID_ARG, `invalid argument: ${error.message}`);
    throw error;
  }
}

/** The block job procedures. */
export const BLOCK_JOB_PROCEDURES: readonly ServedProcedure[] = [
  serve(DOMAIN_BLOCK_PULL, (ctx, { dom, path, bandwidth, flags }) => {
    checkFlags(flags, BandwidthBytes.PULL, "virDomainBlockPull");
    return startPull(ctx, dom, path, bandwidth, (flags & BandwidthBytes.PULL) !== 0);
  }),
  serve(DOMAIN_BLOCK_REBASE, (ctx, { dom, path, base, bandwidth, flags }) => {
    if (flags & REBASE_COPY) {
      throw new RpcFault(LibvirtErrorCode.NO_SUPPORT, "this function is not supported by the connection driver: virDomainBlockRebase with VIR_DOMAIN_BLOCK_REBASE_COPY");
    }
    checkFlags(flags, BandwidthBytes.REBASE, "virDomainBlockRebase");
    return startPull(ctx, dom, path, bandwidth, (flags & BandwidthBytes.REBASE) !== 0, base);
  }),
  serve(DOMAIN_GET_BLOCK_JOB_INFO, async (ctx, { dom, path, flags }) => {
    checkFlags(flags, BandwidthBytes.JOB_INFO, "virDomainGetBlockJobInfo");
    const { job } = await activeJob(ctx, dom, path);
    // No job (it finished): found=0, not an error, or virsh's --wait loop fails ("failed to query job").
    if (!job) return { found: 0, type: 0, bandwidth: 0, cur: 0, end: 0 };
    return { found: 1, ...blockJobInfoOf(await job.info(), (flags & BandwidthBytes.JOB_INFO) !== 0) };
  }),
  serve(DOMAIN_BLOCK_JOB_SET_SPEED, async (ctx, { dom, path, bandwidth, flags }) => {
    checkFlags(flags, BandwidthBytes.SET_SPEED, "virDomainBlockJobSetSpeed");
    const { disk, job } = await activeJob(ctx, dom, path);
    if (!job) throw noJob(disk);
    let bytes: number;
    try {
      bytes = bandwidthFromWire(bandwidth, (flags & BandwidthBytes.SET_SPEED) !== 0);
    } catch (error) {
      throw new RpcFault(LibvirtErrorCode.INVALID_ARG, `invalid argument: ${(error as Error).message}`);
    }
    await job.setSpeed(bytes);
  }),
  serve(DOMAIN_BLOCK_JOB_ABORT, async (ctx, { dom, path, flags }) => {
    checkFlags(flags, BlockJobAbortFlags.ASYNC | BlockJobAbortFlags.PIVOT, "virDomainBlockJobAbort");
    const { disk, job } = await activeJob(ctx, dom, path);
    if (!job) throw noJob(disk);
    if (flags & BlockJobAbortFlags.PIVOT) {
      const { state } = await job.info();
      if (state !== "ready") {
        throw new RpcFault(LibvirtErrorCode.BLOCK_COPY_ACTIVE, `block job '${disk}' not ready for pivot yet`);
      }
      await job.finalize();
      return;
    }
    // Synchronous abort waits for the end, as libvirt does; ASYNC returns once it is requested.
    const aborting = job.abort().catch((error) => {
      if (!(error instanceof NotFoundError)) throw error;
    });
    if (!(flags & BlockJobAbortFlags.ASYNC)) await aborting;
    else aborting.catch(() => {});
  }),
];
