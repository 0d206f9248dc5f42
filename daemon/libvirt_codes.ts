/**
 * How virtkit's states, events and units read in libvirt's numbers: domain and pool states, lifecycle
 * event codes, block job types and statuses, and bandwidth in MiB/s or bytes/s. Pure functions, so the
 * dispatch code stays a thin layer of calls.
 *
 * @module
 */
import type { DomainState } from "../core/domain.ts";
import type { CoreEvent } from "../core/events.ts";
import type { JobInfo, JobType } from "../core/job.ts";

/** libvirt `virDomainState`. */
export const DOMAIN_STATE: Readonly<Record<DomainState, number>> = Object.freeze({
  running: 1,
  paused: 3,
  shutoff: 5,
  crashed: 6,
});

/**
 * libvirt's (state, reason) pair for a virtkit state. Reasons: RUNNING_BOOTED 1, PAUSED_USER 1,
 * SHUTOFF_UNKNOWN 0 (the daemon does not keep why a domain stopped), CRASHED_UNKNOWN 0.
 *
 * @param state The virtkit state.
 * @returns `{ state, reason }` in libvirt's numbers.
 * @example
 * ```ts
 * import { domainStateCode } from "./libvirt_codes.ts";
 * const { state, reason } = domainStateCode("paused");
 * if (state !== 3 || reason !== 1) throw new Error("unexpected");
 * ```
 */
export function domainStateCode(state: DomainState): { state: number; reason: number } {
  return { state: DOMAIN_STATE[state], reason: state === "running" || state === "paused" ? 1 : 0 };
}

/** libvirt `virDomainEventID` values the daemon fires. */
export const EVENT_ID = Object.freeze({ LIFECYCLE: 0, BLOCK_JOB: 8, BLOCK_JOB_2: 16 });

/** The highest `virDomainEventID` libvirt 9.0 knows (registration is accepted for every one up to it). */
export const EVENT_ID_LAST = 27;

/**
 * libvirt's lifecycle `(event, detail)` for a virtkit domain event (`virDomainEventType` and its detail
 * enums), or undefined for events libvirt has no lifecycle code for.
 *
 * @param event A domain event from the bus.
 * @returns `{ event, detail }`, or undefined.
 * @example
 * ```ts
 * import { lifecycleCode } from "./libvirt_codes.ts";
 * const code = lifecycleCode({ type: "domain:stopped", domain: "web1", reason: "destroyed", seq: 1, time: 0 });
 * if (code?.event !== 5 || code.detail !== 1) throw new Error("Stopped Destroyed");
 * ```
 */
export function lifecycleCode(event: CoreEvent): { event: number; detail: number } | undefined {
  switch (event.type) {
    case "domain:defined":
      return { event: 0, detail: 0 }; // DEFINED_ADDED
    case "domain:undefined":
      return { event: 1, detail: 0 }; // UNDEFINED_REMOVED
    case "domain:started":
      return { event: 2, detail: 0 }; // STARTED_BOOTED
    case "domain:suspended":
      return { event: 3, detail: 0 }; // SUSPENDED_PAUSED
    case "domain:resumed":
      return { event: 4, detail: 0 }; // RESUMED_UNPAUSED
    case "domain:stopped": {
      const detail = event.reason === "destroyed" ? 1 : event.reason === "crashed" ? 2 : 0; // SHUTDOWN, DESTROYED, CRASHED
      return { event: 5, detail };
    }
    case "domain:crashed":
      return { event: 5, detail: 2 }; // STOPPED_CRASHED: the process is gone
    default:
      return undefined;
  }
}

/** libvirt `virDomainBlockJobType`. */
export const BLOCK_JOB_TYPE = Object.freeze({ UNKNOWN: 0, PULL: 1, COPY: 2, COMMIT: 3, ACTIVE_COMMIT: 4 });

/** libvirt `virConnectDomainEventBlockJobStatus`. */
export const BLOCK_JOB_STATUS = Object.freeze({ COMPLETED: 0, FAILED: 1, CANCELED: 2, READY: 3 });

/**
 * libvirt's block job type for a virtkit job type, or undefined when it is not a block job. A commit is
 * ACTIVE_COMMIT here, virtkit's default (the active image, two-phase); `block_job_kinds.ts` knows which
 * commits the daemon started on an intermediate image (COMMIT).
 *
 * @param type The virtkit job type.
 * @returns The libvirt number, or undefined.
 * @example
 * ```ts
 * import { blockJobTypeCode } from "./libvirt_codes.ts";
 * if (blockJobTypeCode("block-pull") !== 1 || blockJobTypeCode("volume-clone") !== undefined) throw new Error("unexpected");
 * ```
 */
export function blockJobTypeCode(type: JobType): number | undefined {
  switch (type) {
    case "block-pull":
      return BLOCK_JOB_TYPE.PULL;
    case "block-copy":
      return BLOCK_JOB_TYPE.COPY;
    case "block-commit":
      return BLOCK_JOB_TYPE.ACTIVE_COMMIT;
    default:
      return undefined;
  }
}

