/**
 * virtkit's own RPC program as virtkitd serves it (`drivers/remote/rpc/protocol/virtkit.ts`): the job
 * list and verbs, and event subscriptions with replay. Calls need the REMOTE program's CONNECT_OPEN first
 * (they act on the connection it opened) and honour its read-only flag.
 *
 * @module
 */
import type { CoreEvent, EventPattern } from "../core/events.ts";
import type { JobListFilter } from "../core/job.ts";
import { LibvirtErrorCode } from "../drivers/remote/rpc/errors.ts";
import { encodePacket, MessageStatus, MessageType } from "../drivers/remote/rpc/packet.ts";
import {
  JobVerb,
  VIRTKIT_EVENT,
  VIRTKIT_JOB_GET,
  VIRTKIT_JOB_LIST,
  VIRTKIT_JOB_START,
  VIRTKIT_JOB_VERB,
  VIRTKIT_PROBE,
  VIRTKIT_PROCEDURES,
  VIRTKIT_PROGRAM,
  VIRTKIT_PROTOCOL_VERSION,
  VIRTKIT_SUBSCRIBE,
  VIRTKIT_TESTING,
  VIRTKIT_UNSUBSCRIBE,
} from "../drivers/remote/rpc/protocol/virtkit.ts";
import { type CallContext, RpcFault, serve, type ServedProcedure, type SessionState } from "./dispatch.ts";
import { eventHistoryOf, type ReplayPlan } from "./event_history.ts";
import { connOf } from "./remote/domain_refs.ts";
import type { ServedProgram } from "./session.ts";
import { VIRTKIT_TESTING_PROCEDURE } from "./virtkit_testing_procs.ts";
import { VIRTKIT_VOLUME_PROCEDURES } from "./virtkit_volume_procs.ts";

/** Events one subscription may hold undelivered (a client that reads slowly) before the oldest drop with a `gap`. */
const SUBSCRIPTION_QUEUE_EVENTS = 4096;

const FILTER_KEYS = new Set(["state", "type", "domain", "pool"]);

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new RpcFault(LibvirtErrorCode.INVALID_ARG, `invalid argument: ${what} is not JSON: ${(error as Error).message}`);
  }
}

function parseFilter(text: string): JobListFilter {
  const filter = parseJson(text, "the job filter");
  if (typeof filter !== "object" || filter === null || Array.isArray(filter)) {
    throw new RpcFault(LibvirtErrorCode.INVALID_ARG, "invalid argument: the job filter must be a JSON object");
  }
  for (const key of Object.keys(filter)) {
    if (!FILTER_KEYS.has(key)) throw new RpcFault(LibvirtErrorCode.INVALID_ARG, `invalid argument: unknown job filter field "${key}"`);
  }
  return filter as JobListFilter;
}

function parseTypes(text: string): EventPattern[] | undefined {
  const types = parseJson(text, "the event types");
  if (!Array.isArray(types) || types.some((t) => typeof t !== "string")) {
    throw new RpcFault(LibvirtErrorCode.INVALID_ARG, "invalid argument: the event types must be a JSON array of strings");
  }
  return types.length === 0 ? undefined : types as EventPattern[];
}

interface Subscriptions {
  next: number;
  readonly active: Map<number, AbortController>;
}
const SUBSCRIPTIONS = new WeakMap<SessionState, Subscriptions>();

function subscriptionsOf(session: SessionState): Subscriptions {
  let subs = SUBSCRIPTIONS.get(session);
  if (!subs) {
    const created: Subscriptions = { next: 1, active: new Map() };
    subs = created;
    SUBSCRIPTIONS.set(session, created);
    session.cleanups.add(() => {
      for (const controller of created.active.values()) controller.abort();
      created.active.clear();
    });
  }
  return subs;
}

