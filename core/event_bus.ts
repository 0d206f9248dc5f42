/**
 * The typed event bus of a connection (design §5). Implementation: see `createEventBus`.
 *
 * @module
 */
import type { CoreEvent, CoreEventPayloads, CoreEventType, EventPattern, EventsMatching } from "./events.ts";

/** Options of {@linkcode EventBus.subscribe}. */
export interface SubscribeOptions<P extends EventPattern = EventPattern> {
  /** Which events (types or wildcards such as `"job:*"`); all when absent. */
  types?: readonly P[];
  /** Replay buffered events with `seq > since` first; a `gap` event says when some are gone. */
  since?: number;
  /** Ends the iteration. */
  signal?: AbortSignal;
  /** How many undelivered events this subscriber may hold before the oldest are dropped (with a `gap`). */
  maxQueued?: number;
}

/** A typed event bus with replay. */
export interface EventBus {
  /**
   * Calls `listener` for every matching event, synchronously as it is emitted. A listener that throws
   * does not stop delivery to the others (the error is reported through `onListenerError`).
   *
   * @returns A function that unsubscribes.
   */
  on<P extends EventPattern>(pattern: P, listener: (event: EventsMatching<P>) => void): () => void;
  /** Like `on`, but only for the next matching event. */
  once<P extends EventPattern>(pattern: P, listener: (event: EventsMatching<P>) => void): () => void;
  /**
   * Matching events as an async iterable; the subscriber's queue is bounded (`maxQueued`), and
   * overflow drops the oldest events and yields one `gap` event in their place.
   */
  subscribe<P extends EventPattern>(options?: SubscribeOptions<P>): AsyncIterable<EventsMatching<P> | CoreEvent<"gap">>;
  /** Resolves with the next matching event (rejects with the signal's reason when aborted). */
  next<P extends EventPattern>(
    pattern: P,
    options?: { signal?: AbortSignal; filter?: (event: EventsMatching<P>) => boolean },
  ): Promise<EventsMatching<P>>;
  /**
   * Emits an event: assigns `seq` and `time`, stores it in the ring buffer, and delivers it.
   *
   * @returns The event as delivered.
   */
  emit<K extends Exclude<CoreEventType, "gap">>(type: K, payload: CoreEventPayloads[K]): CoreEvent<K>;
  /** The `seq` of the newest event, 0 before any. */
  readonly lastSeq: number;
}
