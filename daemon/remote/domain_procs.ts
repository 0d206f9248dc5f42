/**
 * Domain procedures of libvirt's REMOTE program: listing and look-ups, state and info, and the
 * lifecycle (start, shutdown, destroy, suspend, resume, undefine), each a call of virtkit's API.
 *
 * @module
 */
import { LibvirtErrorCode } from "../../drivers/remote/rpc/errors.ts";
import {
  CONNECT_LIST_ALL_DOMAINS,
  DOMAIN_CREATE,
  DOMAIN_CREATE_WITH_FLAGS,
  DOMAIN_DESTROY,
  DOMAIN_DESTROY_FLAGS,
  DOMAIN_GET_AUTOSTART,
  DOMAIN_GET_INFO,
  DOMAIN_GET_OS_TYPE,
  DOMAIN_GET_STATE,
  DOMAIN_IS_ACTIVE,
  DOMAIN_IS_PERSISTENT,
  DOMAIN_LOOKUP_BY_ID,
  DOMAIN_LOOKUP_BY_NAME,
  DOMAIN_LOOKUP_BY_UUID,
  DOMAIN_RESUME,
  DOMAIN_SHUTDOWN,
  DOMAIN_SHUTDOWN_FLAGS,
  DOMAIN_SUSPEND,
  DOMAIN_UNDEFINE,
  DOMAIN_UNDEFINE_FLAGS,
} from "../../drivers/remote/rpc/protocol/domain.ts";
import {
  CONNECT_IS_SECURE,
  DOMAIN_GET_MESSAGES,
  DOMAIN_GET_SECURITY_LABEL,
  DOMAIN_HAS_MANAGED_SAVE_IMAGE,
  NODE_GET_SECURITY_MODEL,
} from "../../drivers/remote/rpc/protocol/host_queries.ts";
import type { DomainInfo } from "../../core/domain.ts";
import { type CallContext, RpcFault, serve, type ServedProcedure } from "../dispatch.ts";
import { domainStateCode } from "../libvirt_codes.ts";
import { NotFoundError } from "../../core/errors.ts";
import { allDomains, domainOf, domainRefOf, findDomain, namedDomain } from "./domain_refs.ts";

// virConnectListAllDomainsFlags.
const LIST = Object.freeze({
  ACTIVE: 1, INACTIVE: 2, PERSISTENT: 4, TRANSIENT: 8, RUNNING: 16, PAUSED: 32, SHUTOFF: 64, OTHER: 128,
  MANAGEDSAVE: 256, NO_MANAGEDSAVE: 512, AUTOSTART: 1024, NO_AUTOSTART: 2048, HAS_SNAPSHOT: 4096,
  NO_SNAPSHOT: 8192, HAS_CHECKPOINT: 16384, NO_CHECKPOINT: 32768,
});

/**
 * Whether a domain passes `virConnectListAllDomains` filter flags. Each group (active, persistent, state,
 * managed save, autostart, snapshot, checkpoint) filters only when one of its flags is set. virtkit's
 * domains are all persistent, never autostarted, without managed save, snapshots or checkpoints.
 *
 * @example
 * ```ts
 * import { passesListFilter } from "./domain_procs.ts";
 * const info = { name: "a", uuid: "", state: "paused" as const, vcpus: 1, memoryBytes: 1 };
 * if (!passesListFilter(info, 1 | 32) || passesListFilter(info, 2) || passesListFilter(info, 8)) throw new Error("unexpected");
 * ```
 */
