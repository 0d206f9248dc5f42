/**
 * The events a connection emits, typed in one map. Every event carries `seq` (monotonic per connection),
 * `time` (the connection clock's `now()`) and `type`, plus its payload.
 *
 * @module
 */
import type { JobInfo, JobState } from "./job.ts";

/** Fields every event has. */
export interface EventBase<K extends string = string> {
  /** Monotonic per connection, from 1. */
  readonly seq: number;
  /** The connection clock's time when emitted. */
  readonly time: number;
  /** The event type, such as `"job:completed"`. */
  readonly type: K;
}

/** Payload of every job event: a snapshot of the job. */
export interface JobEventPayload {
  /** The job as it was when the event fired. */
  readonly job: JobInfo;
}

/** Payload of domain events. */
export interface DomainEventPayload {
  /** Domain name. */
  readonly domain: string;
  /** Why, where the driver knows (`"crashed"`, `"shutdown"`, `"destroyed"`, ...). */
  readonly reason?: string;
}

/** Payload of pool events. */
export interface PoolEventPayload {
  /** Pool name. */
  readonly pool: string;
  /**
   * Why, where core knows: `"restored"` (active again on a new connection because it was active when the
   * last one closed), `"autostart"`, `"start-failed"` (such a pool could not be started; see `error`).
   */
  readonly reason?: string;
  /** The error text, with `reason: "start-failed"`. */
  readonly error?: string;
}

/** Payload of volume events. */
export interface VolumeEventPayload {
  /** Pool name. */
  readonly pool: string;
  /** Volume name. */
  readonly volume: string;
}

/** Every event type and its payload. Drivers and plugins emit only these (plus `qmp:event` passthrough). */
export interface CoreEventPayloads {
  /** A job was registered. */
  "job:created": JobEventPayload;
  /** A job changed state; `previous` is the state it left. */
  "job:state": JobEventPayload & {
    /** The state the job left. */
    readonly previous: JobState;
  };
  /** A job made progress (throttled per job). */
  "job:progress": JobEventPayload;
  /** A job ended successfully. */
  "job:completed": JobEventPayload;
  /** A job ended with an error; `error` is its text. */
  "job:failed": JobEventPayload & {
    /** The error text. */
    readonly error: string;
  };
  /** A job was aborted. */
  "job:aborted": JobEventPayload;
  /** A two-phase job reached `ready` and waits for `finalize()`. */
  "job:ready": JobEventPayload;
  /** A finished job was removed from the list. */
  "job:dismissed": JobEventPayload;
  /** A domain was defined. */
  "domain:defined": DomainEventPayload;
  /** A domain definition was removed. */
  "domain:undefined": DomainEventPayload;
  /** A domain started. */
  "domain:started": DomainEventPayload;
  /** A domain was paused. */
  "domain:suspended": DomainEventPayload;
  /** A paused domain was resumed. */
  "domain:resumed": DomainEventPayload;
  /** A domain stopped (shutdown or destroy; `reason` says which). */
  "domain:stopped": DomainEventPayload;
  /** A domain's hypervisor process died unexpectedly. */
  "domain:crashed": DomainEventPayload;
  /** A pool was defined. */
  "pool:defined": PoolEventPayload;
  /** A pool definition was removed. */
  "pool:undefined": PoolEventPayload;
  /** A pool's storage was built. */
  "pool:built": PoolEventPayload;
  /** A pool was activated. */
  "pool:started": PoolEventPayload;
  /** A pool was deactivated. */
  "pool:stopped": PoolEventPayload;
  /** A pool's storage was deleted. */
  "pool:deleted": PoolEventPayload;
  /** A pool was refreshed. */
  "pool:refreshed": PoolEventPayload;
  /** A volume was created. */
  "volume:created": VolumeEventPayload;
  /** A volume was deleted. */
  "volume:deleted": VolumeEventPayload;
  /** A volume's capacity changed. */
  "volume:resized": VolumeEventPayload & {
    /** The new capacity. */
    readonly capacityBytes: number;
  };
  /** A raw QMP event from a domain's QEMU, passed through. */
  "qmp:event": {
    /** Domain name. */
    readonly domain: string;
    /** QMP event name (`"BLOCK_JOB_COMPLETED"`). */
    readonly name: string;
    /** QMP event data. */
    readonly data: unknown;
  };
  /** Sent by `subscribe()` when its buffer no longer reaches back far enough: `missed` events are lost. */
  gap: {
    /** How many events were lost. */
    readonly missed: number;
    /** The first lost `seq`. */
    readonly fromSeq: number;
    /** The last lost `seq` (also the gap event's own `seq`). */
    readonly toSeq: number;
  };
}

/** Every event type name. */
export type CoreEventType = keyof CoreEventPayloads;

/** A full event of type `K`. */
export type CoreEvent<K extends CoreEventType = CoreEventType> = K extends CoreEventType
  ? EventBase<K> & CoreEventPayloads[K]
  : never;

/**
 * A type name or a wildcard: `"job:*"` matches every job event, `"*"` every event.
 */
export type EventPattern = CoreEventType | `${string}:*` | "*";

/** The events a pattern matches. */
export type EventsMatching<P extends EventPattern> = P extends CoreEventType ? CoreEvent<P>
  : P extends `${infer Prefix}:*` ? CoreEvent<Extract<CoreEventType, `${Prefix}:${string}`>>
  : CoreEvent;
