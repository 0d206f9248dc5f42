/**
 * Block job procedures of libvirt's REMOTE program: pull (and rebase onto a base; a rebase with COPY
 * goes to block_copy_procs.ts), job info, speed and abort (PIVOT finalizes a two-phase job in `ready`;
 * ASYNC returns once asked), over virtkit's `dom.blockPull()` / `dom.blockJob()` and the job verbs.
 * Bandwidths honour libvirt's units: MiB/s unless the call's BANDWIDTH_BYTES flag is set.
 *
 * @module
 */
import { NotFoundError } from "../../core/errors.ts";
import { LibvirtErrorCode } from "../../drivers/remote/rpc/errors.ts";
import {
  BandwidthBytes,
  BlockJobAbortFlags,
  BlockRebaseFlags,
  DOMAIN_BLOCK_JOB_ABORT,
  DOMAIN_BLOCK_JOB_SET_SPEED,
  DOMAIN_BLOCK_PULL,
  DOMAIN_BLOCK_REBASE,
  DOMAIN_GET_BLOCK_JOB_INFO,
} from "../../drivers/remote/rpc/protocol/domain.ts";
import { type CallContext, RpcFault, serve, type ServedProcedure } from "../dispatch.ts";
import { blockJobTypeOf } from "../block_job_kinds.ts";
import { BLOCK_JOB_TYPE, bandwidthFromWire, blockJobInfoOf } from "../libvirt_codes.ts";
import { checkFlags } from "./domain_procs.ts";
import { connOf, domainOf } from "./domain_refs.ts";
import { rebaseCopy } from "./block_copy_procs.ts";
import { diskTargetOf } from "./disk_target.ts";

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
    if (flags & BlockRebaseFlags.COPY) return rebaseCopy(ctx, { dom, path, base, bandwidth, flags });
    if (flags & (BlockRebaseFlags.SHALLOW | BlockRebaseFlags.REUSE_EXT | BlockRebaseFlags.COPY_RAW | BlockRebaseFlags.COPY_DEV)) {
      throw new RpcFault(LibvirtErrorCode.INVALID_ARG, "invalid argument: use of flags requires a copy job");
    }
    checkFlags(flags, BandwidthBytes.REBASE, "virDomainBlockRebase");
    return startPull(ctx, dom, path, bandwidth, (flags & BandwidthBytes.REBASE) !== 0, base);
  }),
  serve(DOMAIN_GET_BLOCK_JOB_INFO, async (ctx, { dom, path, flags }) => {
    checkFlags(flags, BandwidthBytes.JOB_INFO, "virDomainGetBlockJobInfo");
    const { job } = await activeJob(ctx, dom, path);
    // No job (it finished): found=0, not an error, or virsh's --wait loop fails ("failed to query job").
    if (!job) return { found: 0, type: 0, bandwidth: 0, cur: 0, end: 0 };
    const info = await job.info();
    return { found: 1, ...blockJobInfoOf(info, (flags & BandwidthBytes.JOB_INFO) !== 0, blockJobTypeOf(connOf(ctx).conn, info)) };
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
    const async = (flags & BlockJobAbortFlags.ASYNC) !== 0;
    if (flags & BlockJobAbortFlags.PIVOT) {
      const info = await job.info();
      const type = blockJobTypeOf(connOf(ctx).conn, info);
      if (type !== BLOCK_JOB_TYPE.COPY && type !== BLOCK_JOB_TYPE.ACTIVE_COMMIT) {
        throw new RpcFault(LibvirtErrorCode.OPERATION_INVALID, `Requested operation is not valid: pivot of disk '${disk}' requires an active copy job`);
      }
      if (info.state !== "ready") {
        throw new RpcFault(LibvirtErrorCode.BLOCK_COPY_ACTIVE, `block copy still active: disk '${disk}' not ready for pivot yet`);
      }
      // Synchronous: answered once the job ended and the domain runs on the new image, as libvirt does
      // (a driver's finalize() may resolve as soon as the hypervisor took the request); ASYNC once asked.
      const pivoting = job.finalize();
      if (async) return void pivoting.catch(() => {});
      await pivoting;
      await job.wait().catch((error) => {
        throw new RpcFault(LibvirtErrorCode.OPERATION_FAILED, `operation failed: block job '${disk}' failed while pivoting: ${(error as Error).message}`);
      });
      return;
    }
    // Synchronous abort waits for the end, as libvirt does; ASYNC returns once it is requested.
    const aborting = job.abort().catch((error) => {
      if (!(error instanceof NotFoundError)) throw error;
    });
    if (!async) await aborting;
    else aborting.catch(() => {});
  }),
];
