/**
 * Block pull on a running `qemu:` domain: QMP `block-stream` of the disk's top node, optionally keeping
 * a base node, through the shared block job wiring of `block_job.ts`. Clusters already in the top image
 * are skipped and not counted against the cap (QEMU's rule).
 *
 * @module
 */
import type { LiveBlockPullRequest } from "../../core/driver.ts";
import { NotFoundError } from "../../core/errors.ts";
import { QemuBlockJob, type QemuBlockJobEnv } from "./block_job.ts";
import type { Instance } from "./instance.ts";
import type { RunDisk } from "./state_store.ts";

/**
 * Starts a pull.
 *
 * @param env The connection's parts.
 * @param inst The running domain.
 * @param disk The disk.
 * @param options Cap, base (a path of the chain) and signal.
 * @returns The job, `running`.
 * @throws {NotFoundError} When `base` is not in the disk's chain.
 * @throws {QmpError} When QEMU refuses the stream.
 * @example The base must be an image below the top (checked before QEMU is asked)
 * ```ts
 * import { startQemuPull } from "./block_pull.ts";
 * const disk = { target: "vda", layers: [{ path: "/i/t.qcow2", format: "qcow2", virtualBytes: 1, node: "vda-0", fileNode: "vda-0-file" }] };
 * const error = await startQemuPull({} as never, { name: "web1" } as never, disk, { base: "/i/b.raw" }).catch((e) => e);
 * if (error.code !== "not-found" || !error.message.includes("/i/b.raw")) throw new Error("unexpected");
 * ```
 */
export async function startQemuPull(
  env: QemuBlockJobEnv,
  inst: Instance,
  disk: RunDisk,
  options: Partial<Pick<LiveBlockPullRequest, "bandwidth" | "base" | "signal">>,
): Promise<QemuBlockJob> {
  const [top, ...below] = disk.layers;
  let baseNode: string | undefined;
  if (options.base !== undefined) {
    const base = below.find((l) => l.path === options.base);
    if (!base) {
      throw new NotFoundError("volume", options.base, { driver: "qemu", detail: `it is not in the backing chain of disk "${disk.target}" of domain "${inst.name}"` });
    }
    baseNode = base.node;
  }
  const bandwidth = options.bandwidth ?? 0;
  return await QemuBlockJob.start(env, inst, disk, {
    record: { disk: disk.target, endBytes: top!.virtualBytes, bandwidth, ...(baseNode ? { baseNode } : {}) },
    command: "block-stream",
    args: { device: top!.node, ...(bandwidth > 0 ? { speed: bandwidth } : {}), ...(baseNode ? { "base-node": baseNode } : {}) },
    ...(options.signal ? { signal: options.signal } : {}),
  });
}
