/**
 * The typed event bus of a connection (design §5). Implementation: see `createEventBus`.
 *
 * @module
 */
import type { Clock } from "./clock.ts";
import type { CoreEvent, CoreEventPayloads, CoreEventType, EventPattern, EventsMatching } from "./events.ts";
import { Subscription } from "./_event_subscription.ts";

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

/** Options of {@linkcode createEventBus}. */
export interface EventBusOptions {
  /** Source of each event's `time`. */
  clock: Clock;
  /** How many recent events the ring buffer keeps for `subscribe({ since })` (default 1024). */
  bufferSize?: number;
  /** Gets what a listener threw, and its event. Default `console.error` (a rethrow would crash Node). */
  onListenerError?: (error: unknown, event: CoreEvent) => void;
}

/**
 * One `subscribe()` stream: an async iterator over the matching events, read by one consumer.
 *
 * @typeParam E The events it yields.
 */
export interface EventSubscription<E> extends AsyncIterable<E> {
  /** The next event, waiting for one when none is queued; `done` once the subscription has ended. */
  next(): Promise<IteratorResult<E, undefined>>;
  /** Ends the subscription (what `break` in a `for await` loop calls); queued events are discarded. */
  return(): Promise<IteratorResult<E, undefined>>;
  /** The iterator itself: a subscription can be iterated once. */
  [Symbol.asyncIterator](): EventSubscription<E>;
  /** Events waiting, never above `maxQueued`; not counting a pending `gap` (one fixed-size summary). */
  readonly queued: number;
}

/** The bus that {@linkcode createEventBus} returns: an {@linkcode EventBus} that can also be inspected. */
export interface LocalEventBus extends EventBus {
  /** Like {@linkcode EventBus.subscribe}, typed with the concrete subscription. */
  subscribe<P extends EventPattern>(
    options?: SubscribeOptions<P>,
  ): EventSubscription<EventsMatching<P> | CoreEvent<"gap">>;
  /** Listeners, pending `next()` calls and live subscriptions attached now (for leak checks). */
  readonly listenerCount: number;
}

type Deliver = (event: CoreEvent) => void;
type Matcher = (type: string) => boolean;
type Entry = { readonly matches: Matcher; readonly deliver: Deliver; active: boolean };

/**
 * Creates the typed event bus of a connection (design §5).
 *
 * Delivery to `on`/`once` listeners is synchronous, in the order they were added. An `emit` from
 * inside a listener is delivered once the current event has reached every listener, so every
 * listener and subscription sees events in `seq` order. A listener added during a dispatch first
 * hears the next event; one removed during a dispatch is not called again, not even for the current one.
 * Events are frozen (shallowly: payload objects are the emitter's snapshots, shared by all listeners).
 *
 * `subscribe()` starts listening when it is called, not when iteration starts, so nothing emitted in
 * between is missed; without `since` it yields only events emitted after the call. When its signal
 * aborts, the iteration ends as `break` would (the `for await` loop returns normally and queued events
 * are discarded): stopping is the expected way to leave, not a failure; check `signal.aborted` where
 * the difference matters.
 *
 * @param options The clock, ring buffer size and listener-error sink.
 * @returns A new bus; `lastSeq` is 0 until the first `emit`.
 * @throws {TypeError} When `options.clock` is not a clock.
 * @throws {RangeError} When `options.bufferSize` is not a positive integer.
 * @example Listen, emit, and replay what a late subscriber missed
 * ```ts
 * import { createEventBus } from "./event_bus.ts";
 * import { createVirtualClock } from "virtkit";
 * const bus = createEventBus({ clock: createVirtualClock() });
 * const seen: string[] = [];
 * const off = bus.on("pool:*", (event) => seen.push(`${event.seq} ${event.type} ${event.pool}`));
 * bus.emit("pool:started", { pool: "default" });
 * off();
 * bus.emit("pool:stopped", { pool: "default" });
 * if (seen.join() !== "1 pool:started default") throw new Error(seen.join());
 * const controller = new AbortController();
 * const types: string[] = [];
 * for await (const event of bus.subscribe({ since: 0, signal: controller.signal })) {
 *   types.push(event.type);
 *   if (event.seq === bus.lastSeq) controller.abort();
 * }
 * if (types.join() !== "pool:started,pool:stopped") throw new Error(types.join());
 * ```
 */
