/**
 * The bounded queue behind one `subscribe()` of the event bus (private to core/event_bus.ts).
 *
 * @module
 */
import type { EventSubscription } from "./event_bus.ts";
import type { CoreEvent } from "./events.ts";

/** Events lost to one subscriber, reported as one `gap` event. */
export type Gap = { fromSeq: number; toSeq: number; missed: number; time: number };

type Step = IteratorResult<CoreEvent, undefined>;
const DONE: Step = Object.freeze({ value: undefined, done: true });

/** A bounded queue between the bus and one consumer; overflow drops the oldest into one pending gap. */
export class Subscription implements EventSubscription<CoreEvent> {
  /** Detaches from the bus and the signal; called once, when the subscription ends. */
  onEnd: () => void = () => {};
  #events: (CoreEvent | undefined)[] = [];
  #head = 0;
  #gap: Gap | undefined; // always older than every queued event: it is read first
  #waiters: ((step: Step) => void)[] = [];
  #done = false;
  readonly #maxQueued: number;
  #floor: number; // newest seq taken: an event replayed while still pending delivery is not taken twice

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

  /** Records lost events, merged into the gap not yet read if there is one. */
  addGap(gap: Gap): void {
    const old = this.#gap;
    this.#gap = old === undefined ? gap : { ...old, toSeq: gap.toSeq, missed: old.missed + gap.missed, time: gap.time };
  }

  next(): Promise<Step> {
    if (this.#done) return Promise.resolve(DONE);
    const gap = this.#gap;
    if (gap !== undefined) {
      this.#gap = undefined;
      const event = Object.freeze({ seq: gap.toSeq, type: "gap" as const, ...gap });
      return Promise.resolve({ value: event, done: false });
    }
    if (this.queued > 0) return Promise.resolve({ value: this.#shift(), done: false });
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
      this.#events.length = this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#events.length) {
      this.#events.splice(0, this.#head); // keeps the array within twice maxQueued
      this.#head = 0;
    }
    return event;
  }
}

