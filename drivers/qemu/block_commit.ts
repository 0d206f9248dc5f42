/**
 * Block commit on a running `qemu:` domain (libvirt `virDomainBlockCommit`): QMP `block-commit` of the
 * disk's active node with `base-node` and, for an intermediate image, `top-node`. An intermediate commit
 * has no `ready` phase: QEMU re-links the image above `top` to `base` and the job completes. An active
 * commit (`top` is the active image, libvirt's `VIR_DOMAIN_BLOCK_COMMIT_ACTIVE`) is two-phase: `ready`
 * on `BLOCK_JOB_READY`, `finalize()` sends `job-complete` and the domain then runs on `base` (its nodes
 * and persisted definition say so); `abort()` in `ready` leaves the top in use and the base holding the
 * committed data. The base is reopened read-write first (`blockdev-reopen`). Images no longer in the chain leave QEMU's graph (`blockdev-del`); with
 * `deleteCommitted` their volumes (or files) are removed too.
 *
 * @module
 */
import type { LiveBlockCommitRequest } from "../../core/driver.ts";
import type { StorageAccess } from "../../core/storage_backend.ts";
import { QemuBlockJob, type QemuBlockJobEnv } from "./block_job.ts";
import { protocolBlockdev } from "./blockdev_source.ts";
import type { Instance } from "./instance.ts";
import type { RunDisk, RunJob } from "./state_store.ts";

type ImageRef = NonNullable<RunJob["createdDestination"]>;

/** A pool volume when a pool holds the path, the path otherwise. */
async function imageRef(storage: StorageAccess, path: string): Promise<ImageRef> {
  const found = (await storage.findVolume({ path }).catch(() => undefined)) ?? (await storage.findVolume({ key: path }).catch(() => undefined));
  return found ? { pool: found.pool, name: found.volume.name } : { path };
}

/**
 * Starts a commit.
 *
 * @param env The block job wiring.
 * @param deps The connection's pools (to name the base and the committed images as volumes).
 * @param inst The running domain.
 * @param disk The disk (its layers match `request.chain`).
 * @param request The checked request with `topIndex` and `baseIndex`.
 * @returns The job, `running`.
 * @throws {QmpError} When QEMU refuses the commit.
 * @example Committing the active image names no top-node; an intermediate one does
 * ```ts
 * import { commitArgs } from "./block_commit.ts";
 * const layers = ["t", "m", "b"].map((n, i) => ({ path: `/i/${n}`, format: "qcow2", virtualBytes: 1, node: `vda-${i}`, fileNode: `vda-${i}-file` }));
 * const active = commitArgs(layers, 0, 2, 0);
 * const middle = commitArgs(layers, 1, 2, 1024);
 * if (active["top-node"] !== undefined || middle["top-node"] !== "vda-1" || middle.speed !== 1024) throw new Error("unexpected");
 * ```
 */
export async function startQemuCommit(
  env: QemuBlockJobEnv,
  deps: { readonly storage: StorageAccess },
  inst: Instance,
  disk: RunDisk,
  request: LiveBlockCommitRequest,
): Promise<QemuBlockJob> {
  const { topIndex, baseIndex } = request;
  const layers = disk.layers;
  const base = layers[baseIndex]!;
  const active = topIndex === 0;
  const committed = layers.slice(topIndex, baseIndex);
  // The pools are asked what the base and the committed images are while QEMU reopens the base.
  const refs = Promise.all([
    active ? imageRef(deps.storage, base.path) : undefined,
    request.deleteCommitted ? Promise.all(committed.map((l) => imageRef(deps.storage, l.path))) : [],
  ]);
  // Backing images run read-only (-blockdev "read-only": true); the base receives the data, so it is
  // reopened read-write first (QEMU refuses "Block node is read-only" otherwise). The commit goes right
  // behind the reopen without waiting for its reply: QEMU runs a monitor's commands in order.
  const below = layers[baseIndex + 1];
  const reopened = inst.qmp.execute("blockdev-reopen", {
    options: [
      protocolBlockdev(base.path, base.fileNode, false, base.auth), // a file, or a LUN (with its secret object's id)
      {
        driver: base.format,
        "node-name": base.node,
        file: base.fileNode,
        "read-only": false,
        ...(base.format === "qcow2" ? { backing: below ? below.node : null } : {}),
      },
    ],
  });
  const started = refs.then(([baseRef, deleteAfter]) =>
    QemuBlockJob.start(env, inst, disk, {
      record: {
        type: "block-commit",
        twoPhase: active,
        disk: disk.target,
        endBytes: layers[topIndex]!.virtualBytes,
        bandwidth: request.bandwidth,
        layersAfter: [...layers.slice(0, topIndex), ...layers.slice(baseIndex)],
        ...(baseRef ? { sourceAfter: "path" in baseRef ? { path: baseRef.path, format: base.format } : { volume: baseRef, format: base.format } } : {}),
        dropNodes: committed.flatMap((l) => [l.node, l.fileNode]),
        ...(deleteAfter.length > 0 ? { deleteAfter } : {}),
      },
      command: "block-commit",
      args: commitArgs(layers, topIndex, baseIndex, request.bandwidth),
      ...(request.signal ? { signal: request.signal } : {}),
    })
  );
  const [reopen, job] = await Promise.allSettled([reopened, started]);
  if (job.status === "fulfilled") return job.value;
  // A refused reopen is the cause (QEMU then refuses the commit on a read-only base).
  throw reopen.status === "rejected" ? reopen.reason : job.reason;
}

/**
 * The arguments of `block-commit` (without `job-id` and the finalize flags).
 *
 * @param layers The disk's layers, active first.
 * @param topIndex The uppermost committed image.
 * @param baseIndex The image receiving the data.
 * @param bandwidth Cap in bytes per second (0: none).
 * @returns The arguments.
 */
export function commitArgs(layers: RunDisk["layers"], topIndex: number, baseIndex: number, bandwidth: number): Record<string, unknown> {
  return {
    device: layers[0]!.node,
    "base-node": layers[baseIndex]!.node,
    ...(topIndex > 0 ? { "top-node": layers[topIndex]!.node } : {}),
    ...(bandwidth > 0 ? { speed: bandwidth } : {}),
  };
}