export function createEventBus(options: EventBusOptions): LocalEventBus {
  const { clock, bufferSize = 1024, onListenerError: onError = logListenerError } = assertOptions(options, "event bus");
  if (typeof clock?.now !== "function") throw new TypeError("Invalid event bus clock: expected a Clock");
  const size = assertCount(bufferSize, "event bus bufferSize", 1);
  assertFunction(onError, "event bus onListenerError");

  const ring: CoreEvent[] = []; // grows to `size`, then event `seq` lives at (seq - 1) % size
  const entries: Entry[] = [];
  const byType = new Map<string, Entry[]>(); // lists are never mutated, so a dispatch in progress keeps its own
  const pending: CoreEvent[] = [];
  let lastSeq = 0;
  let dispatching = false;

  const add = (entry: Entry): (() => void) => {
    entries.push(entry);
    byType.clear();
    return () => {
      if (!entry.active) return;
      entry.active = false;
      entries.splice(entries.indexOf(entry), 1);
      byType.clear();
    };
  };
  // Also validates `type`: only valid types ever get a cached list, so the hot path skips the check.
  const listFor = (type: string): Entry[] => {
    let list = byType.get(type);
    if (list !== undefined) return list;
    if (typeof type !== "string" || !/^[^:*]+:[^*]+$/.test(type)) {
      throw new TypeError(`Cannot emit event ${JSON.stringify(type)}: expected a type such as "job:completed"`);
    }
    byType.set(type, list = entries.filter((entry) => entry.matches(type)));
    return list;
  };
  const dispatch = (event: CoreEvent, list: Entry[]): void => {
    for (let i = 0; i < list.length; i++) {
      const entry = list[i]!;
      if (!entry.active) continue;
      try {
        entry.deliver(event);
      } catch (error) {
        try {
          onError(error, event);
        } catch (secondary) {
          logListenerError(secondary, event);
        }
      }
    }
  };
  const replay = (since: number, matches: Matcher, subscription: Subscription): void => {
    const oldest = Math.max(1, lastSeq - size + 1);
    if (since + 1 < oldest) {
      const time = ring[(oldest - 1) % size]!.time; // the oldest kept event's: times never go backwards
      subscription.addGap({ fromSeq: since + 1, toSeq: oldest - 1, missed: oldest - 1 - since, time });
    }
    for (let seq = Math.max(since + 1, oldest); seq <= lastSeq; seq++) {
      const event = ring[(seq - 1) % size]!;
      if (matches(event.type)) subscription.push(event);
    }
  };
  // Attaches `entry` until `end` runs: on abort, or when the caller settles it.
  const attach = (entry: Entry, signal: AbortSignal | undefined, onAbort: () => void): (() => void) => {
    const off = add(entry);
    signal?.addEventListener("abort", onAbort, { once: true });
    return () => {
      off();
      signal?.removeEventListener("abort", onAbort);
    };
  };

  return {
    get lastSeq() {
      return lastSeq;
    },
    get listenerCount() {
      return entries.length;
    },
    emit(type, payload) {
      const listeners = listFor(type);
      if (typeof payload !== "object" || payload === null) {
        throw new TypeError(`Cannot emit event "${type}": its payload must be an object`);
      }
      const time = clock.now();
      const seq = ++lastSeq;
      // Spreading the payload last is ~30x faster on V8 than spreading it first; the assignments
      // after it keep a payload from overriding the bus's own fields.
      const draft = { seq, time, type, ...payload };
      draft.seq = seq;
      draft.time = time;
      draft.type = type;
      const event = Object.freeze(draft) as CoreEvent<typeof type>;
      ring[(seq - 1) % size] = event;
      if (dispatching) {
        pending.push(event);
        return event;
      }
      dispatching = true;
      try {
        dispatch(event, listeners);
        for (let i = 0; i < pending.length; i++) dispatch(pending[i]!, listFor(pending[i]!.type));
      } finally {
        pending.length = 0;
        dispatching = false;
      }
      return event;
    },
    on(pattern, listener) {
      const matches = compilePattern(pattern);
      assertFunction(listener, "event listener");
      return add({ matches, deliver: listener as Deliver, active: true });
    },
    once(pattern, listener) {
      const matches = compilePattern(pattern);
      assertFunction(listener, "event listener");
      const off = add({
        matches,
        active: true,
        deliver(event) {
          off();
          (listener as Deliver)(event);
        },
      });
      return off;
    },
    next<P extends EventPattern>(
      pattern: P,
      options: { signal?: AbortSignal; filter?: (event: EventsMatching<P>) => boolean } = {},
    ): Promise<EventsMatching<P>> {
      return new Promise<EventsMatching<P>>((resolve, reject) => {
        const matches = compilePattern(pattern);
        const { signal, filter = () => true } = assertOptions(options, "next()");
        assertSignal(signal);
        assertFunction(filter, "next() filter");
        signal?.throwIfAborted();
        const deliver = (event: CoreEvent): void => {
          const typed = event as EventsMatching<P>;
          try {
            if (!filter(typed)) return;
          } catch (error) {
            detach();
            return reject(error);
          }
          detach();
          resolve(typed);
        };
        const detach = attach({ matches, deliver, active: true }, signal, () => {
          detach();
          reject(signal!.reason);
        });
      });
    },
    subscribe<P extends EventPattern>(
      options: SubscribeOptions<P> = {},
    ): EventSubscription<EventsMatching<P> | CoreEvent<"gap">> {
      const { types, since, signal, maxQueued = size } = assertOptions(options, "subscribe");
      const matches = types === undefined ? matchAll : compileTypes(types);
      if (since !== undefined && assertCount(since, "subscribe since", 0) > lastSeq) {
        throw new RangeError(`Cannot subscribe since seq ${since}: the newest event is seq ${lastSeq}`);
      }
      assertSignal(signal);
      const subscription = new Subscription(assertCount(maxQueued, "subscribe maxQueued", 1), since ?? lastSeq);
      if (signal?.aborted) {
        subscription.end();
      } else {
        if (since !== undefined) replay(since, matches, subscription);
        const entry = { matches, active: true, deliver: (event: CoreEvent) => subscription.push(event) };
        subscription.onEnd = attach(entry, signal, () => subscription.end());
      }
      return subscription as EventSubscription<never>; // its entry's matcher narrows what it can yield
    },
  };
}

