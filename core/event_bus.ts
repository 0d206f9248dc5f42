/**
 * The typed event bus of a connection (design §5). Implementation: see `createEventBus`.
 *
 * @module
 */
import type { Clock } from "./clock.ts";
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

/** Options of {@linkcode createEventBus}. */
export interface EventBusOptions {
  /** Source of each event's `time`. */
  clock: Clock;
  /** How many recent events the ring buffer keeps for `subscribe({ since })` (default 1024). */
  bufferSize?: number;
  /**
   * Receives what a listener threw, with the event it was handling. The default writes it to
   * `console.error`: rethrowing later would crash Node, and swallowing it would hide bugs.
   */
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
  /**
   * Events waiting for the consumer; never above `maxQueued`. A pending `gap` is not counted: it is a
   * fixed-size summary that replaces however many events were dropped.
   */
  readonly queued: number;
}

/** The bus that {@linkcode createEventBus} returns: an {@linkcode EventBus} that can also be inspected. */
export interface LocalEventBus extends EventBus {
  /**
   * Like {@linkcode EventBus.subscribe}, typed with the concrete subscription.
   *
   * @param options Types, replay point, signal and queue bound.
   */
  subscribe<P extends EventPattern>(
    options?: SubscribeOptions<P>,
  ): EventSubscription<EventsMatching<P> | CoreEvent<"gap">>;
  /** Listeners, pending `next()` calls and live subscriptions attached now (for leak checks). */
  readonly listenerCount: number;
}

