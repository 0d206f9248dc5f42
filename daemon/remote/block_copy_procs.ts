/**
 * Block copy and block commit of libvirt's REMOTE program over virtkit's `dom.blockCopy()` and
 * `dom.blockCommit()`: DOMAIN_BLOCK_COPY (destination XML, typed parameters), DOMAIN_BLOCK_REBASE with
 * the COPY flag (what `virsh blockcopy DOM DISK DEST` sends when given no XML, granularity or buffer
 * size: the destination path as `base`), and DOMAIN_BLOCK_COMMIT (top and base as paths or `vda[N]`).
 * Their jobs are `ready` when in sync (the READY event, and GET_BLOCK_JOB_INFO's cur == end); the pivot
 * and the abort are BLOCK_JOB_ABORT's (block_job_procs.ts).
 *
 * Choices where virtkit and libvirt's qemu driver differ: a persistent domain's disk is copied without
 * TRANSIENT_JOB too (virtkit's copy survives in the domain's definition after the pivot, so there is
 * nothing to refuse); the flag is accepted and changes nothing. SYNCHRONOUS_WRITES, RELATIVE and a
 * `buf-size` are not offered by virtkit and are refused, not ignored.
 *
 * @module
 */
import { chainIndex } from "../../core/domains/disk_jobs.ts";
import type { BlockCopyDestination } from "../../core/domain.ts";
import { copyDestinationFromXml } from "../../core/xml/copy_destination_xml.ts";
import { LibvirtErrorCode } from "../../drivers/remote/rpc/errors.ts";
import type { TypedParam } from "../../drivers/remote/rpc/protocol/common.ts";
import {
  BlockCommitFlags,
  BlockCopyFlags,
  BlockCopyParam,
  BlockRebaseFlags,
  DOMAIN_BLOCK_COMMIT,
  DOMAIN_BLOCK_COPY,
} from "../../drivers/remote/rpc/protocol/domain.ts";
import { rememberCommit } from "../block_job_kinds.ts";
import { type CallContext, RpcFault, serve, type ServedProcedure } from "../dispatch.ts";
import { bandwidthFromWire } from "../libvirt_codes.ts";
import { checkFlags } from "./domain_procs.ts";
import { connOf, domainOf } from "./domain_refs.ts";
import { diskTargetOf } from "./disk_target.ts";

type DomainArg = Parameters<typeof domainOf>[1];

/** What a copy asks, whichever procedure carried it. */
interface CopyRequest {
  readonly destination: BlockCopyDestination;
  readonly format?: string;
  readonly shallow: boolean;
  readonly reuseExisting: boolean;
  /** Bytes per second. */
  readonly bandwidth: number;
  readonly granularityBytes?: number;
}

function invalid(message: string): RpcFault {
  return new RpcFault(LibvirtErrorCode.INVALID_ARG, `invalid argument: ${message}`);
}

/** A bandwidth from the wire, refused as libvirt refuses it. */
function bandwidthOf(value: number, inBytes: boolean): number {
  try {
    return bandwidthFromWire(value, inBytes);
  } catch (error) {
    throw invalid((error as Error).message);
  }
}

async function startCopy(ctx: CallContext, ref: DomainArg, path: string, request: CopyRequest): Promise<void> {
  const { dom } = await domainOf(ctx, ref);
  const disk = await diskTargetOf(dom, path);
  const { format, granularityBytes } = request;
  if (format !== undefined && format !== "raw" && format !== "qcow2") {
    throw new RpcFault(LibvirtErrorCode.CONFIG_UNSUPPORTED, `unsupported configuration: block copy destination format "${format}" (virtkit copies to raw or qcow2)`);
  }
  await dom.blockCopy(disk, {
    destination: request.destination,
    shallow: request.shallow,
    reuseExisting: request.reuseExisting,
    bandwidth: request.bandwidth,
    ...(format === undefined ? {} : { format }),
    ...(granularityBytes === undefined ? {} : { granularityBytes }),
  });
}

/**
 * DOMAIN_BLOCK_REBASE with VIR_DOMAIN_BLOCK_REBASE_COPY: a copy to the file named as `base`
 * (`--raw`: COPY_RAW, `--blockdev`: COPY_DEV, `--shallow`, `--reuse-external`, `--bytes`).
 *
 * @param ctx The call.
 * @param args The rebase arguments.
 * @throws {RpcFault} INVALID_ARG without a destination, or for RELATIVE (virtkit keeps paths as they are).
 * @example
 * ```ts
 * import { connect } from "../../mod.ts";
 * import { localContext, localSession } from "../local_call.ts";
 * import { rebaseCopy } from "./block_copy_procs.ts";
 * import { domainRefOf } from "./domain_refs.ts";
 * await using conn = await connect("test:///default");
 * const ctx = localContext(localSession(conn));
 * const dom = domainRefOf(ctx, await (await conn.domains.get("test")).info());
 * const noBase = await rebaseCopy(ctx, { dom, path: "vda", base: undefined, bandwidth: 0, flags: 8 }).catch((e) => e);
 * const relative = await rebaseCopy(ctx, { dom, path: "vda", base: "/c.qcow2", bandwidth: 0, flags: 8 | 16 }).catch((e) => e);
 * if (noBase.libvirtCode !== 8 || relative.libvirtCode !== 8) throw new Error("INVALID_ARG");
 * ```
 */
