import { describe, expect, it } from "vitest";
import { createVirtualClock } from "../../core/clock.ts";
import { createEventBus, type EventBus, type EventSubscription } from "../../core/event_bus.ts";
import type { CoreEvent } from "../../core/events.ts";
import type { JobInfo } from "../../core/job.ts";

const job = (id: string): JobInfo => ({
  id,
  type: "pull",
  state: "completed",
  target: { domain: "web1", disk: "vda" },
  cur: 1,
  end: 1,
  bandwidth: 0,
  bytesPerSecond: 0,
  createdAt: 0,
} as unknown as JobInfo);

function newBus(bufferSize?: number, errors: unknown[] = []) {
  return createEventBus({ clock: createVirtualClock(), bufferSize, onListenerError: (error) => errors.push(error) });
}

/** Emits pool:refreshed n times, naming each pool by its index. */
function emitMany(bus: EventBus, n: number): void {
  for (let i = 0; i < n; i++) bus.emit("pool:refreshed", { pool: `p${i}` });
}

async function take<E extends CoreEvent>(subscription: AsyncIterator<E>, n: number): Promise<E[]> {
  const out: E[] = [];
  for (let i = 0; i < n; i++) {
    const step = await subscription.next();
    if (step.done) break;
    out.push(step.value);
  }
  return out;
}