type Deliver = (event: CoreEvent) => void;
type Matcher = (type: string) => boolean;
interface Entry {
  readonly matches: Matcher;
  readonly deliver: Deliver;
  active: boolean;
}
interface Gap {
  fromSeq: number;
  toSeq: number;
  missed: number;
  time: number;
}

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
 * between is missed. When its signal aborts, the iteration ends as `break` would (the `for await` loop
 * returns normally, queued events are discarded): stopping is the expected way to leave, not a failure;
 * check `signal.aborted` where the difference matters.
 *
 * @param options The clock, ring buffer size and listener-error sink.
 * @returns A new bus; `lastSeq` is 0 until the first `emit`.
 * @throws {TypeError} When `options.clock` is not a clock.
 * @throws {RangeError} When `options.bufferSize` is not a positive integer.
 * @example Listen, emit, and replay what a late subscriber missed
 * ```ts
 * import { createEventBus } from "./event_bus.ts";
 * import { createVirtualClock } from "./clock.ts";
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
  if (typeof options !== "object" || options === null) throw new TypeError("Invalid event bus options: expected an object");
  const { clock, bufferSize = 1024, onListenerError = logListenerError } = options;
  if (typeof clock?.now !== "function") throw new TypeError("Invalid event bus clock: expected an object with now()");
  const size = assertCount(bufferSize, "event bus bufferSize", 1);
  if (typeof onListenerError !== "function") throw new TypeError("Invalid event bus onListenerError: expected a function");

  const ring: CoreEvent[] = []; // grows to `size`, then event `seq` lives at (seq - 1) % size
  const entries: Entry[] = [];
  const byType = new Map<string, Entry[]>(); // never mutated once built, so a dispatch in progress keeps its list
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
  const report = (error: unknown, event: CoreEvent): void => {
    try {
      onListenerError(error, event);
    } catch (secondary) {
      logListenerError(secondary, event);
    }
  };
  const dispatch = (event: CoreEvent): void => {
    let list = byType.get(event.type);
    if (list === undefined) byType.set(event.type, list = entries.filter((entry) => entry.matches(event.type)));
    for (let i = 0; i < list.length; i++) {
      const entry = list[i]!;
      if (!entry.active) continue;
      try {
        entry.deliver(event);
      } catch (error) {
        report(error, event);
      }
    }
  };
  const replay = (since: number, matches: Matcher, subscription: Subscription): void => {
    const oldest = Math.max(1, lastSeq - size + 1);
    if (since + 1 < oldest) {
      const missed = oldest - 1 - since;
      subscription.addGap({ fromSeq: since + 1, toSeq: oldest - 1, missed, time: ring[(oldest - 1) % size]!.time });
    }
    for (let seq = Math.max(since + 1, oldest); seq <= lastSeq; seq++) {
      const event = ring[(seq - 1) % size]!;
      if (matches(event.type)) subscription.push(event);
    }
  };

  return {
    get lastSeq() {
      return lastSeq;
    },
    get listenerCount() {
      return entries.length;
    },
    emit(type, payload) {
      if (typeof type !== "string" || !/^[^:*]+:[^*]+$/.test(type)) {
        throw new TypeError(`Cannot emit event ${JSON.stringify(type)}: expected a type such as "job:completed"`);
      }
      if (typeof payload !== "object" || payload === null) {
        throw new TypeError(`Cannot emit event "${type}": its payload must be an object`);
      }
      const time = clock.now();
      const event = Object.freeze({ ...payload, seq: ++lastSeq, time, type }) as CoreEvent<typeof type>;
      ring[(event.seq - 1) % size] = event;
      if (dispatching) {
        pending.push(event);
        return event;
      }
      dispatching = true;
      try {
        dispatch(event);
        for (let i = 0; i < pending.length; i++) dispatch(pending[i]!);
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
        const { signal, filter } = options;
        assertSignal(signal);
        if (filter !== undefined) assertFunction(filter, "next() filter");
        signal?.throwIfAborted();
        const settle = (): void => {
          off();
          signal?.removeEventListener("abort", onAbort);
        };
        const onAbort = (): void => {
          settle();
          reject(signal!.reason);
        };
        const off = add({
          matches,
          active: true,
          deliver(event) {
            const typed = event as EventsMatching<P>;
            try {
              if (filter !== undefined && !filter(typed)) return;
            } catch (error) {
              settle();
              return reject(error);
            }
            settle();
            resolve(typed);
          },
        });
        signal?.addEventListener("abort", onAbort, { once: true });
      });
    },
    subscribe<P extends EventPattern>(
      options: SubscribeOptions<P> = {},
    ): EventSubscription<EventsMatching<P> | CoreEvent<"gap">> {
      if (typeof options !== "object" || options === null) throw new TypeError("Invalid subscribe options: expected an object");
      const { types, since, signal, maxQueued = size } = options;
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
        const off = add({ matches, deliver: (event) => subscription.push(event), active: true });
        const onAbort = (): void => subscription.end();
        subscription.onEnd = () => {
          off();
          signal?.removeEventListener("abort", onAbort);
        };
        signal?.addEventListener("abort", onAbort, { once: true });
      }
      return subscription as EventSubscription<never>;
    },
  };
}

type Step = IteratorResult<CoreEvent, undefined>;
const DONE: Step = Object.freeze({ value: undefined, done: true });

/** A bounded queue between the bus and one consumer; overflow drops the oldest into one pending gap. */
class Subscription implements EventSubscription<CoreEvent> {
  /** Called once when the subscription ends, to detach it from the bus and the signal. */
  onEnd: () => void = () => {};
  #events: (CoreEvent | undefined)[] = [];
  #head = 0;
  #gap: Gap | undefined;
  #waiters: ((step: Step) => void)[] = [];
  #done = false;
  readonly #maxQueued: number;
  #floor: number; // newest seq taken so far: an event replayed while still pending delivery is not taken twice

  constructor(maxQueued: number, floor: number) {
    this.#maxQueued = maxQueued;
    this.#floor = floor;
  }

  get queued(): number {
    return this.#events.length - this.#head;
  }

  push(event: CoreEvent): void {
    if (this.#done || event.seq <= this.#floor) return;
    this.#floor = event.seq;
    // A waiting consumer means nothing is queued: hand the event over directly.
    if (this.#waiters.length > 0) return this.#waiters.shift()!({ value: event, done: false });
    if (this.queued >= this.#maxQueued) {
      const dropped = this.#shift();
      this.addGap({ fromSeq: dropped.seq, toSeq: dropped.seq, missed: 1, time: dropped.time });
    }
    this.#events.push(event);
  }

  /** Records lost events; they merge with a gap not yet read, which always sits before every queued event. */
  addGap(gap: Gap): void {
    if (this.#gap === undefined) {
      this.#gap = gap;
    } else {
      this.#gap.toSeq = gap.toSeq;
      this.#gap.missed += gap.missed;
      this.#gap.time = gap.time;
    }
  }

  next(): Promise<Step> {
    if (this.#done) return Promise.resolve(DONE);
    const gap = this.#gap;
    if (gap !== undefined) {
      this.#gap = undefined;
      const { fromSeq, toSeq, missed, time } = gap;
      const event = Object.freeze({ seq: toSeq, time, type: "gap" as const, missed, fromSeq, toSeq });
      return Promise.resolve({ value: event, done: false });
    }
    if (this.#head < this.#events.length) return Promise.resolve({ value: this.#shift(), done: false });
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  return(): Promise<Step> {
    this.end();
    return Promise.resolve(DONE);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  end(): void {
    if (this.#done) return;
    this.#done = true;
    this.#events = [];
    this.#head = 0;
    this.#gap = undefined;
    for (const resolve of this.#waiters.splice(0)) resolve(DONE);
    this.onEnd();
  }

  #shift(): CoreEvent {
    const event = this.#events[this.#head]!;
    this.#events[this.#head++] = undefined; // let the event go once the ring buffer drops it too
    if (this.#head === this.#events.length) {
      this.#events.length = 0;
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#events.length) {
      this.#events.splice(0, this.#head);
      this.#head = 0;
    }
    return event;
  }
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
  if (!Array.isArray(types)) throw new TypeError("Invalid subscribe types: expected an array of event patterns");
  if (types.length === 0) throw new TypeError("Invalid subscribe types: the list is empty (omit it for every event)");
  const matchers = types.map(compilePattern);
  return matchers.length === 1 ? matchers[0]! : (type) => matchers.some((matches) => matches(type));
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
