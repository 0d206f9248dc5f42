/**
 * Domains as libvirt names them on the wire (`remote_nonnull_domain`: name, UUID, id) and back: the
 * look-ups every domain procedure starts with.
 *
 * @module
 */
import type { Domain, DomainInfo, DomainListing } from "../../core/domain.ts";
import { NotFoundError } from "../../core/errors.ts";
import type { DomainRefValue } from "../../drivers/remote/rpc/protocol/common.ts";
import { type CallContext, RpcFault } from "../dispatch.ts";
import { LibvirtErrorCode } from "../../drivers/remote/rpc/errors.ts";

/**
 * The open connection of a call, or the "connection not open" fault.
 *
 * @example
 * ```ts
 * import { connect } from "../../mod.ts";
 * import { localContext, localSession } from "../local_call.ts";
 * import { connOf } from "./domain_refs.ts";
 * await using conn = await connect("test:///default");
 * if (connOf(localContext(localSession(conn))).uri !== conn.uri) throw new Error("unexpected");
 * ```
 */
export function connOf(ctx: CallContext) {
  const open = ctx.session.open;
  if (!open) throw new RpcFault(LibvirtErrorCode.INTERNAL_ERROR, "connection not open");
  return open;
}

/**
 * The wire reference of a domain, from a fresh `info()`: its running id comes from the shared table.
 *
 * @example
 * ```ts
 * import { connect } from "../../mod.ts";
 * import { localContext, localSession } from "../local_call.ts";
 * import { domainRefOf } from "./domain_refs.ts";
 * await using conn = await connect("test:///default");
 * const ref = domainRefOf(localContext(localSession(conn)), await (await conn.domains.get("test")).info());
 * if (ref.name !== "test" || ref.id !== 1) throw new Error("unexpected");
 * ```
 */
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
 * @example
 * ```ts
 * import { connect } from "../../mod.ts";
 * import { localContext, localSession } from "../local_call.ts";
 * import { domainOf } from "./domain_refs.ts";
 * await using conn = await connect("test:///default");
 * const ctx = localContext(localSession(conn));
 * const { info } = await domainOf(ctx, { name: "test", uuid: (await (await conn.domains.get("test")).info()).uuid, id: 1 });
 * let stale = false;
 * try { await domainOf(ctx, { name: "test", uuid: "00000000-0000-0000-0000-000000000000", id: 1 }); } catch { stale = true; }
 * if (info.name !== "test" || !stale) throw new Error("unexpected");
 * ```
 */
export function domainOf(ctx: CallContext, ref: DomainRefValue): Promise<{ dom: Domain; info: DomainInfo }> {
  return lookup(ctx, ref.name, ref, undefined);
}

/**
 * The domain of that name and its fresh info, through the shared handle table (one handle per name for
 * every call of every client, see `daemon/domain_handles.ts`).
 *
 * @param ctx The call.
 * @param name The domain's name.
 * @param gone The error for a domain that does not exist (default: virtkit's own NotFoundError).
 * @throws {NotFoundError} When no domain has that name.
 * @example
 * ```ts
 * import { connect } from "../../mod.ts";
 * import { localContext, localSession } from "../local_call.ts";
 * import { namedDomain } from "./domain_refs.ts";
 * await using conn = await connect("test:///default");
 * const { info } = await namedDomain(localContext(localSession(conn)), "test");
 * if (info.state !== "running") throw new Error("unexpected");
 * ```
 */
export function namedDomain(
  ctx: CallContext,
  name: string,
  gone?: () => Error,
): Promise<{ dom: Domain; info: DomainInfo }> {
  return lookup(ctx, name, undefined, gone);
}

// The one async step of domainOf and namedDomain (each call of a domain procedure makes one): the
// kept handle without a wait, its fresh info, and the UUID check when a wire reference names it.
async function lookup(
  ctx: CallContext,
  name: string,
  ref: DomainRefValue | undefined,
  gone: (() => Error) | undefined,
): Promise<{ dom: Domain; info: DomainInfo }> {
  const { domains } = connOf(ctx).shared;
  let dom: Domain;
  let info: DomainInfo;
  try {
    dom = domains.peek(name) ?? (await domains.get(name));
    info = await dom.info();
  } catch (error) {
    if (!(error instanceof NotFoundError)) throw error;
    // A kept handle of a domain undefined meanwhile: forget it, so a redefinition is looked up afresh.
    domains.forget(name);
    if (ref) throw noDomain(`uuid '${ref.uuid}' (${ref.name})`);
    throw gone ? gone() : error;
  }
  if (ref && info.uuid !== ref.uuid && info.uuid.toLowerCase() !== ref.uuid.toLowerCase()) throw noDomain(`${ref.name} (uuid ${ref.uuid})`);
  return { dom, info };
}

/**
 * Every domain with its info, in definition order.
 *
 * @example
 * ```ts
 * import { connect } from "../../mod.ts";
 * import { localContext, localSession } from "../local_call.ts";
 * import { allDomains } from "./domain_refs.ts";
 * await using conn = await connect("test:///default");
 * if ((await allDomains(localContext(localSession(conn))))[0]?.info.name !== "test") throw new Error("unexpected");
 * ```
 */
export function allDomains(ctx: CallContext): Promise<DomainListing[]> {
  // The infos core read while listing: asking each handle again was a second driver call per domain.
  // Entries as core gives them, their `domain` handle made only if asked for (no caller here does).
  return connOf(ctx).conn.domains.listWithInfo();
}

/**
 * Finds a domain by a predicate over its info, or throws NO_DOMAIN naming `what`.
 *
 * @example
 * ```ts
 * import { connect } from "../../mod.ts";
 * import { localContext, localSession } from "../local_call.ts";
 * import { findDomain } from "./domain_refs.ts";
 * await using conn = await connect("test:///default");
 * const ref = await findDomain(localContext(localSession(conn)), "running", (info) => info.state === "running");
 * if (ref.name !== "test") throw new Error("unexpected");
 * ```
 */
export async function findDomain(
  ctx: CallContext,
  what: string,
  match: (info: DomainInfo) => boolean,
): Promise<DomainRefValue> {
  for (const { info } of await allDomains(ctx)) if (match(info)) return domainRefOf(ctx, info);
  throw noDomain(what);
}
