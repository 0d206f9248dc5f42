/**
 * The disk a libvirt block call names, as libvirt accepts it: its target (`vda`) or its source path.
 *
 * @module
 */
import type { Domain } from "../../core/domain.ts";
import { LibvirtErrorCode } from "../../drivers/remote/rpc/errors.ts";
import { RpcFault } from "../dispatch.ts";

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
 * import { diskTargetOf } from "./disk_target.ts";
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
