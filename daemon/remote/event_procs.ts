/**
 * Domain event registration (`virConnectDomainEventRegisterAny` in its callback form, procedures 316 and
 * 317) and delivery: each registration gets a daemon-wide callbackID (as libvirtd numbers them); the
 * client's events come from the shared connection's feed, filtered by event ID and domain, and are sent
 * through the client's bounded outbox. Registration is accepted for every event ID libvirt 9.0 knows,
 * even the ones virtkit never fires, as `virsh event --all` needs.
 *
 * @module
 */
import { LibvirtErrorCode } from "../../drivers/remote/rpc/errors.ts";
import { encodePacket, MessageStatus, MessageType } from "../../drivers/remote/rpc/packet.ts";
import type { Procedure } from "../../drivers/remote/rpc/protocol/common.ts";
import {
  CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY,
  CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY,
  DOMAIN_EVENT_BLOCK_JOB_2,
  DOMAIN_EVENT_CALLBACK_BLOCK_JOB,
  DOMAIN_EVENT_CALLBACK_LIFECYCLE,
} from "../../drivers/remote/rpc/protocol/events.ts";
import { type CallContext, RpcFault, serve, type ServedProcedure, type SessionState } from "../dispatch.ts";
import type { LibvirtDomainEvent } from "../event_feed.ts";
import { EVENT_ID, EVENT_ID_LAST } from "../libvirt_codes.ts";
import { connOf } from "./domain_refs.ts";

interface Registration {
  readonly eventID: number;
  /** Only events of this domain (by UUID), when set. */
  readonly uuid?: string;
}

interface ClientEvents {
  readonly registrations: Map<number, Registration>;
}

// callbackIDs are daemon-wide, as libvirtd's: unique across clients, never reused.
let nextCallbackId = 1;
const CLIENTS = new WeakMap<SessionState, ClientEvents>();

/** Sends an event MESSAGE (serial 1, as libvirtd does) through the client's outbox. */
function sendEvent<A>(session: SessionState, proc: Procedure<A, void>, body: A): void {
  session.outbox.send(encodePacket(
    { program: proc.program, version: proc.version, procedure: proc.number, type: MessageType.MESSAGE, serial: 1, status: MessageStatus.OK },
    (w) => proc.args.encode(w, body),
  ));
}

function deliver(session: SessionState, events: ClientEvents, event: LibvirtDomainEvent): void {
  for (const [callbackID, reg] of events.registrations) {
    if (reg.uuid !== undefined && reg.uuid !== event.dom.uuid.toLowerCase()) continue;
    if (event.kind === "lifecycle" && reg.eventID === EVENT_ID.LIFECYCLE) {
      sendEvent(session, DOMAIN_EVENT_CALLBACK_LIFECYCLE, { callbackID, msg: { dom: event.dom, event: event.event, detail: event.detail } });
    } else if (event.kind === "block-job" && reg.eventID === EVENT_ID.BLOCK_JOB) {
      sendEvent(session, DOMAIN_EVENT_CALLBACK_BLOCK_JOB, { callbackID, msg: { dom: event.dom, path: event.path, type: event.type, status: event.status } });
    } else if (event.kind === "block-job" && reg.eventID === EVENT_ID.BLOCK_JOB_2) {
      sendEvent(session, DOMAIN_EVENT_BLOCK_JOB_2, { callbackID, dom: event.dom, dst: event.dst, type: event.type, status: event.status });
    }
  }
}

function clientEvents(ctx: CallContext): ClientEvents {
  const { session } = ctx;
  let events = CLIENTS.get(session);
  if (!events) {
    const created: ClientEvents = { registrations: new Map() };
    events = created;
    CLIENTS.set(session, created);
    const off = connOf(ctx).shared.feed.subscribe((event) => deliver(session, created, event));
    session.cleanups.add(() => {
      off();
      created.registrations.clear();
    });
  }
  return events;
}

/** The event registration procedures. */
export const EVENT_PROCEDURES: readonly ServedProcedure[] = [
  serve(CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY, (ctx, { eventID, dom }) => {
    if (eventID < 0 || eventID > EVENT_ID_LAST) {
      throw new RpcFault(LibvirtErrorCode.INVALID_ARG, `invalid argument: unsupported event ID ${eventID}`);
    }
    const callbackID = nextCallbackId++;
    clientEvents(ctx).registrations.set(callbackID, { eventID, ...(dom ? { uuid: dom.uuid.toLowerCase() } : {}) });
    return { callbackID };
  }),
  serve(CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY, (ctx, { callbackID }) => {
    if (!clientEvents(ctx).registrations.delete(callbackID)) {
      throw new RpcFault(LibvirtErrorCode.INVALID_ARG, `invalid argument: callback ${callbackID} not registered`);
    }
  }),
];
