/**
 * What the remote driver's storage handles share: the RPC client, the connection's jobs and bus, and
 * the error context of a call.
 *
 * @module
 */
import type { EventBus } from "../../../core/event_bus.ts";
import type { JobManager } from "../../../core/jobs/types.ts";
import type { SignalOptions } from "../../../core/options.ts";
import type { DaemonJobs } from "../daemon_jobs.ts";
import type { CallOptions, RpcClient } from "../rpc/client.ts";

/** The connection's parts, as storage handles use them. */
export interface RemoteStorageContext {
  /** The RPC client. */
  readonly client: RpcClient;
  /** The connection's one job list. */
  readonly jobs: JobManager;
  /** The connection's bus (volume events: libvirt has none of its own). */
  readonly bus: EventBus;
  /** Whether libvirt's pool events reach the bus (the daemon has callback events). */
  readonly hasPoolEvents?: () => boolean;
  /** virtkitd's jobs, when it offers virtkit's program: volume jobs are then the daemon's. */
  readonly daemon?: () => DaemonJobs | undefined;
}

/** Longest a pool verb waits for its event after libvirt's reply. */
const POOL_EVENT_WAIT_MS = 2_000;

/**
 * Runs a pool verb, then waits (bounded) for the event libvirt sends for it, so the event is on the bus
 * when the verb resolves, as on local drivers (libvirt may send it after its reply).
 *
 * @param ctx The connection's parts.
 * @param pool The pool's name.
 * @param type The event the verb causes.
 * @param run The call.
 * @returns What `run` returned.
 * @example
 * ```ts
 * import { createRealClock } from "virtkit";
 * import { createEventBus } from "../../../core/event_bus.ts";
 * import { withPoolEvent } from "./context.ts";
 * const bus = createEventBus({ clock: createRealClock() });
 * const ctx = { client: {} as never, jobs: {} as never, bus, hasPoolEvents: () => true };
 * let heard = 0;
 * bus.on("pool:started", () => void heard++);
 * const result = await withPoolEvent(ctx, "p", "pool:started", async () => {
 *   setTimeout(() => bus.emit("pool:started", { pool: "p" }), 5);
 *   return 42;
 * });
 * if (result !== 42 || heard !== 1) throw new Error("unexpected"); // resolved only once the event was out
 * ```
 */
export async function withPoolEvent<T>(ctx: RemoteStorageContext, pool: string, type: PoolEventType, run: () => Promise<T>): Promise<T> {
  if (ctx.hasPoolEvents?.() !== true) return await run();
  let off = () => {};
  let timer: ReturnType<typeof setTimeout> | undefined;
  const seen = new Promise<void>((resolve) => {
    off = ctx.bus.on(type, (event) => {
      if ((event as { pool?: string }).pool === pool) resolve();
    });
    timer = setTimeout(resolve, POOL_EVENT_WAIT_MS);
  });
  try {
    const result = await run();
    await seen;
    return result;
  } finally {
    off();
    clearTimeout(timer);
  }
}

/** The pool events a verb waits for. */
export type PoolEventType = "pool:defined" | "pool:undefined" | "pool:started" | "pool:stopped" | "pool:refreshed" | "pool:built" | "pool:deleted";

/**
 * The call options of an operation on a named object.
 *
 * @param objectName Pool or volume name, for `NotFoundError`.
 * @param operation What is done, for messages.
 * @param options The caller's signal.
 * @returns The options.
 * @example
 * ```ts
 * import { callContext } from "./context.ts";
 * if (callContext("p", "start pool \"p\"").objectName !== "p") throw new Error("unexpected");
 * ```
 */
export function callContext(objectName: string, operation: string, options?: SignalOptions): CallOptions {
  return { signal: options?.signal, objectName, operation };
}
