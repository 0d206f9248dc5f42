/**
 * What the remote driver's storage handles share: the RPC client, the connection's jobs and bus, and
 * the error context of a call.
 *
 * @module
 */
import type { EventBus } from "../../../core/event_bus.ts";
import type { JobManager } from "../../../core/jobs/types.ts";
import type { SignalOptions } from "../../../core/options.ts";
import type { CallOptions, RpcClient } from "../rpc/client.ts";

/** The connection's parts, as storage handles use them. */
export interface RemoteStorageContext {
  /** The RPC client. */
  readonly client: RpcClient;
  /** The connection's one job list. */
  readonly jobs: JobManager;
  /** The connection's bus (volume events: libvirt has none of its own). */
  readonly bus: EventBus;
}

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
