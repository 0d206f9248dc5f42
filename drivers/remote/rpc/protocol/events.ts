/**
 * Event registration procedures and the event MESSAGEs libvirtd pushes, with libvirt's event ids.
 * Numbers and shapes from libvirt's remote_protocol.x; only the modern callback-id form (feature 14).
 *
 * @example
 * ```ts
 * import { DOMAIN_EVENT_BLOCK_JOB_2 } from "./events.ts";
 * import { encode, decode } from "../codec.ts";
 * const msg = { callbackID: 3, dom: { name: "vm", uuid: "11111111-2222-3333-4444-555555555555", id: 1 }, dst: "vda", type: 1, status: 0 };
 * const back = decode(DOMAIN_EVENT_BLOCK_JOB_2.args, encode(DOMAIN_EVENT_BLOCK_JOB_2.args, msg));
 * if (back.dst !== "vda" || back.dom.uuid !== msg.dom.uuid) throw new Error("unexpected");
 * ```
 *
 * @module
 */
import { int, optional, struct, voidCodec } from "../codec.ts";
import { domainRef, nonnullString, poolRef, procedure } from "./common.ts";

/** `virDomainEventID` values virtkit listens to (the daemon accepts registration for all 0..27). */
export const DomainEventId = Object.freeze({ LIFECYCLE: 0, BLOCK_JOB: 8, BLOCK_JOB_2: 16, JOB_COMPLETED: 23 });
/** `virStoragePoolEventID`. */
export const PoolEventId = Object.freeze({ LIFECYCLE: 0, REFRESH: 1 });
/** `virDomainEventType` (lifecycle `event`). */
export const DomainLifecycle = Object.freeze({
  DEFINED: 0, UNDEFINED: 1, STARTED: 2, SUSPENDED: 3, RESUMED: 4, STOPPED: 5, SHUTDOWN: 6, PMSUSPENDED: 7, CRASHED: 8,
});
/** `virStoragePoolEventLifecycleType`. */
export const PoolLifecycle = Object.freeze({ DEFINED: 0, UNDEFINED: 1, STARTED: 2, STOPPED: 3, CREATED: 4, DELETED: 5 });

const register = struct({ eventID: int, dom: optional(domainRef) });
const registerPool = struct({ eventID: int, pool: optional(poolRef) });
const callbackId = struct({ callbackID: int });

/** 316: event id, optional domain filter -> callback id. */
export const CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY = procedure(316, "CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY", register, callbackId);
/** 317: callback id -> void. */
export const CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY = procedure(317, "CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY", callbackId, voidCodec);
/** 318 (MESSAGE): callback id, then dom, event, detail. */
export const DOMAIN_EVENT_CALLBACK_LIFECYCLE = procedure(318, "DOMAIN_EVENT_CALLBACK_LIFECYCLE", struct({
  callbackID: int,
  msg: struct({ dom: domainRef, event: int, detail: int }),
}), voidCodec);
/** 326 (MESSAGE): callback id, then dom, source path, job type, status. */
export const DOMAIN_EVENT_CALLBACK_BLOCK_JOB = procedure(326, "DOMAIN_EVENT_CALLBACK_BLOCK_JOB", struct({
  callbackID: int,
  msg: struct({ dom: domainRef, path: nonnullString, type: int, status: int }),
}), voidCodec);
/** 339 (MESSAGE): callback id, dom, target (`"vda"`), job type, status. */
export const DOMAIN_EVENT_BLOCK_JOB_2 = procedure(339, "DOMAIN_EVENT_BLOCK_JOB_2", struct({
  callbackID: int,
  dom: domainRef,
  dst: nonnullString,
  type: int,
  status: int,
}), voidCodec);
/** 368: event id, optional pool filter -> callback id. */
export const CONNECT_STORAGE_POOL_EVENT_REGISTER_ANY = procedure(368, "CONNECT_STORAGE_POOL_EVENT_REGISTER_ANY", registerPool, callbackId);
/** 369: callback id -> void. */
export const CONNECT_STORAGE_POOL_EVENT_DEREGISTER_ANY = procedure(369, "CONNECT_STORAGE_POOL_EVENT_DEREGISTER_ANY", callbackId, voidCodec);
/** 370 (MESSAGE): callback id, pool, event, detail. */
export const STORAGE_POOL_EVENT_LIFECYCLE = procedure(370, "STORAGE_POOL_EVENT_LIFECYCLE", struct({
  callbackID: int,
  pool: poolRef,
  event: int,
  detail: int,
}), voidCodec);
/** 373 (MESSAGE): callback id, pool. */
export const STORAGE_POOL_EVENT_REFRESH = procedure(373, "STORAGE_POOL_EVENT_REFRESH", struct({ callbackID: int, pool: poolRef }), voidCodec);
