/**
 * Block copy through libvirt (`virDomainBlockCopy`, REMOTE_PROC_DOMAIN_BLOCK_COPY): the destination goes
 * as `<disk>` XML (core/xml), the cap and granularity as typed parameters (`bandwidth` in bytes/s,
 * `granularity` in bytes). A `{ pool, name }` destination is created first through libvirt's storage API
 * (with the disk's capacity; a shallow copy gets the disk's backing), as libvirt's clients do, and then
 * copied into with REUSE_EXT; a `{ path }` one libvirt creates itself unless `reuseExisting`.
 *
 * TRANSIENT_JOB is always sent: libvirt's qemu driver refuses to copy a persistent domain's disk without
 * it ("domain is not transient"), and on a transient domain it changes nothing. It means libvirt does
 * not try to recover the job if the domain is turned off, which is what virtkit's contract says of a
 * live copy anyway.
 *
 * @module
 */
import type { DiskInfo } from "../../core/domain.ts";
import type { DriverStorage, LiveBlockCopyRequest } from "../../core/driver.ts";
import type { Job } from "../../core/job.ts";
import { copyDestinationToXml } from "../../core/xml/copy_destination_xml.ts";
import { type BlockJobEnv, RemoteBlockJob } from "./block_job.ts";
import { type DomainRefValue, TypedParamType, type TypedParam } from "./rpc/protocol/common.ts";
import { BlockCopyFlags, BlockCopyParam, DOMAIN_BLOCK_COPY, DOMAIN_GET_BLOCK_INFO } from "./rpc/protocol/domain.ts";

/** The destination as libvirt gets it, and what to undo if the copy never becomes a copy. */
interface PreparedDestination {
  readonly path: string;
  readonly format?: string;
  /** libvirt must use the file as it is (REUSE_EXT). */
  readonly reuse: boolean;
  /** Removes a volume this copy created. */
  readonly cleanup?: () => Promise<void>;
}

/**
 * The typed parameters of a copy: only the ones set (0 or absent is libvirt's default, unlimited).
 *
 * @param bandwidth Cap, bytes per second.
 * @param granularityBytes Dirty-tracking granularity.
 * @returns The list.
 * @example
 * ```ts
 * import { copyParams } from "./block_copy.ts";
 * const params = copyParams(1048576, 65536);
 * if (params.length !== 2 || params[0]!.field !== "bandwidth" || params[0]!.value.type !== 4 || params[1]!.value.type !== 2) throw new Error("unexpected");
 * if (copyParams(0, undefined).length !== 0) throw new Error("unlimited sends nothing");
 * ```
 */
export function copyParams(bandwidth: number, granularityBytes: number | undefined): TypedParam[] {
  const params: TypedParam[] = [];
  if (bandwidth > 0) params.push({ field: BlockCopyParam.BANDWIDTH, value: { type: TypedParamType.ULLONG, value: bandwidth } });
  if (granularityBytes) params.push({ field: BlockCopyParam.GRANULARITY, value: { type: TypedParamType.UINT, value: granularityBytes } });
  return params;
}

async function prepareDestination(env: BlockJobEnv, storage: DriverStorage, dom: DomainRefValue, disk: DiskInfo, request: LiveBlockCopyRequest): Promise<PreparedDestination> {
  const destination = request.destination;
  const call = request.signal ? { signal: request.signal } : undefined;
  if ("path" in destination) {
    return { path: destination.path, reuse: request.reuseExisting, ...(request.format ? { format: request.format } : {}) };
  }
  const pool = await storage.pools.get(destination.pool, call);
  if (request.reuseExisting) {
    const volume = await pool.volumes.get(destination.name, call);
    return { path: volume.path, format: (await volume.info(call)).format, reuse: true };
  }
  const backing = request.shallow ? disk.backingChain[0] : undefined;
  const format = request.format ?? (backing !== undefined || disk.format === "qcow2" ? "qcow2" : "raw");
  // The disk's guest-visible size, as libvirt's qemu driver reports it for any disk (pool volume or not).
  const { capacity } = await env.client.call(DOMAIN_GET_BLOCK_INFO, { dom, path: disk.target, flags: 0 }, { ...call, objectName: dom.name });
  const volume = await pool.volumes.create({
    name: destination.name,
    capacityBytes: capacity,
    format,
    ...(backing ? { backing: { path: backing.path, format: backing.format } } : {}),
    ...call,
  });
  return { path: volume.path, format, reuse: true, cleanup: () => volume.delete() };
}

/**
 * Starts a copy on a running domain.
 *
 * @param env The block job wiring.
 * @param storage The connection's pools (libvirt's storage driver).
 * @param dom The domain.
 * @param disk The disk, with its chain.
 * @param request The request core checked.
 * @returns The job, running; `ready` once libvirt reports the copy in sync.
 * @example What goes on the wire for a copy to a path (a scripted client stands in for libvirtd)
 * ```ts
 * import { createRealClock } from "virtkit";
 * import { createEventBus } from "../../core/event_bus.ts";
 * import { createJobManager } from "../../core/jobs/job_manager.ts";
 * import { startRemoteCopy } from "./block_copy.ts";
 * const clock = createRealClock();
 * const jobs = createJobManager({ bus: createEventBus({ clock }), clock });
 * const sent: Array<{ destxml: string; flags: number; params: unknown[] }> = [];
 * const client = { closed: false, call: async (proc: { number: number }, args: never) => (proc.number === 345 && sent.push(args), { found: 0 }) };
 * const dom = { name: "vm1", uuid: "6695eb01-f6a4-8304-79aa-97f2502e193f", id: 1 };
 * const job = await startRemoteCopy({ client: client as never, jobs, route: () => () => {} }, {} as never, dom,
 *   { target: "vda", path: "/i/top.qcow2", format: "qcow2", backingChain: [] },
 *   { domain: "vm1", disk: { target: "vda" }, locks: [], bandwidth: 1048576, destination: { path: "/i/copy.raw" }, format: "raw", shallow: false, reuseExisting: false });
 * if (!sent[0]?.destxml.includes('file="/i/copy.raw"') || sent[0].flags !== 4 || sent[0].params.length !== 1) throw new Error(JSON.stringify(sent));
 * await job.abort();
 * ```
 */
export async function startRemoteCopy(env: BlockJobEnv, storage: DriverStorage, dom: DomainRefValue, disk: DiskInfo, request: LiveBlockCopyRequest): Promise<Job<void>> {
  const prepared = await prepareDestination(env, storage, dom, disk, request);
  const destxml = copyDestinationToXml({ destination: { path: prepared.path }, ...(prepared.format ? { format: prepared.format } : {}) });
  const flags = BlockCopyFlags.TRANSIENT_JOB | (request.shallow ? BlockCopyFlags.SHALLOW : 0) | (prepared.reuse ? BlockCopyFlags.REUSE_EXT : 0);
  const params = copyParams(request.bandwidth, request.granularityBytes);
  return await RemoteBlockJob.start(env, dom, disk.target, {
    type: "block-copy",
    verb: "copy",
    twoPhase: true,
    bandwidth: request.bandwidth,
    locks: request.locks,
    ...(disk.volume ? { volume: disk.volume } : {}),
    ...(request.signal ? { signal: request.signal } : {}),
    ...(prepared.cleanup ? { cleanup: prepared.cleanup } : {}),
    begin: (context) => env.client.call(DOMAIN_BLOCK_COPY, { dom, path: disk.target, destxml, params, flags }, context),
  });
}