const matchAll: Matcher = () => true;

function compilePattern(pattern: unknown): Matcher {
  if (typeof pattern !== "string") throw new TypeError(`Invalid event pattern: expected a string, got ${typeof pattern}`);
  if (pattern === "*") return matchAll;
  if (/^[^:*]+:[^*]+$/.test(pattern)) return (type) => type === pattern;
  if (/^[^:*]+:\*$/.test(pattern)) {
    const prefix = pattern.slice(0, -1);
    return (type) => type.startsWith(prefix);
  }
  throw new TypeError(`Invalid event pattern ${JSON.stringify(pattern)}: expected a type, "<prefix>:*" or "*"`);
}

function compileTypes(types: unknown): Matcher {
  if (!Array.isArray(types) || types.length === 0) {
    throw new TypeError("Invalid subscribe types: expected a non-empty array of patterns (omit it for all events)");
  }
  const matchers = types.map(compilePattern);
  return matchers.length === 1 ? matchers[0]! : (type) => matchers.some((matches) => matches(type));
}

function assertOptions<T>(value: T, what: string): T {
  if (typeof value !== "object" || value === null) throw new TypeError(`Invalid ${what} options: expected an object`);
  return value;
}

function assertCount(value: unknown, what: string, min: number): number {
  if (typeof value !== "number") throw new TypeError(`Invalid ${what}: expected a number, got ${typeof value}`);
  if (!Number.isSafeInteger(value) || value < min) {
    throw new RangeError(`Invalid ${what} ${value}: expected an integer of at least ${min}`);
  }
  return value;
}

function assertFunction(value: unknown, what: string): void {
  if (typeof value !== "function") throw new TypeError(`Invalid ${what}: expected a function, got ${typeof value}`);
}

function assertSignal(signal: unknown): void {
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new TypeError("Invalid signal: expected an AbortSignal");
  }
}

function logListenerError(error: unknown, event: CoreEvent): void {
  console.error(`An event listener for "${event.type}" (seq ${event.seq}) threw:`, error);
}
