/**
 * Domain XML procedures of libvirt's REMOTE program: `dumpxml` (and `domblklist`, which parses it) and
 * `define`, with the XML written and read by `core/xml` from and into virtkit's domain configs.
 *
 * @module
 */
import { domainFromXml, domainToXml } from "../../core/xml/mod.ts";
import { LibvirtErrorCode } from "../../drivers/remote/rpc/errors.ts";
import { DOMAIN_DEFINE_XML, DOMAIN_DEFINE_XML_FLAGS, DOMAIN_GET_XML_DESC, DomainXmlFlags } from "../../drivers/remote/rpc/protocol/domain.ts";
import { type CallContext, RpcFault, serve, type ServedProcedure } from "../dispatch.ts";
import { checkFlags } from "./domain_procs.ts";
import { connOf, domainOf, domainRefOf } from "./domain_refs.ts";

const DEFINE_VALIDATE = 1;

/** libvirt's domain `type` for the connection: `test` on the test driver, `kvm` for QEMU. */
function hypervisorOf(ctx: CallContext): "test" | "kvm" {
  return connOf(ctx).conn.driver === "test" ? "test" : "kvm";
}

async function define(ctx: CallContext, xml: string, strict: boolean) {
  let config;
  try {
    ({ config } = domainFromXml(xml, { strict }));
  } catch (error) {
    if (error instanceof TypeError) throw new RpcFault(LibvirtErrorCode.XML_ERROR, `XML error: ${error.message}`);
    throw error;
  }
  const dom = await connOf(ctx).conn.domains.define(config);
  return domainRefOf(ctx, await dom.info());
}

/** The domain XML procedures. */
export const DOMAIN_XML_PROCEDURES: readonly ServedProcedure[] = [
  serve(DOMAIN_GET_XML_DESC, async (ctx, { dom: ref, flags }) => {
    // SECURE, INACTIVE, UPDATE_CPU, MIGRATABLE: virtkit keeps one config, with no secrets or host CPU.
    checkFlags(flags, DomainXmlFlags.SECURE | DomainXmlFlags.INACTIVE | DomainXmlFlags.UPDATE_CPU | DomainXmlFlags.MIGRATABLE, "virDomainGetXMLDesc");
    const { dom } = await domainOf(ctx, ref);
    const config = await dom.config();
    // The XML (but not the INACTIVE definition) carries the disks' chains, as libvirt's live XML does,
    // and unlike libvirt also for a shut-off domain: virtkit knows a chain without running the domain
    // and runs block jobs on shut-off domains, whose top and base are named from that chain.
    const withChains = !(flags & DomainXmlFlags.INACTIVE);
    const backingChains = withChains ? Object.fromEntries((await dom.disks()).map((d) => [d.target, d.backingChain])) : undefined;
    return domainToXml(config, { hypervisor: hypervisorOf(ctx), ...(backingChains ? { backingChains } : {}) });
  }),
  serve(DOMAIN_DEFINE_XML, (ctx, xml) => define(ctx, xml, false)),
  serve(DOMAIN_DEFINE_XML_FLAGS, (ctx, { xml, flags }) => {
    checkFlags(flags, DEFINE_VALIDATE, "virDomainDefineXMLFlags");
    // VALIDATE: refuse what virtkit would drop, instead of dropping it.
    return define(ctx, xml, (flags & DEFINE_VALIDATE) !== 0);
  }),
];