async function subscribe(ctx: CallContext, typesText: string, since: number | undefined): Promise<{ subscription: number }> {
  const { conn } = connOf(ctx);
  const types = parseTypes(typesText);
  if (since !== undefined && (!Number.isSafeInteger(since) || since < 0)) {
    throw new RpcFault(LibvirtErrorCode.INVALID_ARG, `invalid argument: since must be a sequence number, not ${since}`);
  }
  // Wire seqs carry the daemon run (event_history.ts): a `since` of an earlier run is answered with
  // what that run saved, and gaps for what is lost, before this run's events.
  const history = await eventHistoryOf(conn);
  let plan: ReplayPlan;
  try {
    plan = history.plan(since, types);
  } catch (error) {
    throw new RpcFault(LibvirtErrorCode.INVALID_ARG, `invalid argument: ${(error as Error).message}`);
  }
  const subs = subscriptionsOf(ctx.session);
  const id = subs.next++;
  const controller = new AbortController();
  subs.active.set(id, controller);
  // Without `since`, start from now; subscribing before the reply means no event between the call and
  // the first read is lost (they wait in the subscription's bounded queue).
  const events = conn.events.subscribe({
    ...(types ? { types } : {}), since: plan.localSince ?? conn.events.lastSeq, signal: controller.signal, maxQueued: SUBSCRIPTION_QUEUE_EVENTS,
  });
  const { session } = ctx;
  const send = async (event: CoreEvent) => {
    // Waiting for the socket keeps the client's backlog small; meanwhile the subscription's bounded
    // queue holds what arrives, dropping the oldest (with a gap event) when the client is too slow.
    await session.outbox.whenWritable();
    session.outbox.send(encodePacket(
      { program: VIRTKIT_PROGRAM, version: VIRTKIT_PROTOCOL_VERSION, procedure: VIRTKIT_EVENT.number, type: MessageType.MESSAGE, serial: 1, status: MessageStatus.OK },
      (w) => VIRTKIT_EVENT.args.encode(w, { subscription: id, event: JSON.stringify(event) }),
    ));
  };
  ctx.afterReply(() => {
    void (async () => {
      for (const event of plan.before) {
        if (controller.signal.aborted) return;
        await send(event);
      }
      for await (const event of events) await send(history.toWire(event));
    })().catch(() => {
      // The client went away or unsubscribed.
    });
  });
  return { subscription: id };
}

const SERVED: readonly ServedProcedure[] = [
  serve(VIRTKIT_PROBE, () => ({ version: VIRTKIT_PROTOCOL_VERSION, features: "jobs events volumes" }), { beforeOpen: true }),
  serve(VIRTKIT_JOB_LIST, async (ctx, filterText) => {
    const jobs = await connOf(ctx).conn.jobs.list(parseFilter(filterText));
    return JSON.stringify(await Promise.all(jobs.map((job) => job.info())));
  }),
  serve(VIRTKIT_JOB_GET, async (ctx, id) => JSON.stringify(await (await connOf(ctx).conn.jobs.get(id)).info())),
  serve(VIRTKIT_JOB_VERB, async (ctx, { id, verb, bandwidth }) => {
    const job = await connOf(ctx).conn.jobs.get(id);
    switch (verb) {
      case JobVerb.PAUSE:
        return await job.pause();
      case JobVerb.RESUME:
        return await job.resume();
      case JobVerb.ABORT:
        return await job.abort();
      case JobVerb.FINALIZE:
        return await job.finalize();
      case JobVerb.DISMISS:
        return await job.dismiss();
      case JobVerb.SET_SPEED:
        return await job.setSpeed(bandwidth);
      default:
        throw new RpcFault(LibvirtErrorCode.INVALID_ARG, `invalid argument: unknown job verb ${verb}`);
    }
  }),
  serve(VIRTKIT_SUBSCRIBE, (ctx, { types, since }) => subscribe(ctx, types, since)),
  serve(VIRTKIT_UNSUBSCRIBE, (ctx, { subscription }) => {
    const subs = subscriptionsOf(ctx.session);
    const controller = subs.active.get(subscription);
    if (!controller) throw new RpcFault(LibvirtErrorCode.INVALID_ARG, `invalid argument: subscription ${subscription} is not active`);
    controller.abort();
    subs.active.delete(subscription);
  }),
  ...VIRTKIT_VOLUME_PROCEDURES,
  VIRTKIT_TESTING_PROCEDURE,
];

/** virtkit's program, ready for the session factory. The job verbs, job starts and testing change something. */
export const VIRTKIT_SERVED_PROGRAM: ServedProgram = {
  program: VIRTKIT_PROGRAM,
  version: VIRTKIT_PROTOCOL_VERSION,
  procedures: new Map(SERVED.map((s) => [s.proc.number, s])),
  accessOf: (proc) => (proc === VIRTKIT_JOB_VERB.number || proc === VIRTKIT_JOB_START.number || proc === VIRTKIT_TESTING.number ? "write" : VIRTKIT_PROCEDURES.has(proc) && proc !== VIRTKIT_EVENT.number ? "read" : undefined),
  nameOf: (proc) => VIRTKIT_PROCEDURES.get(proc)?.name ?? `virtkit procedure ${proc}`,
};
