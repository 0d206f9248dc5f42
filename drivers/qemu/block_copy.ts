/**
 * Block copy on a running `qemu:` domain (libvirt `virDomainBlockCopy`): the destination is created
 * first (in its pool through the storage layer, or at a bare host path by core's
 * `resolveCopyDestination`, the offline copy's own, through the `dir` backend over its directory) unless
 * `reuseExisting`, then added to QEMU with `blockdev-add` (a file node and a format node; a shallow copy
 * gets the source's backing node as its backing), and mirrored with `blockdev-mirror` (`sync: "full"`
 * or `"top"`). The job becomes `ready` on QEMU's `BLOCK_JOB_READY`; `finalize()` sends `job-complete`
 * and, once QEMU concluded, the disk's nodes and its persisted definition name the destination and the
 * images it no longer uses are removed from QEMU's graph (`blockdev-del`). `abort()` in `ready` sends
 * `block-job-cancel`: QEMU ends with the destination a consistent copy and the guest on its source.
 *
 * @module
 */
import type { LiveBlockCopyRequest } from "../../core/driver.ts";
import type { StorageAccess } from "../../core/storage_backend.ts";
import { resolveCopyDestination } from "../../core/domains/copy_destination.ts";
import { NotFoundError } from "../../core/errors.ts";
import type { EventBus } from "../../core/event_bus.ts";
import { QemuBlockJob, type QemuBlockJobEnv } from "./block_job.ts";
import type { IscsiChapAuth } from "../../core/storage_pool.ts";
import { addProtocolNode } from "./blockdev_source.ts";
import type { ImageLayer } from "./disk_chain.ts";
import type { Instance } from "./instance.ts";
import type { RunDisk, RunJob } from "./state_store.ts";

/** What a copy needs besides the job wiring. */
export interface QemuCopyDeps {
  /** The connection's pools (and the host directories a bare path destination is made in). */
  readonly storage: StorageAccess;
  /** Where `volume:created` goes. */
  readonly bus: EventBus;
}

/**
 * Starts a copy.
 *
 * @param env The block job wiring.
 * @param deps Pools and bus.
 * @param inst The running domain.
 * @param disk The disk.
 * @param request The checked request.
 * @returns The job, `running`.
 * @throws {ConflictError} For a destination that exists without `reuseExisting`.
 * @throws {NotFoundError} For a destination that does not exist with `reuseExisting`.
 * @throws {TypeError} For a relative host path.
 * @throws {UnsupportedError} For a host path when the connection has no `dir` backend.
 * @throws {QmpError} When QEMU refuses the destination or the mirror (nothing created is left behind).
 * @example A host path must be absolute (checked by core before anything is made)
 * ```ts
 * import { startQemuCopy } from "./block_copy.ts";
 * const disk = { target: "vda", layers: [{ path: "/i/t.qcow2", format: "qcow2", virtualBytes: 1, node: "vda-0", fileNode: "vda-0-file" }] };
 * const request = { domain: "web1", disk: { target: "vda", path: "/i/t.qcow2" }, locks: [], bandwidth: 0,
 *   destination: { path: "copy.qcow2" }, shallow: false, reuseExisting: false };
 * const deps = { storage: { findVolume: async () => undefined }, bus: {} } as never;
 * const error = await startQemuCopy({} as never, deps, { name: "web1" } as never, disk, request).catch((e) => e);
 * if (!(error instanceof TypeError) || !error.message.includes("absolute")) throw new Error("unexpected");
 * ```
 */
