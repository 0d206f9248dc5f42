/**
 * Domain procedures of the REMOTE program: listing, look-up, state, XML, lifecycle and block jobs.
 * Numbers and shapes from libvirt's remote_protocol.x.
 *
 * @example
 * ```ts
 * import { DOMAIN_GET_INFO } from "./domain.ts";
 * import { encode, decode } from "../codec.ts";
 * const info = { state: 1, maxMem: 8388608, memory: 2097152, nrVirtCpu: 2, cpuTime: 2n ** 60n };
 * const back = decode(DOMAIN_GET_INFO.ret, encode(DOMAIN_GET_INFO.ret, info));
 * if (back.nrVirtCpu !== 2 || back.maxMem !== 8388608 || back.cpuTime !== 2n ** 60n) throw new Error("unexpected");
 * ```
 *
 * @module
 */
import { array, int, small, struct, uhyper, uhyperBig, uint, voidCodec } from "../codec.ts";
import { domainRef, nonnullString, procedure, remoteString, typedParams, uuid } from "./common.ts";

/** `virDomainState`. */
export const DomainStateCode = Object.freeze({ NOSTATE: 0, RUNNING: 1, BLOCKED: 2, PAUSED: 3, SHUTDOWN: 4, SHUTOFF: 5, CRASHED: 6, PMSUSPENDED: 7 });
/** `virConnectListAllDomainsFlags`. */
export const ListDomainsFlags = Object.freeze({ ACTIVE: 1, INACTIVE: 2, PERSISTENT: 4, TRANSIENT: 8 });
/** `virDomainBlockJobType`. */
export const BlockJobType = Object.freeze({ UNKNOWN: 0, PULL: 1, COPY: 2, COMMIT: 3, ACTIVE_COMMIT: 4, BACKUP: 5 });
/** `virConnectDomainEventBlockJobStatus`. */
export const BlockJobStatus = Object.freeze({ COMPLETED: 0, FAILED: 1, CANCELED: 2, READY: 3 });
/** Bandwidth-in-bytes flags: pull/rebase `1 << 6`, set-speed and job-info `1`, commit `1 << 4` (copy: always bytes). */
export const BandwidthBytes = Object.freeze({ PULL: 1 << 6, REBASE: 1 << 6, SET_SPEED: 1, JOB_INFO: 1, COMMIT: 1 << 4 });
/** `virDomainBlockRebaseFlags` (COPY makes a rebase a block copy to the file named as `base`). */
export const BlockRebaseFlags = Object.freeze({ SHALLOW: 1, REUSE_EXT: 2, COPY_RAW: 4, COPY: 8, RELATIVE: 16, COPY_DEV: 32, BANDWIDTH_BYTES: 64 });
/** `virDomainBlockCopyFlags`. libvirt's qemu driver copies a persistent domain's disk only with TRANSIENT_JOB. */
export const BlockCopyFlags = Object.freeze({ SHALLOW: 1, REUSE_EXT: 2, TRANSIENT_JOB: 4, SYNCHRONOUS_WRITES: 8 });
/** Typed parameters of `virDomainBlockCopy`: `bandwidth` (ullong, bytes/s), `granularity` (uint, bytes), `buf-size` (ullong). */
export const BlockCopyParam = Object.freeze({ BANDWIDTH: "bandwidth", GRANULARITY: "granularity", BUF_SIZE: "buf-size" });
/** `virDomainBlockCommitFlags`. ACTIVE is required when `top` is the active image (a two-phase job). */
export const BlockCommitFlags = Object.freeze({ SHALLOW: 1, DELETE: 2, ACTIVE: 4, RELATIVE: 8, BANDWIDTH_BYTES: 16 });
/** `virDomainBlockJobAbortFlags`. */
export const BlockJobAbortFlags = Object.freeze({ ASYNC: 1, PIVOT: 2 });
/** `virDomainXMLFlags`. */
export const DomainXmlFlags = Object.freeze({ SECURE: 1, INACTIVE: 2, UPDATE_CPU: 4, MIGRATABLE: 8 });

const dom = struct({ dom: domainRef });
const domFlags = struct({ dom: domainRef, flags: uint });
const domPathFlags = struct({ dom: domainRef, path: nonnullString, flags: uint });
const domPathBandwidthFlags = struct({ dom: domainRef, path: nonnullString, bandwidth: uhyper, flags: uint });

