/**
 * Storage pool event registration (`virConnectStoragePoolEventRegisterAny`, procedures 368 and 369) and
 * delivery: LIFECYCLE (eventID 0: defined, undefined, started, stopped, built as CREATED, deleted) and
 * REFRESH (eventID 1), from the shared connection's `pool:*` events, filtered by the optional pool and
 * sent through the client's bounded outbox with daemon-wide callbackIDs, as libvirtd does.
 *
 * @module
 */
import type { CoreEvent } from "../../core/events.ts";
import { LibvirtErrorCode } from "../../drivers/remote/rpc/errors.ts";
import { encodePacket, MessageStatus, MessageType } from "../../drivers/remote/rpc/packet.ts";
import {
  CONNECT_STORAGE_POOL_EVENT_DEREGISTER_ANY,
  CONNECT_STORAGE_POOL_EVENT_REGISTER_ANY,
  PoolEventId,
  PoolLifecycle,
  STORAGE_POOL_EVENT_LIFECYCLE,
  STORAGE_POOL_EVENT_REFRESH,
} from "../../drivers/remote/rpc/protocol/events.ts";
import { poolUuid } from "../object_ids.ts";
import { type CallContext, RpcFault, serve, type ServedProcedure, type SessionState } from "../dispatch.ts";
import { connOf } from "./domain_refs.ts";
import { uuidOfPool } from "./storage_refs.ts";

const LIFECYCLE: Readonly<Record<string, number>> = Object.freeze({
  "pool:defined": PoolLifecycle.DEFINED,
  "pool:undefined": PoolLifecycle.UNDEFINED,
  "pool:started": PoolLifecycle.STARTED,
  "pool:stopped": PoolLifecycle.STOPPED,
  "pool:built": PoolLifecycle.CREATED,
  "pool:deleted": PoolLifecycle.DELETED,
});

interface ClientPoolEvents {
  readonly registrations: Map<number, { eventID: number; uuid?: string }>;
}
const CLIENTS = new WeakMap<SessionState, ClientPoolEvents>();
// Pool callbackIDs share nothing with domain ones in libvirtd either; unique daemon-wide.
let nextCallbackId = 1;

function send<A>(session: SessionState, proc: typeof STORAGE_POOL_EVENT_LIFECYCLE | typeof STORAGE_POOL_EVENT_REFRESH, body: A): void {
  session.outbox.send(encodePacket(
    { program: proc.program, version: proc.version, procedure: proc.number, type: MessageType.MESSAGE, serial: 1, status: MessageStatus.OK },
    (w) => (proc.args as { encode(w: unknown, v: A): void }).encode(w, body),
  ));
}

function clientPoolEvents(ctx: CallContext): ClientPoolEvents {
  const { session } = ctx;
  let events = CLIENTS.get(session);
  if (events) return events;
  const created: ClientPoolEvents = { registrations: new Map() };
  events = created;
  CLIENTS.set(session, created);
  const { conn } = connOf(ctx);
  // UUIDs of pools as last seen, so an undefined pool is still named by the UUID it had.
  const uuids = new Map<string, string>();
  const uuidOf = async (name: string) => {
    try {
      uuids.set(name, await uuidOfPool(await conn.pools.get(name)));
    } catch {
      // gone: keep what was seen
    }
    return uuids.get(name) ?? poolUuid(name);
  };
  void conn.pools.list().then((pools) => Promise.all(pools.map((p) => uuidOf(p.name)))).catch(() => {});
  let chain: Promise<void> = Promise.resolve();
  const off = conn.events.on("pool:*", (event: CoreEvent) => {
    const name = (event as CoreEvent<"pool:started">).pool;
    chain = chain.then(async () => {
      const uuid = await uuidOf(name);
      const pool = { name, uuid };
      for (const [callbackID, reg] of created.registrations) {
        if (reg.uuid !== undefined && reg.uuid !== uuid.toLowerCase()) continue;
        if (reg.eventID === PoolEventId.LIFECYCLE && LIFECYCLE[event.type] !== undefined) {
          send(session, STORAGE_POOL_EVENT_LIFECYCLE, { callbackID, pool, event: LIFECYCLE[event.type]!, detail: 0 });
        } else if (reg.eventID === PoolEventId.REFRESH && event.type === "pool:refreshed") {
          send(session, STORAGE_POOL_EVENT_REFRESH, { callbackID, pool });
        }
      }
    }).catch(() => {});
  });
  session.cleanups.add(() => {
    off();
    created.registrations.clear();
  });
  return events;
}

/** The storage pool event procedures. */
export const POOL_EVENT_PROCEDURES: readonly ServedProcedure[] = [
  serve(CONNECT_STORAGE_POOL_EVENT_REGISTER_ANY, (ctx, { eventID, pool }) => {
    if (eventID !== PoolEventId.LIFECYCLE && eventID !== PoolEventId.REFRESH) {
      throw new RpcFault(LibvirtErrorCode.INVALID_ARG, `invalid argument: unsupported storage pool event ID ${eventID}`);
    }
    const callbackID = nextCallbackId++;
    clientPoolEvents(ctx).registrations.set(callbackID, { eventID, ...(pool ? { uuid: pool.uuid.toLowerCase() } : {}) });
    return { callbackID };
  }),
  serve(CONNECT_STORAGE_POOL_EVENT_DEREGISTER_ANY, (ctx, { callbackID }) => {
    if (!clientPoolEvents(ctx).registrations.delete(callbackID)) {
      throw new RpcFault(LibvirtErrorCode.INVALID_ARG, `invalid argument: callback ${callbackID} not registered`);
    }
  }),
];
