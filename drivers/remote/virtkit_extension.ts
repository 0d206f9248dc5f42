/**
 * The client side of virtkit's extension program (`rpc/protocol/virtkit.ts`): probe whether the daemon
 * offers it (virtkitd does; a libvirtd answers the unknown program with an error and the connection
 * goes on), then the generic job list and verbs, and event subscriptions with `since` replay. The remote
 * driver's connection gets the full job list and replay from here when the probe succeeds.
 *
 * @module
 */
import type { CoreEvent, EventPattern } from "../../core/events.ts";
import type { JobInfo, JobListFilter } from "../../core/job.ts";
import type { Extent } from "../../core/volume.ts";
import type { RpcClient } from "./rpc/client.ts";
import {
  JobVerb,
  VIRTKIT_EVENT,
  VIRTKIT_JOB_GET,
  VIRTKIT_JOB_LIST,
  VIRTKIT_JOB_START,
  VIRTKIT_JOB_VERB,
  VIRTKIT_PROBE,
  VIRTKIT_SUBSCRIBE,
  VIRTKIT_TESTING,
  VIRTKIT_UNSUBSCRIBE,
  VIRTKIT_VOLUME_EXTENTS,
  type TestingRequest,
  type VolumeJobRequest,
} from "./rpc/protocol/virtkit.ts";
import type { CallOptions } from "./rpc/client.ts";

/** A verb of {@linkcode VirtkitExtension.verb}. */
export type RemoteJobVerb = "pause" | "resume" | "abort" | "finalize" | "dismiss" | "setSpeed";

const VERBS: Readonly<Record<RemoteJobVerb, number>> = Object.freeze({
  pause: JobVerb.PAUSE,
  resume: JobVerb.RESUME,
  abort: JobVerb.ABORT,
  finalize: JobVerb.FINALIZE,
  dismiss: JobVerb.DISMISS,
  setSpeed: JobVerb.SET_SPEED,
});

/** Options of {@linkcode VirtkitExtension.subscribe}. */
export interface RemoteSubscribeOptions {
  /** Patterns (`"job:*"`); every event when absent. */
  readonly types?: readonly EventPattern[];
  /** Replay the daemon's buffered events with a greater `seq` first. */
  readonly since?: number;
  /** Ends the iteration (and the subscription on the daemon). */
  readonly signal?: AbortSignal;
  /** Called once the daemon has the subscription: no event after this moment is missed. */
  readonly onActive?: () => void;
}

/** What the extension gives a client of virtkitd. */
export interface VirtkitExtension {
  /** The program version the daemon speaks. */
  readonly version: number;
  /** Every job of the daemon's connection (storage jobs included), filtered. */
  listJobs(filter?: Omit<JobListFilter, "signal">): Promise<JobInfo[]>;
  /** One job; rejects with a not-found error for an unknown id. */
  getJob(id: string): Promise<JobInfo>;
  /** Applies a verb (`setSpeed` takes bytes per second). */
  verb(id: string, verb: RemoteJobVerb, bandwidth?: number, options?: CallOptions): Promise<void>;
  /** The daemon's events, replayed from `since` when given. */
  subscribe(options?: RemoteSubscribeOptions): AsyncIterable<CoreEvent>;
  /** Starts a volume job libvirt cannot express (capped clone or wipe, allocate, pull); resolves to its info. */
  startJob(request: VolumeJobRequest, options?: CallOptions): Promise<JobInfo>;
  /** `conn.testing` of the daemon's `test:` connection (VIR_ERR_NO_SUPPORT elsewhere). */
  testing(request: TestingRequest, options?: CallOptions): Promise<void>;
  /** A volume's extents, as `vol.extents()` gives them on the daemon. */
  extents(request: { pool: string; volume: string; offset?: number; length?: number }, options?: CallOptions): Promise<Extent[]>;
}

/**
 * Probes the daemon for virtkit's program and returns its client, or undefined when the daemon does not
 * offer it (a stock libvirtd): the connection stays usable either way.
 *
 * @param client An RPC client whose connection was opened (CONNECT_OPEN).
 * @returns The extension, or undefined.
 * @example
 * ```ts
 * import { probeVirtkitExtension } from "./virtkit_extension.ts";
 * // A peer that refuses every call, as a libvirtd refuses the unknown program:
 * const refusing = { call: () => Promise.reject(new Error("cannot find program")) };
 * if ((await probeVirtkitExtension(refusing as never)) !== undefined) throw new Error("unexpected");
 * ```
 */
export async function probeVirtkitExtension(client: RpcClient): Promise<VirtkitExtension | undefined> {
  let version: number;
  try {
    ({ version } = await client.call(VIRTKIT_PROBE, undefined));
  } catch {
    return undefined;
  }
  return {
    version,
    async listJobs(filter = {}) {
      return JSON.parse(await client.call(VIRTKIT_JOB_LIST, JSON.stringify(filter))) as JobInfo[];
    },
    async getJob(id) {
      return JSON.parse(await client.call(VIRTKIT_JOB_GET, id, { objectName: id })) as JobInfo;
    },
    async verb(id, verb, bandwidth = 0, options?: CallOptions) {
      await client.call(VIRTKIT_JOB_VERB, { id, verb: VERBS[verb], bandwidth }, options);
    },
    async startJob(request, options) {
      return JSON.parse(await client.call(VIRTKIT_JOB_START, JSON.stringify(request), options)) as JobInfo;
    },
    async testing(request, options) {
      await client.call(VIRTKIT_TESTING, JSON.stringify(request), options);
    },
    async extents(request, options) {
      return JSON.parse(await client.call(VIRTKIT_VOLUME_EXTENTS, JSON.stringify(request), options)) as Extent[];
    },
    subscribe: (options = {}) => subscribeRemote(client, options),
  };
}

async function* subscribeRemote(client: RpcClient, options: RemoteSubscribeOptions): AsyncGenerator<CoreEvent> {
  const queue: CoreEvent[] = [];
  let wake: (() => void) | undefined;
  let subscription: number | undefined;
  // Messages can arrive before the subscription's id is known: keep them all, filter once it is.
  const early: Array<{ subscription: number; event: string }> = [];
  const off = client.onMessage(VIRTKIT_EVENT, (message) => {
    if (subscription === undefined) early.push(message);
    else if (message.subscription === subscription) queue.push(JSON.parse(message.event) as CoreEvent);
    wake?.();
  });
  const onAbort = () => wake?.();
  options.signal?.addEventListener("abort", onAbort);
  try {
    ({ subscription } = await client.call(VIRTKIT_SUBSCRIBE, {
      types: JSON.stringify(options.types ?? []),
      since: options.since,
    }));
    for (const message of early) if (message.subscription === subscription) queue.push(JSON.parse(message.event) as CoreEvent);
    early.length = 0;
    options.onActive?.();
    for (;;) {
      while (queue.length > 0) {
        if (options.signal?.aborted) return;
        yield queue.shift()!;
      }
      if (options.signal?.aborted) return;
      await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
    }
  } finally {
    off();
    options.signal?.removeEventListener("abort", onAbort);
    if (subscription !== undefined && !client.closed) await client.call(VIRTKIT_UNSUBSCRIBE, { subscription }).catch(() => {});
  }
}