export async function rebaseCopy(ctx: CallContext, args: { dom: DomainArg; path: string; base: string | undefined; bandwidth: number; flags: number }): Promise<void> {
  const F = BlockRebaseFlags;
  checkFlags(args.flags, F.SHALLOW | F.REUSE_EXT | F.COPY_RAW | F.COPY | F.COPY_DEV | F.BANDWIDTH_BYTES, "virDomainBlockRebase");
  if (args.base === undefined) throw invalid("base in virDomainBlockRebase must not be NULL with VIR_DOMAIN_BLOCK_REBASE_COPY");
  await startCopy(ctx, args.dom, args.path, {
    destination: { path: args.base },
    ...(args.flags & F.COPY_RAW ? { format: "raw" } : {}),
    shallow: (args.flags & F.SHALLOW) !== 0,
    reuseExisting: (args.flags & F.REUSE_EXT) !== 0,
    bandwidth: bandwidthOf(args.bandwidth, (args.flags & F.BANDWIDTH_BYTES) !== 0),
  });
}

/** The copy's typed parameters: `bandwidth` (bytes/s) and `granularity`; `buf-size` is refused. */
function copyParamsOf(params: readonly TypedParam[]): { bandwidth: number; granularityBytes?: number } {
  let bandwidth = 0;
  let granularityBytes: number | undefined;
  for (const { field, value } of params) {
    if (typeof value.value !== "number") throw invalid(`parameter '${field}' must be a number`);
    if (field === BlockCopyParam.BANDWIDTH) bandwidth = bandwidthOf(value.value, true);
    else if (field === BlockCopyParam.GRANULARITY) granularityBytes = value.value === 0 ? undefined : value.value;
    else if (field === BlockCopyParam.BUF_SIZE) {
      if (value.value !== 0) throw new RpcFault(LibvirtErrorCode.NO_SUPPORT, "this function is not supported by the connection driver: virDomainBlockCopy with buf-size");
    } else throw invalid(`parameter '${field}' not supported`);
  }
  return { bandwidth, ...(granularityBytes === undefined ? {} : { granularityBytes }) };
}

/**
 * The `top` and `base` of a commit as core takes them: `top` absent is the active image, `base`
 * absent is the deepest image, or with SHALLOW the image right below `top`. ACTIVE must be given
 * exactly when `top` is the active image, as libvirt requires.
 */
async function commitRange(ctx: CallContext, ref: DomainArg, path: string, top: string | undefined, base: string | undefined, flags: number) {
  const { dom } = await domainOf(ctx, ref);
  const target = await diskTargetOf(dom, path);
  const info = (await dom.disks()).find((d) => d.target === target)!;
  const chain = [{ path: info.path, format: info.format }, ...info.backingChain];
  const topIndex = top === undefined ? 0 : chainIndex(chain, target, top, "top");
  const active = topIndex === 0;
  if (active && !(flags & BlockCommitFlags.ACTIVE)) {
    throw invalid(`commit of '${target}' active layer requires active flag`);
  }
  if (!active && flags & BlockCommitFlags.ACTIVE) {
    throw invalid(`active commit requested but '${chain[topIndex]!.path}' is not active`);
  }
  const shallowBase = flags & BlockCommitFlags.SHALLOW ? chain[topIndex + 1]?.path : undefined;
  if (flags & BlockCommitFlags.SHALLOW && shallowBase === undefined) throw invalid(`top '${chain[topIndex]!.path}' in chain for '${target}' has no backing file`);
  return { dom, target, active, top: chain[topIndex]!.path, base: base ?? shallowBase };
}

/** The block copy and commit procedures. */
export const BLOCK_COPY_PROCEDURES: readonly ServedProcedure[] = [
  serve(DOMAIN_BLOCK_COPY, async (ctx, { dom, path, destxml, params, flags }) => {
    const F = BlockCopyFlags;
    checkFlags(flags, F.SHALLOW | F.REUSE_EXT | F.TRANSIENT_JOB, "virDomainBlockCopy");
    let parsed;
    try {
      parsed = copyDestinationFromXml(destxml);
    } catch (error) {
      throw new RpcFault(LibvirtErrorCode.XML_ERROR, `XML error: ${(error as Error).message}`);
    }
    await startCopy(ctx, dom, path, {
      ...parsed,
      ...copyParamsOf(params),
      shallow: (flags & F.SHALLOW) !== 0,
      reuseExisting: (flags & F.REUSE_EXT) !== 0,
    });
  }),
  serve(DOMAIN_BLOCK_COMMIT, async (ctx, { dom, disk, base, top, bandwidth, flags }) => {
    const F = BlockCommitFlags;
    checkFlags(flags, F.SHALLOW | F.DELETE | F.ACTIVE | F.BANDWIDTH_BYTES, "virDomainBlockCommit");
    const range = await commitRange(ctx, dom, disk, top, base, flags);
    const job = await range.dom.blockCommit(range.target, {
      top: range.top,
      ...(range.base === undefined ? {} : { base: range.base }),
      bandwidth: bandwidthOf(bandwidth, (flags & F.BANDWIDTH_BYTES) !== 0),
      deleteCommitted: (flags & F.DELETE) !== 0,
    });
    rememberCommit(connOf(ctx).conn, job.id, range.active);
  }),
];
