import { describe, expect, it } from "vitest";
import { RateLimiter } from "../../../core/copy/rate_limiter.ts";
import { type Clock, createVirtualClock, type VirtualClock } from "../../../core/clock.ts";
import { GiB, MiB } from "../../../core/units.ts";

/** Takes `total` bytes in `chunk` pieces, counting what has passed. */
function pump(limiter: RateLimiter, total: number, chunk: number, signal?: AbortSignal) {
  const state = { passed: 0, done: false, finishedAt: -1, error: undefined as unknown };
  const run = async (clock: VirtualClock) => {
    try {
      while (state.passed < total) {
        const n = Math.min(chunk, total - state.passed);
        await limiter.take(n, signal);
        state.passed += n;
      }
      state.done = true;
      state.finishedAt = clock.now();
    } catch (error) {
      state.error = error;
    }
  };
  return { state, run };
}

describe("RateLimiter", () => {
  it("passes 1 GiB in 1 MiB pieces at 100 MiB/s in exactly 10240 ms, proportionally", async () => {
    const clock = createVirtualClock();
    const limiter = new RateLimiter({ bytesPerSecond: MiB(100), clock });
    const { state, run } = pump(limiter, GiB(1), MiB(1));
    const running = run(clock);
    await clock.advance(1000);
    expect(state.passed).toBe(MiB(100));
    await clock.advance(4120);
    expect(state.passed).toBe(MiB(512));
    await clock.advance(5119);
    expect(state.done).toBe(false);
    await clock.advance(1);
    await running;
    expect(state.done).toBe(true);
    expect(state.finishedAt).toBe(10240);
  });

  it("makes one large take wait for its whole slot", async () => {
    const clock = createVirtualClock();
    const limiter = new RateLimiter({ bytesPerSecond: MiB(100), clock });
    let done = false;
    const taken = limiter.take(MiB(200)).then(() => { done = true; });
    await clock.advance(1999);
    expect(done).toBe(false);
    await clock.advance(1);
    await taken;
    expect(done).toBe(true);
  });

  it("does not burst after idle", async () => {
    const clock = createVirtualClock();
    const limiter = new RateLimiter({ bytesPerSecond: MiB(100), clock });
    await Promise.all([limiter.take(MiB(1)), clock.advance(10)]);
    await clock.advance(1000);
    let doneAt = -1;
    const taken = limiter.take(MiB(10)).then(() => { doneAt = clock.now(); });
    await clock.advance(99);
    expect(doneAt).toBe(-1);
    await clock.advance(1);
    await taken;
    expect(doneAt).toBe(1110);
  });

  it("forgives a late timer but not the consumer's own idle time", async () => {
    // A clock whose timers fire only when the test says, as late as it likes.
    let now = 0;
    const sleeps: Array<{ ms: number; resolve: () => void }> = [];
    const clock: Clock = {
      now: () => now,
      sleep: (ms) => new Promise<void>((resolve) => { sleeps.push({ ms, resolve }); }),
    };
    const limiter = new RateLimiter({ bytesPerSecond: MiB(100), clock });
    const first = limiter.take(MiB(10));
    expect(sleeps.at(-1)!.ms).toBe(100);
    now = 130; // the timer fires 30 ms late
    sleeps.splice(0).forEach((s) => s.resolve());
    await first;
    const second = limiter.take(MiB(10)); // the schedule goes on from 100, not from 130
    expect(sleeps.at(-1)!.ms).toBe(70);
    now = 200;
    sleeps.splice(0).forEach((s) => s.resolve());
    await second;
    now = 320; // the consumer itself idled 120 ms (> graceMs, 100 by default): no catching up
    const third = limiter.take(MiB(10));
    expect(sleeps.at(-1)!.ms).toBe(100);
    now = 420;
    sleeps.splice(0).forEach((s) => s.resolve());
    await third;
  });

  it("applies setRate at once to a running transfer", async () => {
    const clock = createVirtualClock();
    const limiter = new RateLimiter({ bytesPerSecond: MiB(100), clock });
    const { state, run } = pump(limiter, GiB(1), MiB(4));
    const running = run(clock);
    await clock.advance(2000);
    expect(state.passed).toBe(MiB(200));
    limiter.setRate(MiB(200));
    expect(limiter.bytesPerSecond).toBe(MiB(200));
    await clock.advance(1000);
    expect(state.passed).toBe(MiB(400));
    await clock.runUntilIdle();
    await running;
    expect(state.finishedAt).toBe(2000 + (1024 - 200) * 5);
  });

  it("reschedules a waiting take for what its slot had left", async () => {
    const clock = createVirtualClock();
    const limiter = new RateLimiter({ bytesPerSecond: MiB(100), clock });
    let doneAt = -1;
    const taken = limiter.take(MiB(100)).then(() => { doneAt = clock.now(); });
    await clock.advance(500);
    limiter.setRate(MiB(50)); // 50 MiB left, now at 50 MiB/s: one more second
    await clock.advance(999);
    expect(doneAt).toBe(-1);
    await clock.advance(1);
    await taken;
    expect(doneAt).toBe(1500);
  });

  it("releases waiting takes at once when set to unlimited", async () => {
    const clock = createVirtualClock();
    const limiter = new RateLimiter({ bytesPerSecond: MiB(1), clock });
    let done = 0;
    const a = limiter.take(MiB(10)).then(() => done++);
    const b = limiter.take(MiB(10)).then(() => done++);
    await clock.advance(100);
    expect(done).toBe(0);
    limiter.setRate(0);
    await Promise.all([a, b]);
    expect(done).toBe(2);
    expect(clock.now()).toBe(100);
    expect(clock.pendingTimers).toBe(0);
  });

  it("costs no timer on an unlimited chain", async () => {
    const clock = createVirtualClock();
    const limiter = new RateLimiter({ clock }).child().child(0);
    const taken = limiter.take(GiB(100));
    expect(clock.pendingTimers).toBe(0);
    await taken;
    expect(clock.now()).toBe(0);
  });

  it("lets a capped child under a loose parent run at the child's cap", async () => {
    const clock = createVirtualClock();
    const parent = new RateLimiter({ bytesPerSecond: MiB(1000), clock });
    const { state, run } = pump(parent.child(MiB(100)), GiB(1), MiB(8));
    const running = run(clock);
    await clock.runUntilIdle();
    await running;
    expect(state.finishedAt).toBe(10240);
  });

  it("holds an uncapped child to its parent's cap", async () => {
    const clock = createVirtualClock();
    const parent = new RateLimiter({ bytesPerSecond: MiB(50), clock });
    const child = parent.child(MiB(100));
    expect(child.parent).toBe(parent);
    const { state, run } = pump(child, MiB(100), MiB(1));
    const running = run(clock);
    await clock.runUntilIdle();
    await running;
    expect(state.finishedAt).toBe(2000);
  });

  it("shares a parent's budget fairly between children", async () => {
    const clock = createVirtualClock();
    const parent = new RateLimiter({ bytesPerSecond: MiB(100), clock });
    const a = pump(parent.child(), GiB(1), MiB(1));
    const b = pump(parent.child(), GiB(1), MiB(1));
    const runs = [a.run(clock), b.run(clock)];
    await clock.advance(2000);
    expect(a.state.passed + b.state.passed).toBe(MiB(200));
    expect(Math.abs(a.state.passed - b.state.passed)).toBeLessThanOrEqual(MiB(1));
    parent.setRate(0);
    await Promise.all(runs);
  });

  it("gives a sibling what a slower capped child leaves of the parent's budget", async () => {
    const clock = createVirtualClock();
    const parent = new RateLimiter({ bytesPerSecond: MiB(100), clock });
    const slowChild = parent.child(MiB(10));
    const slow = pump(slowChild, GiB(1), MiB(1));
    const fast = pump(parent.child(), GiB(1), MiB(1));
    const runs = [slow.run(clock), fast.run(clock)];
    await clock.advance(1000);
    expect(slow.state.passed).toBe(MiB(10));
    expect(fast.state.passed).toBeGreaterThanOrEqual(MiB(89));
    expect(slow.state.passed + fast.state.passed).toBeLessThanOrEqual(MiB(100));
    parent.setRate(0);
    slowChild.setRate(0);
    await Promise.all(runs);
  });

  it("rejects an aborted take with the signal's reason and returns its reservation", async () => {
    const clock = createVirtualClock();
    const limiter = new RateLimiter({ bytesPerSecond: MiB(100), clock });
    const ac = new AbortController();
    const first = limiter.take(MiB(100));
    const aborted = limiter.take(MiB(100), ac.signal);
    let lastAt = -1;
    const last = limiter.take(MiB(10)).then(() => { lastAt = clock.now(); });
    await clock.advance(100);
    const reason = new Error("stop");
    ac.abort(reason);
    await expect(aborted).rejects.toBe(reason);
    await clock.runUntilIdle();
    await Promise.all([first, last]);
    expect(lastAt).toBe(1100);
  });

  it("gives back the unused part of an aborted slot in progress", async () => {
    const clock = createVirtualClock();
    const limiter = new RateLimiter({ bytesPerSecond: MiB(100), clock });
    const ac = new AbortController();
    const aborted = limiter.take(MiB(100), ac.signal);
    await clock.advance(300);
    ac.abort();
    await expect(aborted).rejects.toBe(ac.signal.reason);
    let doneAt = -1;
    const next = limiter.take(MiB(1)).then(() => { doneAt = clock.now(); });
    await clock.runUntilIdle();
    await next;
    expect(doneAt).toBe(310);
  });

  it("rejects at once when the signal is already aborted", async () => {
    const clock = createVirtualClock();
    const limiter = new RateLimiter({ bytesPerSecond: MiB(1), clock });
    const reason = new Error("already");
    await expect(limiter.take(1, AbortSignal.abort(reason))).rejects.toBe(reason);
    expect(clock.pendingTimers).toBe(0);
  });

  it("stops a pumping consumer on abort mid-way", async () => {
    const clock = createVirtualClock();
    const limiter = new RateLimiter({ bytesPerSecond: MiB(100), clock });
    const ac = new AbortController();
    const { state, run } = pump(limiter, GiB(1), MiB(1), ac.signal);
    const running = run(clock);
    await clock.advance(1005);
    ac.abort();
    await running;
    expect(state.error).toBe(ac.signal.reason);
    expect(state.passed).toBe(MiB(100));
    expect(clock.pendingTimers).toBe(0);
  });

  it("rejects bad arguments", () => {
    const clock = createVirtualClock();
    expect(() => new RateLimiter({ bytesPerSecond: -1, clock })).toThrow(RangeError);
    expect(() => new RateLimiter({ bytesPerSecond: 1.5, clock })).toThrow(RangeError);
    expect(() => new RateLimiter({ bytesPerSecond: Number.NaN, clock })).toThrow(RangeError);
    expect(() => new RateLimiter({ bytesPerSecond: "1" as unknown as number, clock })).toThrow(TypeError);
    expect(() => new RateLimiter({} as unknown as { clock: VirtualClock })).toThrow(TypeError);
    expect(() => new RateLimiter({ clock, parent: {} as RateLimiter })).toThrow(TypeError);
    expect(() => new RateLimiter({ clock, graceMs: -1 })).toThrow(RangeError);
    const limiter = new RateLimiter({ clock });
    expect(() => limiter.setRate(-5)).toThrow(RangeError);
    expect(() => limiter.take(-1)).toThrow(RangeError);
    expect(() => limiter.take(0.5)).toThrow(RangeError);
    expect(() => limiter.child(-1)).toThrow(RangeError);
  });
});