export async function startQemuCopy(
  env: QemuBlockJobEnv,
  deps: QemuCopyDeps,
  inst: Instance,
  disk: RunDisk,
  request: LiveBlockCopyRequest,
): Promise<QemuBlockJob> {
  const top = disk.layers[0]!;
  const backing = disk.layers[1];
  const shallow = request.shallow && backing !== undefined;
  const what = `copy disk "${disk.target}" of domain "${inst.name}"`;
  const call = request.signal ? { signal: request.signal } : undefined;
  const destination = request.destination;
  let path: string;
  let format: string;
  let created: RunJob["createdDestination"];
  let chap: IscsiChapAuth | undefined; // a LUN destination's CHAP account (from its pool)
  if ("path" in destination) {
    // Core checks the path and makes the file (through the dir backend over its directory: virtkit's
    // image engine, no qemu-img process on the way to the mirror) or probes a reused one, exactly as for
    // a shut-off domain's copy. QEMU opens it by path, so what reaching the directory holds goes at once.
    const info = { capacityBytes: top.virtualBytes, format: top.format, ...(shallow ? { backing: { path: backing!.path, format: backing!.format } } : {}) };
    const dest = await resolveCopyDestination({ storage: deps.storage, bus: deps.bus }, request, { source: { info }, shallow, diskByPath: true, what });
    if (dest.created) created = { path: dest.path };
    try {
      await dest.release();
    } catch (error) {
      if (created) await env.removeImage(created).catch(() => {});
      throw error;
    }
    path = dest.path;
    format = dest.format;
  } else {
    const backend = await deps.storage.backend(destination.pool);
    if (request.reuseExisting) {
      const record = await backend.lookupVolume(destination.name, call);
      path = record.path;
      chap = record.auth;
      format = (await backend.volumeInfo(destination.name, call)).format;
    } else {
      format = request.format ?? (shallow || top.format === "qcow2" ? "qcow2" : "raw");
      if (typeof backend.createVolume !== "function") {
        throw new NotFoundError("operation", "createVolume", { driver: "qemu", detail: `pool "${destination.pool}" cannot create volumes` });
      }
      const record = await backend.createVolume({
        name: destination.name,
        capacityBytes: top.virtualBytes,
        format: format as "raw" | "qcow2",
        ...(shallow ? { backing: { path: backing!.path, format: backing!.format } } : {}),
      }, call);
      deps.bus.emit("volume:created", { pool: destination.pool, volume: record.name });
      path = record.path;
      created = { pool: destination.pool, name: record.name };
    }
  }
  const suffix = crypto.randomUUID().slice(0, 8);
  const node = `${disk.target.slice(0, 12)}-m${suffix}`;
  const fileNode = `${node}-file`;
  // A host file, or a LUN (iscsi://, with its pool's CHAP account as a QEMU secret object). The protocol
  // node, the format node and the mirror go out one behind the other without waiting for replies: QEMU
  // runs a monitor's commands in order, so the mirror sees its target, and a refused add fails what
  // follows. Only a LUN's secret object must be in place before its node, so that add is awaited.
  let protocol: ReturnType<typeof addProtocolNode> | undefined;
  let formatAdd: Promise<unknown> | undefined;
  try {
    if (path === top.path) throw new TypeError(`Cannot ${what}: the destination is the disk's own image`);
    protocol = addProtocolNode(inst.qmp, { location: path, nodeName: fileNode, readOnly: false, ...(chap ? { chap } : {}) });
    const auth = chap ? (await protocol).auth : undefined;
    formatAdd = inst.qmp.execute("blockdev-add", {
      driver: format,
      "node-name": node,
      file: fileNode,
      // A full copy stands alone; a shallow one reads what it does not hold from the source's backing.
      ...(format === "qcow2" ? { backing: shallow ? backing!.node : null } : {}),
    });
    const layer: ImageLayer = { path, format, virtualBytes: top.virtualBytes, node, fileNode, ...(auth ? { auth } : {}) };
    const kept = shallow ? disk.layers.slice(1) : [];
    // After the pivot the images the disk no longer uses leave QEMU's graph, top first (a backing is busy while used).
    const dropped = disk.layers.slice(0, disk.layers.length - kept.length).flatMap((l) => [l.node, l.fileNode]);
    const sourceAfter = "path" in destination
      ? { path, format }
      : { volume: { pool: destination.pool, name: destination.name }, format };
    const started = QemuBlockJob.start(env, inst, disk, {
      record: {
        type: "block-copy",
        twoPhase: true,
        disk: disk.target,
        endBytes: top.virtualBytes,
        bandwidth: request.bandwidth,
        layersAfter: [layer, ...kept],
        sourceAfter,
        dropNodes: dropped,
        targetNodes: [node, fileNode],
        ...(created ? { createdDestination: created } : {}),
      },
      command: "blockdev-mirror",
      args: {
        device: top.node,
        target: node,
        sync: shallow ? "top" : "full",
        ...(request.bandwidth > 0 ? { speed: request.bandwidth } : {}),
        ...(request.granularityBytes ? { granularity: request.granularityBytes } : {}),
      },
      ...(request.signal ? { signal: request.signal } : {}),
    });
    const [job, ...results] = await Promise.allSettled([started, protocol, formatAdd]);
    if (job.status === "fulfilled") return job.value;
    // The first refusal is the cause (an add QEMU refused makes the mirror fail on a missing node).
    throw results.find((r) => r.status === "rejected")?.reason ?? job.reason;
  } catch (error) {
    // What QEMU added goes again, the format node before its file node (and a LUN's secret with it).
    const [opened, formatted] = await Promise.allSettled([protocol, formatAdd]);
    if (formatAdd && formatted.status === "fulfilled") await inst.qmp.execute("blockdev-del", { "node-name": node }).catch(() => {});
    if (protocol && opened.status === "fulfilled") await opened.value?.remove();
    if (created) await env.removeImage(created).catch(() => {});
    throw error;
  }
}
