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
  "job:created": JobEventPayload;
  "job:state": JobEventPayload & { readonly previous: JobState };
  "job:progress": JobEventPayload;
  "job:completed": JobEventPayload;
  "job:failed": JobEventPayload & { readonly error: string };
  "job:aborted": JobEventPayload;
  "job:ready": JobEventPayload;
  "job:dismissed": JobEventPayload;
  "domain:defined": DomainEventPayload;
  "domain:undefined": DomainEventPayload;
  "domain:started": DomainEventPayload;
  "domain:suspended": DomainEventPayload;
  "domain:resumed": DomainEventPayload;
  "domain:stopped": DomainEventPayload;
  "domain:crashed": DomainEventPayload;
  "pool:defined": PoolEventPayload;
  "pool:undefined": PoolEventPayload;
  "pool:built": PoolEventPayload;
  "pool:started": PoolEventPayload;
  "pool:stopped": PoolEventPayload;
  "pool:deleted": PoolEventPayload;
  "pool:refreshed": PoolEventPayload;
  "volume:created": VolumeEventPayload;
  "volume:deleted": VolumeEventPayload;
  "volume:resized": VolumeEventPayload & { readonly capacityBytes: number };
  "qmp:event": { readonly domain: string; readonly name: string; readonly data: unknown };
  /** Sent by `subscribe()` when its buffer no longer reaches back far enough: `missed` events are lost. */
  gap: { readonly missed: number; readonly fromSeq: number; readonly toSeq: number };
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