export function passesListFilter(info: DomainInfo, flags: number): boolean {
  const group = (mask: number, pass: number) => (flags & mask) === 0 || (flags & pass) !== 0;
  const active = info.state !== "shutoff";
  const stateBit = info.state === "running" ? LIST.RUNNING : info.state === "paused" ? LIST.PAUSED : info.state === "shutoff" ? LIST.SHUTOFF : LIST.OTHER;
  return group(LIST.ACTIVE | LIST.INACTIVE, active ? LIST.ACTIVE : LIST.INACTIVE) &&
    group(LIST.PERSISTENT | LIST.TRANSIENT, LIST.PERSISTENT) &&
    group(LIST.RUNNING | LIST.PAUSED | LIST.SHUTOFF | LIST.OTHER, stateBit) &&
    group(LIST.MANAGEDSAVE | LIST.NO_MANAGEDSAVE, LIST.NO_MANAGEDSAVE) &&
    group(LIST.AUTOSTART | LIST.NO_AUTOSTART, LIST.NO_AUTOSTART) &&
    group(LIST.HAS_SNAPSHOT | LIST.NO_SNAPSHOT, LIST.NO_SNAPSHOT) &&
    group(LIST.HAS_CHECKPOINT | LIST.NO_CHECKPOINT, LIST.NO_CHECKPOINT);
}

/**
 * Refuses flags a procedure does not know, as libvirt's `virCheckFlags` does (VIR_ERR_INVALID_ARG).
 *
 * @example
 * ```ts
 * import { checkFlags } from "./domain_procs.ts";
 * checkFlags(1, 1, "virDomainCreateWithFlags");
 * let refused = "";
 * try { checkFlags(6, 1, "virDomainCreateWithFlags"); } catch (error) { refused = (error as Error).message; }
 * if (!refused.includes("unsupported flags (0x6)")) throw new Error(refused);
 * ```
 */
export function checkFlags(flags: number, known: number, api: string): void {
  const unknown = flags & ~known;
  if (unknown !== 0) throw new RpcFault(LibvirtErrorCode.INVALID_ARG, `unsupported flags (0x${unknown.toString(16)}) in function ${api}`);
}

const KiB = 1024;

async function lifecycle(ctx: CallContext, ref: Parameters<typeof domainOf>[1], verb: "start" | "shutdown" | "destroy" | "suspend" | "resume" | "undefine") {
  const { dom } = await domainOf(ctx, ref);
  await dom[verb]();
}