/** 9: dom -> void (start). */
export const DOMAIN_CREATE = procedure(9, "DOMAIN_CREATE", dom, voidCodec);
/** 11: XML -> dom. */
export const DOMAIN_DEFINE_XML = procedure(11, "DOMAIN_DEFINE_XML", nonnullString, domainRef);
/** 12: dom -> void (hard power-off). */
export const DOMAIN_DESTROY = procedure(12, "DOMAIN_DESTROY", dom, voidCodec);
/** 14: dom, flags -> XML. */
export const DOMAIN_GET_XML_DESC = procedure(14, "DOMAIN_GET_XML_DESC", domFlags, nonnullString);
/** 15: dom -> 0/1. */
export const DOMAIN_GET_AUTOSTART = procedure(15, "DOMAIN_GET_AUTOSTART", dom, int);
/** 16: dom -> state (uchar), maxMem and memory (KiB), vCPUs (ushort), CPU time (ns, a bigint). */
export const DOMAIN_GET_INFO = procedure(16, "DOMAIN_GET_INFO", dom, struct({
  state: small(0, 255),
  maxMem: uhyper,
  memory: uhyper,
  nrVirtCpu: small(0, 65535),
  cpuTime: uhyperBig,
}));
/** 19: dom -> OS type (`"hvm"`). */
export const DOMAIN_GET_OS_TYPE = procedure(19, "DOMAIN_GET_OS_TYPE", dom, nonnullString);
/** 22: id -> dom. */
export const DOMAIN_LOOKUP_BY_ID = procedure(22, "DOMAIN_LOOKUP_BY_ID", int, domainRef);
/** 23: name -> dom. */
export const DOMAIN_LOOKUP_BY_NAME = procedure(23, "DOMAIN_LOOKUP_BY_NAME", nonnullString, domainRef);
/** 24: UUID -> dom. */
export const DOMAIN_LOOKUP_BY_UUID = procedure(24, "DOMAIN_LOOKUP_BY_UUID", uuid, domainRef);
/** 28: dom -> void. */
export const DOMAIN_RESUME = procedure(28, "DOMAIN_RESUME", dom, voidCodec);
/** 33: dom -> void (ACPI power button). */
export const DOMAIN_SHUTDOWN = procedure(33, "DOMAIN_SHUTDOWN", dom, voidCodec);
/** 34: dom -> void. */
export const DOMAIN_SUSPEND = procedure(34, "DOMAIN_SUSPEND", dom, voidCodec);
/** 35: dom -> void. */
export const DOMAIN_UNDEFINE = procedure(35, "DOMAIN_UNDEFINE", dom, voidCodec);
/** 150: dom -> 0/1. */
export const DOMAIN_IS_ACTIVE = procedure(150, "DOMAIN_IS_ACTIVE", dom, int);
/** 151: dom -> 0/1. */
export const DOMAIN_IS_PERSISTENT = procedure(151, "DOMAIN_IS_PERSISTENT", dom, int);
/** 194: dom, path, flags -> allocation, capacity, physical (bytes) of a disk. */
export const DOMAIN_GET_BLOCK_INFO = procedure(194, "DOMAIN_GET_BLOCK_INFO", domPathFlags, struct({ allocation: uhyper, capacity: uhyper, physical: uhyper }));
/** 196: dom, flags -> dom (start, with its new id). */
export const DOMAIN_CREATE_WITH_FLAGS = procedure(196, "DOMAIN_CREATE_WITH_FLAGS", domFlags, domainRef);
/** 212: dom, flags -> state and reason. */
export const DOMAIN_GET_STATE = procedure(212, "DOMAIN_GET_STATE", domFlags, struct({ state: int, reason: int }));
/** 231: dom, flags -> void. */
export const DOMAIN_UNDEFINE_FLAGS = procedure(231, "DOMAIN_UNDEFINE_FLAGS", domFlags, voidCodec);
/** 234: dom, flags -> void. */
export const DOMAIN_DESTROY_FLAGS = procedure(234, "DOMAIN_DESTROY_FLAGS", domFlags, voidCodec);
/** 237: dom, path, flags -> void. */
export const DOMAIN_BLOCK_JOB_ABORT = procedure(237, "DOMAIN_BLOCK_JOB_ABORT", domPathFlags, voidCodec);
/** 238: dom, path, flags -> found, type, bandwidth, cur, end. */
export const DOMAIN_GET_BLOCK_JOB_INFO = procedure(238, "DOMAIN_GET_BLOCK_JOB_INFO", domPathFlags, struct({
  found: int,
  type: int,
  bandwidth: uhyper,
  cur: uhyper,
  end: uhyper,
}));
/** 239: dom, path, bandwidth, flags -> void. */
export const DOMAIN_BLOCK_JOB_SET_SPEED = procedure(239, "DOMAIN_BLOCK_JOB_SET_SPEED", domPathBandwidthFlags, voidCodec);
/** 240: dom, path, bandwidth, flags -> void. */
export const DOMAIN_BLOCK_PULL = procedure(240, "DOMAIN_BLOCK_PULL", domPathBandwidthFlags, voidCodec);
/** 258: dom, flags -> void. */
export const DOMAIN_SHUTDOWN_FLAGS = procedure(258, "DOMAIN_SHUTDOWN_FLAGS", domFlags, voidCodec);
/** 266: dom, path, base, bandwidth, flags -> void. */
export const DOMAIN_BLOCK_REBASE = procedure(266, "DOMAIN_BLOCK_REBASE", struct({
  dom: domainRef,
  path: nonnullString,
  base: remoteString,
  bandwidth: uhyper,
  flags: uint,
}), voidCodec);
/** 273: need_results, flags -> domains, count. */
export const CONNECT_LIST_ALL_DOMAINS = procedure(273, "CONNECT_LIST_ALL_DOMAINS", struct({ needResults: int, flags: uint }), struct({
  domains: array(domainRef, 16384),
  ret: uint,
}));
/** 290: dom, disk, base, top, bandwidth, flags -> void. */
export const DOMAIN_BLOCK_COMMIT = procedure(290, "DOMAIN_BLOCK_COMMIT", struct({
  dom: domainRef,
  disk: nonnullString,
  base: remoteString,
  top: remoteString,
  bandwidth: uhyper,
  flags: uint,
}), voidCodec);
/** 345: dom, path, destination XML, typed params (`bandwidth`, `granularity`, `buf-size`), flags -> void. */
export const DOMAIN_BLOCK_COPY = procedure(345, "DOMAIN_BLOCK_COPY", struct({
  dom: domainRef,
  path: nonnullString,
  destxml: nonnullString,
  params: typedParams(16),
  flags: uint,
}), voidCodec);
/** 350: XML, flags -> dom. */
export const DOMAIN_DEFINE_XML_FLAGS = procedure(350, "DOMAIN_DEFINE_XML_FLAGS", struct({ xml: nonnullString, flags: uint }), domainRef);