/** Lets other tasks run until `done()` holds, failing after a bounded number of turns. */
async function until(done: () => boolean): Promise<void> {
  for (let turn = 0; !done(); turn++) {
    if (turn > 100) throw new Error("condition not reached");
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
}

// Compile-time checks: this function never runs, but the file stops type-checking if the typing breaks.
export function typeChecks(bus: EventBus): void {
  bus.on("job:completed", (e) => e.job.id satisfies string);
  bus.on("job:failed", (e) => e.error satisfies string);
  bus.on("job:*", (e) => {
    e.job.id satisfies string;
    e.type satisfies `job:${string}`;
  });
  bus.on("volume:resized", (e) => e.capacityBytes satisfies number);
  bus.on("*", (e) => e.seq satisfies number);
  // @ts-expect-error domain events carry no job
  bus.on("domain:*", (e) => e.job);
  // @ts-expect-error only job:failed carries an error
  bus.on("job:completed", (e) => e.error);
  // @ts-expect-error the payload must fit the type
  bus.emit("pool:started", { domain: "x" });
  // @ts-expect-error gap events come only from subscribe()
  bus.emit("gap", { missed: 1, fromSeq: 1, toSeq: 1 });
  void bus.next("job:ready", { filter: (e) => e.job.id === "job-1" }).then((e) => e.job satisfies JobInfo);
  void (async () => {
    for await (const e of bus.subscribe({ types: ["job:completed", "domain:*"] })) {
      if (e.type === "job:completed") e.job.id satisfies string;
      else if (e.type === "gap") e.missed satisfies number;
      else e.domain satisfies string;
    }
  });
}

describe("createEventBus", () => {
  it("emit() assigns seq from 1, monotonic, and time from the clock", async () => {
    const clock = createVirtualClock(500);
    const bus = createEventBus({ clock });
    expect(bus.lastSeq).toBe(0);
    const first = bus.emit("domain:started", { domain: "web1" });
    await clock.advance(250);
    const second = bus.emit("domain:stopped", { domain: "web1", reason: "shutdown" });
    expect(first).toEqual({ seq: 1, time: 500, type: "domain:started", domain: "web1" });
    expect(second).toMatchObject({ seq: 2, time: 750, type: "domain:stopped", reason: "shutdown" });
    expect(bus.lastSeq).toBe(2);
    expect(Object.isFrozen(first)).toBe(true);
  });

  it("emit() does not let the payload override seq, time or type", () => {
    const bus = newBus();
    const sneaky = { pool: "a", seq: 99, time: -1, type: "job:completed" } as unknown as { pool: string };
    expect(bus.emit("pool:started", sneaky)).toMatchObject({ seq: 1, time: 0, type: "pool:started" });
  });

  it("on() matches exact types, prefix wildcards and *", () => {
    const bus = newBus();
    const seen: string[] = [];
    bus.on("job:completed", (e) => seen.push(`exact ${e.seq}`));
    bus.on("job:*", (e) => seen.push(`job ${e.seq}`));
    bus.on("*", (e) => seen.push(`all ${e.seq}`));
    bus.on("domain:*", (e) => seen.push(`domain ${e.seq}`));
    bus.emit("job:completed", { job: job("job-1") });
    bus.emit("job:progress", { job: job("job-1") });
    bus.emit("volume:created", { pool: "p", volume: "v" });
    bus.emit("jobs:done" as never, {} as never); // a wildcard matches its whole prefix, not a longer word
    expect(seen).toEqual(["exact 1", "job 1", "all 1", "job 2", "all 2", "all 3", "all 4"]);
  });

  it("on() delivers in registration order across patterns", () => {
    const bus = newBus();
    const seen: string[] = [];
    bus.on("*", () => seen.push("a"));
    bus.on("pool:started", () => seen.push("b"));
    bus.on("pool:*", () => seen.push("c"));
    bus.emit("pool:started", { pool: "p" });
    expect(seen).toEqual(["a", "b", "c"]);
  });

  it("on() returns an idempotent unsubscribe", () => {
    const bus = newBus();
    let calls = 0;
    const off = bus.on("pool:*", () => calls++);
    const other = bus.on("pool:*", () => {});
    bus.emit("pool:started", { pool: "p" });
    off();
    off();
    bus.emit("pool:started", { pool: "p" });
    expect(calls).toBe(1);
    expect(bus.listenerCount).toBe(1);
    other();
    expect(bus.listenerCount).toBe(0);
  });

  it("a throwing listener does not stop the others, and its error goes to onListenerError", () => {
    const failures: [unknown, CoreEvent][] = [];
    const bus = createEventBus({ clock: createVirtualClock(), onListenerError: (e, ev) => failures.push([e, ev]) });
    const seen: string[] = [];
    bus.on("*", () => seen.push("first"));
    bus.on("*", () => {
      throw new Error("boom");
    });
    bus.on("*", () => seen.push("third"));
    const event = bus.emit("pool:started", { pool: "p" });
    expect(seen).toEqual(["first", "third"]);
    expect(failures).toHaveLength(1);
    expect((failures[0]![0] as Error).message).toBe("boom");
    expect(failures[0]![1]).toBe(event);
  });

  it("a throwing onListenerError does not escape emit()", () => {
    const bus = createEventBus({
      clock: createVirtualClock(),
      onListenerError: () => {
        throw new Error("sink broke");
      },
    });
    const original = console.error;
    const logged: unknown[][] = [];
    console.error = (...args: unknown[]) => void logged.push(args);
    try {
      let reached = false;
      bus.on("*", () => {
        throw new Error("boom");
      });
      bus.on("*", () => (reached = true));
      expect(() => bus.emit("pool:started", { pool: "p" })).not.toThrow();
      expect(reached).toBe(true);
      expect(logged).toHaveLength(1);
      expect(String(logged[0]![0])).toContain('"pool:started"');
    } finally {
      console.error = original;
    }
  });

  it("a listener that unsubscribes itself during dispatch does not disturb the others", () => {
    const bus = newBus();
    const seen: string[] = [];
    bus.on("*", () => seen.push("a"));
    const off = bus.on("*", () => {
      seen.push("b");
      off();
    });
    bus.on("*", () => seen.push("c"));
    bus.emit("pool:started", { pool: "p" });
    bus.emit("pool:stopped", { pool: "p" });
    expect(seen).toEqual(["a", "b", "c", "a", "c"]);
  });

  it("a listener added during dispatch hears the next event, one removed is not called", () => {
    const bus = newBus();
    const seen: string[] = [];
    let offLater = () => {};
    bus.on("*", (e) => {
      if (e.seq === 1) {
        bus.on("*", (e2) => seen.push(`new ${e2.seq}`));
        offLater();
      }
    });
    offLater = bus.on("*", (e) => seen.push(`later ${e.seq}`));
    bus.emit("pool:started", { pool: "p" });
    bus.emit("pool:stopped", { pool: "p" });
    expect(seen).toEqual(["new 2"]);
  });

  it("an emit from inside a listener is delivered after the current event, in seq order", () => {
    const bus = newBus();
    const seen: string[] = [];
    bus.on("pool:started", () => {
      const nested = bus.emit("pool:refreshed", { pool: "p" });
      expect(nested.seq).toBe(2);
    });
    bus.on("*", (e) => seen.push(`${e.seq}`));
    bus.emit("pool:started", { pool: "p" });
    expect(seen).toEqual(["1", "2"]);
  });

  it("once() fires for the next match only", () => {
    const bus = newBus();
    const seen: number[] = [];
    bus.once("pool:*", (e) => seen.push(e.seq));
    bus.emit("domain:started", { domain: "d" });
    bus.emit("pool:started", { pool: "p" });
    bus.emit("pool:stopped", { pool: "p" });
    expect(seen).toEqual([2]);
    expect(bus.listenerCount).toBe(0);
  });

  it("next() resolves with the next event passing the filter", async () => {
    const bus = newBus();
    const pending = bus.next("job:*", { filter: (e) => e.job.id === "job-2" });
    bus.emit("job:completed", { job: job("job-1") });
    bus.emit("domain:started", { domain: "d" });
    bus.emit("job:completed", { job: job("job-2") });
    const event = await pending;
    expect(event.seq).toBe(3);
    expect(event.job.id).toBe("job-2");
    expect(bus.listenerCount).toBe(0);
  });

  it("next() rejects with the signal's reason and removes its listener", async () => {
    const bus = newBus();
    const controller = new AbortController();
    const pending = bus.next("pool:*", { signal: controller.signal });
    expect(bus.listenerCount).toBe(1);
    const reason = new Error("stop waiting");
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
    expect(bus.listenerCount).toBe(0);
    await expect(bus.next("pool:*", { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    expect(bus.listenerCount).toBe(0);
  });

  it("next() rejects with what the filter threw", async () => {
    const bus = newBus();
    const failure = new Error("bad filter");
    const pending = bus.next("*", {
      filter: () => {
        throw failure;
      },
    });
    bus.emit("pool:started", { pool: "p" });
    await expect(pending).rejects.toBe(failure);
    expect(bus.listenerCount).toBe(0);
  });
});

describe("createEventBus subscribe()", () => {
  it("replays buffered events after since, then continues live", async () => {
    const bus = newBus(8);
    emitMany(bus, 5);
    const sub = bus.subscribe({ since: 2 });
    expect((await take(sub, 3)).map((e) => e.seq)).toEqual([3, 4, 5]);
    emitMany(bus, 2);
    expect((await take(sub, 2)).map((e) => e.seq)).toEqual([6, 7]);
    await sub.return();
  });

  it("replays only the requested types", async () => {
    const bus = newBus();
    bus.emit("pool:started", { pool: "p" });
    bus.emit("domain:started", { domain: "d" });
    bus.emit("pool:stopped", { pool: "p" });
    const sub = bus.subscribe({ since: 0, types: ["pool:*"] });
    bus.emit("domain:stopped", { domain: "d" });
    bus.emit("pool:deleted", { pool: "p" });
    expect((await take(sub, 3)).map((e) => e.type)).toEqual(["pool:started", "pool:stopped", "pool:deleted"]);
    expect(sub.queued).toBe(0);
    await sub.return();
  });

  it("yields one gap first when the buffer no longer reaches back to since", async () => {
    const bus = newBus(4);
    emitMany(bus, 10); // the buffer keeps 7..10
    const sub = bus.subscribe({ since: 2 });
    const [gap, ...rest] = await take(sub, 5);
    expect(gap).toMatchObject({ type: "gap", missed: 4, fromSeq: 3, toSeq: 6, seq: 6 });
    expect(rest.map((e) => e.seq)).toEqual([7, 8, 9, 10]);
    await sub.return();
  });

  it("has no gap when since is just before the oldest buffered event", async () => {
    const bus = newBus(4);
    emitMany(bus, 10);
    const sub = bus.subscribe({ since: 6 });
    expect((await take(sub, 4)).map((e) => e.type)).toEqual(Array(4).fill("pool:refreshed"));
    await sub.return();
  });

  it("loses and duplicates nothing between replay and live", async () => {
    const bus = newBus(64);
    emitMany(bus, 20);
    const sub = bus.subscribe({ since: 0, maxQueued: 1000 });
    // Emits while the replay is being read, including from a listener mid-dispatch.
    bus.on("pool:refreshed", (e) => {
      if (e.seq === 25) bus.emit("pool:started", { pool: "nested" });
    });
    const seqs: number[] = [];
    for await (const event of sub) {
      seqs.push(event.seq);
      if (event.seq % 3 === 0 && bus.lastSeq < 40) emitMany(bus, 2);
      if (seqs.length === 1) {
        const late = bus.subscribe({ since: 0 });
        expect(late.queued).toBe(bus.lastSeq);
        await late.return();
      }
      if (event.seq === bus.lastSeq) break;
    }
    expect(seqs).toEqual(Array.from({ length: bus.lastSeq }, (_, i) => i + 1));
  });

  it("a subscription made inside a listener takes each event once", async () => {
    const bus = newBus();
    let replaying: EventSubscription<CoreEvent> | undefined;
    let live: EventSubscription<CoreEvent> | undefined;
    bus.on("pool:started", () => void bus.emit("pool:stopped", { pool: "p" })); // pending while the next listener runs
    bus.on("pool:started", () => {
      replaying = bus.subscribe({ since: 0 }); // replays 1 and the pending 2
      live = bus.subscribe(); // starts after 2, which was emitted before it
      bus.emit("pool:built", { pool: "p" });
    });
    bus.emit("pool:started", { pool: "p" });
    bus.emit("pool:deleted", { pool: "p" });
    expect((await take(replaying!, 4)).map((e) => e.seq)).toEqual([1, 2, 3, 4]);
    expect(replaying!.queued).toBe(0);
    expect((await take(live!, 2)).map((e) => e.seq)).toEqual([3, 4]);
    expect(live!.queued).toBe(0);
    await replaying!.return();
    await live!.return();
  });

  it("a slow consumer gets one gap in place of what overflowed, and the queue stays bounded", async () => {
    const bus = newBus(16);
    const sub = bus.subscribe({ maxQueued: 5 });
    let highest = 0;
    for (let i = 0; i < 1000; i++) {
      emitMany(bus, 1);
      highest = Math.max(highest, sub.queued);
    }
    expect(highest).toBe(5);
    const events = await take(sub, 6);
    expect(events[0]).toEqual({ type: "gap", fromSeq: 1, toSeq: 995, missed: 995, seq: 995, time: 0 });
    expect(events.slice(1).map((e) => e.seq)).toEqual([996, 997, 998, 999, 1000]);
    expect(sub.queued).toBe(0);
    // Once the gap has been read, the next overflow makes a new one.
    emitMany(bus, 7);
    const next = await take(sub, 6);
    expect(next[0]).toMatchObject({ type: "gap", fromSeq: 1001, toSeq: 1002, missed: 2 });
    expect(next.slice(1).map((e) => e.seq)).toEqual([1003, 1004, 1005, 1006, 1007]);
    await sub.return();
  });

  it("maxQueued 1 keeps only the newest event behind a gap", async () => {
    const bus = newBus();
    const sub = bus.subscribe({ maxQueued: 1 });
    emitMany(bus, 3);
    expect(sub.queued).toBe(1);
    const events = await take(sub, 2);
    expect(events.map((e) => [e.type, e.seq])).toEqual([["gap", 2], ["pool:refreshed", 3]]);
    await sub.return();
  });

  it("merges the replay gap with an overflow gap", async () => {
    const bus = newBus(8);
    emitMany(bus, 20); // buffer 13..20
    const sub = bus.subscribe({ since: 0, maxQueued: 3 });
    expect(sub.queued).toBe(3);
    const events = await take(sub, 4);
    expect(events[0]).toMatchObject({ type: "gap", fromSeq: 1, toSeq: 17, missed: 17 });
    expect(events.slice(1).map((e) => e.seq)).toEqual([18, 19, 20]);
    await sub.return();
  });

  it("ends the iteration cleanly when the signal aborts, and detaches", async () => {
    const bus = newBus();
    const controller = new AbortController();
    const seen: number[] = [];
    const loop = (async () => {
      for await (const event of bus.subscribe({ signal: controller.signal })) seen.push(event.seq);
      return "ended";
    })();
    expect(bus.listenerCount).toBe(1);
    emitMany(bus, 2);
    await until(() => seen.length === 2);
    controller.abort();
    await expect(loop).resolves.toBe("ended");
    expect(seen).toEqual([1, 2]);
    expect(bus.listenerCount).toBe(0);
  });

  it("an already aborted signal gives an empty subscription", async () => {
    const bus = newBus();
    emitMany(bus, 3);
    const sub = bus.subscribe({ since: 0, signal: AbortSignal.abort() });
    expect(bus.listenerCount).toBe(0);
    expect(await sub.next()).toEqual({ value: undefined, done: true });
  });

  it("break unsubscribes", async () => {
    const bus = newBus();
    emitMany(bus, 5);
    for await (const event of bus.subscribe({ since: 0 })) {
      expect(bus.listenerCount).toBe(1);
      if (event.seq === 3) break;
    }
    expect(bus.listenerCount).toBe(0);
  });

  it("return() resolves a waiting next() with done", async () => {
    const bus = newBus();
    const sub = bus.subscribe();
    const waiting = sub.next();
    await sub.return();
    expect(await waiting).toEqual({ value: undefined, done: true });
    emitMany(bus, 1);
    expect(await sub.next()).toEqual({ value: undefined, done: true });
  });
});

describe("createEventBus bad input", () => {
  it.each([0, -1, Number.NaN, 1.5, Infinity])("bufferSize %s is a RangeError", (bufferSize) => {
    expect(() => createEventBus({ clock: createVirtualClock(), bufferSize })).toThrow(RangeError);
  });

  it("a missing clock is a TypeError", () => {
    expect(() => createEventBus({} as never)).toThrow(TypeError);
  });

  it("a pattern that is not a string is a TypeError", async () => {
    const bus = newBus();
    expect(() => bus.on(42 as never, () => {})).toThrow(TypeError);
    expect(() => bus.once(null as never, () => {})).toThrow(TypeError);
    expect(() => bus.subscribe({ types: [{} as never] })).toThrow(TypeError);
    await expect(bus.next(undefined as never)).rejects.toThrow(TypeError);
    expect(bus.listenerCount).toBe(0);
  });

  it.each(["", "job", "job*", "*:*", ":*", "job:*x", "job:"])("pattern %j is a TypeError", (pattern) => {
    expect(() => newBus().on(pattern as never, () => {})).toThrow(/Invalid event pattern/);
  });

  it("a listener that is not a function is a TypeError", () => {
    expect(() => newBus().on("*", "nope" as never)).toThrow(TypeError);
  });

  it("subscribe() rejects bad since, maxQueued and types", () => {
    const bus = newBus();
    emitMany(bus, 3);
    expect(() => bus.subscribe({ since: -1 })).toThrow(RangeError);
    expect(() => bus.subscribe({ since: Number.NaN })).toThrow(RangeError);
    expect(() => bus.subscribe({ since: "1" as never })).toThrow(TypeError);
    expect(() => bus.subscribe({ since: 4 })).toThrow(/newest event is seq 3/);
    expect(() => bus.subscribe({ maxQueued: 0 })).toThrow(RangeError);
    expect(() => bus.subscribe({ types: [] })).toThrow(TypeError);
    expect(() => bus.subscribe({ signal: {} as never })).toThrow(TypeError);
    expect(bus.listenerCount).toBe(0);
  });

  it("emit() rejects gap, malformed types and non-object payloads", () => {
    const bus = newBus();
    expect(() => bus.emit("gap" as never, { missed: 1 } as never)).toThrow(TypeError);
    expect(() => bus.emit("job:*" as never, {} as never)).toThrow(TypeError);
    expect(() => bus.emit("pool:started", null as never)).toThrow(TypeError);
    expect(bus.lastSeq).toBe(0);
  });
});