/** The domain procedures. */
export const DOMAIN_PROCEDURES: readonly ServedProcedure[] = [
  serve(CONNECT_LIST_ALL_DOMAINS, async (ctx, { needResults, flags }) => {
    const matching = (await allDomains(ctx)).filter(({ info }) => passesListFilter(info, flags));
    return { domains: needResults ? matching.map(({ info }) => domainRefOf(ctx, info)) : [], ret: matching.length };
  }),
  serve(DOMAIN_LOOKUP_BY_NAME, async (ctx, name) => domainRefOf(ctx, (await namedDomain(ctx, name)).info)),
  serve(DOMAIN_LOOKUP_BY_UUID, (ctx, uuid) => findDomain(ctx, uuid, (info) => info.uuid.toLowerCase() === uuid.toLowerCase())),
  serve(DOMAIN_LOOKUP_BY_ID, async (ctx, id) => {
    // Ids are handed out as running domains are first seen: number them all, then match.
    const refs = (await allDomains(ctx)).map(({ info }) => domainRefOf(ctx, info));
    const ref = refs.find((r) => r.id === id && id > 0);
    if (!ref) throw new NotFoundError("domain", String(id), { driver: "virtkitd", detail: "no running domain has that id" });
    return ref;
  }),
  serve(DOMAIN_GET_STATE, async (ctx, { dom, flags }) => {
    checkFlags(flags, 0, "virDomainGetState");
    return domainStateCode((await domainOf(ctx, dom)).info.state);
  }),
  serve(DOMAIN_GET_INFO, async (ctx, { dom }) => {
    const { info } = await domainOf(ctx, dom);
    const memoryKiB = Math.ceil(info.memoryBytes / KiB);
    // cpuTime: virtkit does not account guest CPU time; 0 is what an idle new guest reports.
    return { state: domainStateCode(info.state).state, maxMem: memoryKiB, memory: memoryKiB, nrVirtCpu: info.vcpus, cpuTime: 0n };
  }),
  serve(DOMAIN_GET_OS_TYPE, async (ctx, { dom }) => {
    await domainOf(ctx, dom);
    return "hvm";
  }),
  serve(DOMAIN_IS_ACTIVE, async (ctx, { dom }) => ((await domainOf(ctx, dom)).info.state === "shutoff" ? 0 : 1)),
  serve(DOMAIN_IS_PERSISTENT, async (ctx, { dom }) => (await domainOf(ctx, dom), 1)),
  serve(DOMAIN_GET_AUTOSTART, async (ctx, { dom }) => (await domainOf(ctx, dom), 0)),
  serve(DOMAIN_HAS_MANAGED_SAVE_IMAGE, async (ctx, { dom }) => (await domainOf(ctx, dom), 0)),
  // No security driver, as libvirt's test driver: an empty model, so virsh asks for no label.
  serve(NODE_GET_SECURITY_MODEL, () => ({ model: "", doi: "" })),
  serve(DOMAIN_GET_SECURITY_LABEL, async (ctx, { dom }) => (await domainOf(ctx, dom), { label: "", enforcing: 0 })),
  serve(DOMAIN_GET_MESSAGES, async (ctx, { dom }) => (await domainOf(ctx, dom), [])),
  serve(CONNECT_IS_SECURE, (ctx) => (ctx.session.secure ? 1 : 0)),
  serve(DOMAIN_CREATE, (ctx, { dom }) => lifecycle(ctx, dom, "start")),
  serve(DOMAIN_CREATE_WITH_FLAGS, async (ctx, { dom: ref, flags }) => {
    const START_PAUSED = 1;
    checkFlags(flags, START_PAUSED, "virDomainCreateWithFlags");
    const { dom } = await domainOf(ctx, ref);
    await dom.start();
    if (flags & START_PAUSED) await dom.suspend();
    return domainRefOf(ctx, await dom.info());
  }),
  serve(DOMAIN_DESTROY, (ctx, { dom }) => lifecycle(ctx, dom, "destroy")),
  serve(DOMAIN_DESTROY_FLAGS, (ctx, { dom, flags }) => {
    // GRACEFUL (1) asks for a destroy without SIGKILL; virtkit's destroy is always a hard power-off.
    checkFlags(flags, 1, "virDomainDestroyFlags");
    return lifecycle(ctx, dom, "destroy");
  }),
  serve(DOMAIN_SHUTDOWN, (ctx, { dom }) => lifecycle(ctx, dom, "shutdown")),
  serve(DOMAIN_SHUTDOWN_FLAGS, (ctx, { dom, flags }) => {
    // DEFAULT (0) and ACPI_POWER_BTN (1) are what virtkit's shutdown does.
    checkFlags(flags, 1, "virDomainShutdownFlags");
    return lifecycle(ctx, dom, "shutdown");
  }),
  serve(DOMAIN_SUSPEND, (ctx, { dom }) => lifecycle(ctx, dom, "suspend")),
  serve(DOMAIN_RESUME, (ctx, { dom }) => lifecycle(ctx, dom, "resume")),
  serve(DOMAIN_UNDEFINE, (ctx, { dom }) => lifecycle(ctx, dom, "undefine")),
  serve(DOMAIN_UNDEFINE_FLAGS, (ctx, { dom, flags }) => {
    // MANAGED_SAVE 1, SNAPSHOTS_METADATA 2, NVRAM 4, KEEP_NVRAM 8, CHECKPOINTS_METADATA 16, TPM 32,
    // KEEP_TPM 64: virtkit keeps none of these, so each is trivially honoured.
    checkFlags(flags, 127, "virDomainUndefineFlags");
    return lifecycle(ctx, dom, "undefine");
  }),
];
