/**
 * Domains as libvirt names them on the wire (`remote_nonnull_domain`: name, UUID, id) and back: the
 * look-ups every domain procedure starts with.
 *
 * @module
 */
import type { Domain, DomainInfo } from "../../core/domain.ts";
import { NotFoundError } from "../../core/errors.ts";
import type { DomainRefValue } from "../../drivers/remote/rpc/protocol/common.ts";
import { type CallContext, RpcFault } from "../dispatch.ts";
import { LibvirtErrorCode } from "../../drivers/remote/rpc/errors.ts";

/** The open connection of a call, or the "connection not open" fault. */
export function connOf(ctx: CallContext) {
  const open = ctx.session.open;
  if (!open) throw new RpcFault(LibvirtErrorCode.INTERNAL_ERROR, "connection not open");
  return open;
}

/** The wire reference of a domain, from a fresh `info()`. */
export function domainRefOf(ctx: CallContext, info: DomainInfo): DomainRefValue {
  return { name: info.name, uuid: info.uuid, id: connOf(ctx).shared.ids.idOf(info.name, info.state) };
}

/** Answered as VIR_ERR_NO_DOMAIN, which `virsh` reports as "failed to get domain". */
function noDomain(what: string): NotFoundError {
  return new NotFoundError("domain", what, { driver: "virtkitd" });
}

/**
 * The domain a wire reference names. libvirt looks domains up by UUID; the name is checked too, so a
 * domain undefined and redefined under the same name is not mistaken for the old one.
 *
 * @throws {NotFoundError} When no domain has that name and UUID.
 */
export async function domainOf(ctx: CallContext, ref: DomainRefValue): Promise<{ dom: Domain; info: DomainInfo }> {
  let dom: Domain;
  try {
    dom = await connOf(ctx).conn.domains.get(ref.name);
  } catch (error) {
    if (error instanceof NotFoundError) throw noDomain(`uuid '${ref.uuid}' (${ref.name})`);
    throw error;
  }
  const info = await dom.info();
  if (info.uuid.toLowerCase() !== ref.uuid.toLowerCase()) throw noDomain(`${ref.name} (uuid ${ref.uuid})`);
  return { dom, info };
}

/** Every domain with its info, in definition order. */
export async function allDomains(ctx: CallContext): Promise<Array<{ dom: Domain; info: DomainInfo }>> {
  const doms = await connOf(ctx).conn.domains.list();
  return await Promise.all(doms.map(async (dom) => ({ dom, info: await dom.info() })));
}

/** Finds a domain by a predicate over its info, or throws NO_DOMAIN naming `what`. */
export async function findDomain(
  ctx: CallContext,
  what: string,
  match: (info: DomainInfo) => boolean,
): Promise<DomainRefValue> {
  for (const { info } of await allDomains(ctx)) if (match(info)) return domainRefOf(ctx, info);
  throw noDomain(what);
}
