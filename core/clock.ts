/**
 * Time as virtkit sees it. Jobs, rate limiters and progress throttling read time and wait only through a
 * {@linkcode Clock}, so tests can swap the real one for a {@linkcode VirtualClock} and run a 100-second
 * pull in milliseconds.
 *
 * @module
 */
import { pendingYields, type yieldToEventLoop } from "./event_loop.ts";

/** A source of time and of timed waits. */
export interface Clock {
  /** Milliseconds since an arbitrary origin; never goes backwards. */
  now(): number;
  /**
   * Resolves after `ms` milliseconds of this clock's time.
   *
   * @param ms How long to wait; 0 or less still yields once.
   * @param signal Aborting rejects the wait with the signal's reason.
   */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** A clock that tests move forward by hand. */
export interface VirtualClock extends Clock {
  /**
   * Moves time forward by `ms`, firing every timer due on the way in order, and lets the work each
   * timer wakes settle before moving on.
   *
   * @param ms How far to move.
   */
  advance(ms: number): Promise<void>;
  /**
   * Fires timers one after another until none is left, or until `limitMs` of virtual time has passed.
   *
   * @param limitMs Safety limit on the virtual time to run (default one day).
   * @returns The virtual time that passed.
   */
  runUntilIdle(limitMs?: number): Promise<number>;
  /** How many timers are waiting. */
  readonly pendingTimers: number;
}

/**
 * The real clock: `performance.now()` and `setTimeout`.
 *
 * @returns A clock on wall time.
 * @example
 * ```ts
 * import { createRealClock } from "virtkit";
 * const clock = createRealClock();
 * const before = clock.now();
 * await clock.sleep(1);
 * if (clock.now() < before) throw new Error("time went backwards");
 * ```
 */
export function createRealClock(): Clock {
  return {
    now: () => performance.now(),
    sleep(ms, signal) {
      return new Promise<void>((resolve, reject) => {
        if (signal?.aborted) return reject(signal.reason);
        const onAbort = () => {
          clearTimeout(timer);
          reject(signal!.reason);
        };
        const timer = setTimeout(() => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        }, Math.max(0, ms));
        signal?.addEventListener("abort", onAbort, { once: true });
      });
    },
  };
}

interface Timer {
  dueAt: number;
  order: number;
  resolve: () => void;
}

/**
 * Lets every promise chain that is ready run to its next wait: one macrotask turn drains all
 * microtasks, and more turns follow while code is waiting for a turn of its own
 * ({@linkcode yieldToEventLoop}, as a long in-memory copy does), so a job an advance wakes always
 * reaches its next timed wait before the clock moves on.
 */
async function settle(): Promise<void> {
  do await new Promise<void>((resolve) => setTimeout(resolve, 0));
  while (pendingYields() > 0);
}

/**
 * A virtual clock: time moves only when `advance()` or `runUntilIdle()` is called.
 *
 * @param startMs The initial `now()`.
 * @returns A virtual clock.
 * @example A job of 1 virtual second
 * ```ts
 * import { createVirtualClock } from "virtkit";
 * const clock = createVirtualClock();
 * let done = false;
 * clock.sleep(1000).then(() => { done = true; });
 * await clock.advance(999);
 * if (done) throw new Error("too early");
 * await clock.advance(1);
 * if (!done) throw new Error("not woken");
 * ```
 */
export function createVirtualClock(startMs = 0): VirtualClock {
  let now = startMs;
  let order = 0;
  const timers: Timer[] = [];
  const popDue = (limit: number): Timer | undefined => {
    let best = -1;
    for (let i = 0; i < timers.length; i++) {
      const t = timers[i]!;
      if (t.dueAt > limit) continue;
      const b = timers[best];
      if (!b || t.dueAt < b.dueAt || (t.dueAt === b.dueAt && t.order < b.order)) best = i;
    }
    return best < 0 ? undefined : timers.splice(best, 1)[0];
  };
  const fireUntil = async (target: number): Promise<void> => {
    await settle();
    for (let timer = popDue(target); timer; timer = popDue(target)) {
      now = Math.max(now, timer.dueAt);
      timer.resolve();
      await settle();
    }
    now = Math.max(now, target);
    await settle();
  };
  return {
    now: () => now,
    get pendingTimers() {
      return timers.length;
    },
    sleep(ms, signal) {
      return new Promise<void>((resolve, reject) => {
        if (signal?.aborted) return reject(signal.reason);
        const timer: Timer = {
          dueAt: now + Math.max(0, ms),
          order: order++,
          resolve: () => {
            signal?.removeEventListener("abort", onAbort);
            resolve();
          },
        };
        const onAbort = () => {
          const index = timers.indexOf(timer);
          if (index >= 0) timers.splice(index, 1);
          reject(signal!.reason);
        };
        signal?.addEventListener("abort", onAbort, { once: true });
        timers.push(timer);
      });
    },
    async advance(ms) {
      if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`Cannot advance the clock by ${ms} ms`);
      await fireUntil(now + ms);
    },
    async runUntilIdle(limitMs = 86_400_000) {
      const start = now;
      const limit = now + limitMs;
      await settle();
      while (timers.length > 0) {
        const next = Math.min(...timers.map((t) => t.dueAt));
        if (next > limit) break;
        await fireUntil(next);
      }
      return now - start;
    },
  };
}