/**
 * libvirt's block job status for a job event, or undefined for events that are no block job status.
 *
 * @param type The event type.
 * @returns The libvirt number, or undefined.
 * @example
 * ```ts
 * import { blockJobStatusCode } from "./libvirt_codes.ts";
 * if (blockJobStatusCode("job:aborted") !== 2 || blockJobStatusCode("job:progress") !== undefined) throw new Error("unexpected");
 * ```
 */
export function blockJobStatusCode(type: CoreEvent["type"]): number | undefined {
  switch (type) {
    case "job:completed":
      return BLOCK_JOB_STATUS.COMPLETED;
    case "job:failed":
      return BLOCK_JOB_STATUS.FAILED;
    case "job:aborted":
      return BLOCK_JOB_STATUS.CANCELED;
    case "job:ready":
      return BLOCK_JOB_STATUS.READY;
    default:
      return undefined;
  }
}

const MiB = 1024 * 1024;

/**
 * A bandwidth a client sent, in bytes per second: MiB/s unless the call's BANDWIDTH_BYTES flag is set.
 *
 * @param value The number on the wire.
 * @param inBytes Whether the flag is set.
 * @returns Bytes per second.
 * @throws {RangeError} When the value does not fit a safe integer of bytes per second (libvirt: "bandwidth
 *   must be less than ...").
 * @example
 * ```ts
 * import { bandwidthFromWire } from "./libvirt_codes.ts";
 * if (bandwidthFromWire(10, false) !== 10 * 1024 * 1024 || bandwidthFromWire(4096, true) !== 4096) throw new Error("unexpected");
 * ```
 */
export function bandwidthFromWire(value: number, inBytes: boolean): number {
  const bytes = inBytes ? value : value * MiB;
  if (!Number.isSafeInteger(bytes) || bytes < 0) {
    throw new RangeError(`bandwidth must be less than ${inBytes ? Number.MAX_SAFE_INTEGER : Math.floor(Number.MAX_SAFE_INTEGER / MiB)}`);
  }
  return bytes;
}

/**
 * A bandwidth for the wire: bytes/s with the flag, else MiB/s rounded up (so a cap never reads as 0,
 * "unlimited").
 *
 * @param bytesPerSecond The cap.
 * @param inBytes Whether the client asked for bytes.
 * @returns The number to send.
 * @example
 * ```ts
 * import { bandwidthToWire } from "./libvirt_codes.ts";
 * if (bandwidthToWire(1, false) !== 1 || bandwidthToWire(10485760, false) !== 10) throw new Error("unexpected");
 * ```
 */
export function bandwidthToWire(bytesPerSecond: number, inBytes: boolean): number {
  return inBytes ? bytesPerSecond : Math.ceil(bytesPerSecond / MiB);
}

/**
 * libvirt's block job info for a job snapshot (`virDomainBlockJobInfo`). As libvirt's qemu driver does,
 * `cur` stays below `end` until the job is `ready` (polling clients, virsh among them, take
 * `cur == end` for "ready"), and reads `end` once it is.
 *
 * @param info The job snapshot.
 * @param inBytes Whether bandwidth is asked in bytes per second.
 * @param type The libvirt job type, when the caller knows better than the job type (COMMIT vs ACTIVE_COMMIT).
 * @returns `{ type, bandwidth, cur, end }`.
 * @example
 * ```ts
 * import { blockJobInfoOf } from "./libvirt_codes.ts";
 * const job = { id: "j", type: "block-pull", state: "running", target: {}, cur: 5, end: 10, bandwidth: 2097152, bytesPerSecond: 0, createdAt: 0 } as const;
 * const info = blockJobInfoOf(job, false);
 * if (info.type !== 1 || info.bandwidth !== 2 || info.cur !== 5 || info.end !== 10) throw new Error("unexpected");
 * if (blockJobInfoOf({ ...job, type: "block-copy", cur: 10 }, true).cur !== 9) throw new Error("not ready: cur < end");
 * if (blockJobInfoOf({ ...job, type: "block-copy", state: "ready", cur: 7 }, true).cur !== 10) throw new Error("ready: cur == end");
 * ```
 */
export function blockJobInfoOf(info: JobInfo, inBytes: boolean, type?: number): { type: number; bandwidth: number; cur: number; end: number } {
  const ready = info.state === "ready";
  const cur = ready ? info.end : info.end > 0 && info.cur >= info.end ? info.end - 1 : info.cur;
  return {
    type: type ?? blockJobTypeCode(info.type) ?? BLOCK_JOB_TYPE.UNKNOWN,
    bandwidth: bandwidthToWire(info.bandwidth, inBytes),
    cur,
    end: info.end,
  };
}
