/**
 * The bandwidth cap of every copy: a scheduler of byte slots on a {@linkcode Clock}. The copy loop takes
 * tokens before it reads, so a capped job simply stops being pulled (the cap is backpressure).
 *
 * @module
 */
import type { Clock } from "../clock.ts";
import { assertBandwidth, assertBytes } from "../units.ts";

/** Options of {@linkcode RateLimiter}. */
export interface RateLimiterOptions {
  /** Cap in bytes per second; 0 or absent = unlimited. */
  bytesPerSecond?: number;
  /** Clock used for all waits. */
  clock: Clock;
  /** A limiter whose budget this one also draws from (a pool- or host-wide budget). */
  parent?: RateLimiter;
  /**
   * A take that arrives at most this long after the previous take was released continues the schedule
   * from the previous slot's end instead of from now, so a busy consumer loses neither the time its own
   * I/O takes nor a late timer (late by up to 250 ms). After a longer idle the schedule restarts from
   * now: no burst. The default, 100 ms, is QEMU's rate-limit slice: a copy whose read and write of one
   * chunk stall for tens of milliseconds on a busy disk still averages the cap. On a virtual clock,
   * timers are never late.
   */
  graceMs?: number;
}

/** One limiter's share of one take: the interval during which its bytes pass. */
interface Slot {
  start: number;
  end: number;
  bytes: number;
}

/** A take that waits for the latest end among its slots. */
interface Waiter {
  readonly slots: Map<RateLimiter, Slot>;
  deadline: number;
  timer: AbortController | undefined;
  readonly signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  resolve(): void;
  reject(reason: unknown): void;
}

const RESOLVED: Promise<void> = Promise.resolve();
/** The most timer lateness a take is forgiven: bounds the catch-up after a stalled process. */
const MAX_LATE_MS = 250;
const ignore = (): void => {};

/**
 * A rate limiter that pays before: a take of `n` bytes reserves the slot `start = max(now, nextFreeAt)`,
 * `end = start + n / rate` and resolves when the slot ends, so there is no burst after idle and a
 * steady consumer gets exactly the cap. A child reserves on itself and on every ancestor at the same
 * moment and waits for the latest slot end among them; reservations are made in arrival order, so
 * children sharing a parent are served first come, first served. `setRate()` reschedules waiting takes
 * at once; rate 0 means unlimited, and a take on an unlimited chain costs no timer.
 *
 * @example 2 KiB at 1 KiB/s take two (virtual) seconds
 * ```ts
 * import { RateLimiter } from "./rate_limiter.ts";
 * import { createVirtualClock } from "virtkit";
 * const clock = createVirtualClock();
 * const limiter = new RateLimiter({ bytesPerSecond: 1024, clock });
 * let done = false;
 * limiter.take(2048).then(() => { done = true; });
 * await clock.advance(1999);
 * if (done) throw new Error("too early");
 * await clock.advance(1);
 * if (!done) throw new Error("not released");
 * ```
 */
export class RateLimiter {
  #rate: number;
  readonly #clock: Clock;
  readonly #parent: RateLimiter | undefined;
  readonly #graceMs: number;
  #nextFreeAt = Number.NEGATIVE_INFINITY;
  /** When the last take holding a slot here was released (later than its slot's end if the timer was late). */
  #releasedAt = Number.NEGATIVE_INFINITY;
  /** Waiting takes holding a slot here, in arrival (= slot) order. */
  readonly #queue = new Set<Waiter>();

  /**
   * @param options Cap, clock and parent.
   * @throws {TypeError} When the clock or parent is not one.
   * @throws {RangeError} When the cap or grace is negative, fractional or not finite.
   */
  constructor(options: RateLimiterOptions) {
    if (options === null || typeof options !== "object") {
      throw new TypeError("Cannot create rate limiter: expected an options object");
    }
    const { clock, parent, graceMs = 100 } = options;
    if (!clock || typeof clock.now !== "function" || typeof clock.sleep !== "function") {
      throw new TypeError("Cannot create rate limiter: options.clock is not a Clock");
    }
    if (parent !== undefined && !(parent instanceof RateLimiter)) {
      throw new TypeError("Cannot create rate limiter: options.parent is not a RateLimiter");
    }
    if (typeof graceMs !== "number" || !(graceMs >= 0) || !Number.isFinite(graceMs)) {
      throw new RangeError(`Cannot create rate limiter: graceMs ${graceMs} is not a finite number >= 0`);
    }
    this.#rate = assertBandwidth(options.bytesPerSecond, "bytesPerSecond");
    this.#clock = clock;
    this.#parent = parent;
    this.#graceMs = graceMs;
  }

  /** Current cap in bytes per second (0 = unlimited). */
  get bytesPerSecond(): number {
    return this.#rate;
  }

  /** The limiter this one also draws from, if any. */
  get parent(): RateLimiter | undefined {
    return this.#parent;
  }

  /**
   * Changes the cap at once: each waiting take is rescheduled from now for what its slot had left at
   * the old rate; with 0 (unlimited) they stop waiting on this limiter.
   *
   * @param bytesPerSecond The new cap; 0 = unlimited.
   * @throws {RangeError} When it is negative, fractional or not finite.
   */
  setRate(bytesPerSecond: number): void {
    const rate = assertBandwidth(bytesPerSecond, "bytesPerSecond");
    const old = this.#rate;
    if (rate === old) return;
    this.#rate = rate;
    this.#reflow(old);
  }

  /**
   * Waits until `bytes` may pass under this cap and every ancestor's.
   *
   * @param bytes How many bytes the caller is about to move.
   * @param signal Aborting rejects with the signal's reason and gives back the unused reservation.
   * @returns Resolves when the bytes may pass (at once on an unlimited chain).
   * @throws {RangeError} When `bytes` is not a byte count.
   */
  take(bytes: number, signal?: AbortSignal): Promise<void> {
    assertBytes(bytes, "bytes");
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (bytes === 0) return RESOLVED;
    for (let limiter: RateLimiter | undefined = this; limiter; limiter = limiter.#parent) {
      if (limiter.#rate > 0) return this.#reserve(bytes, signal);
    }
    return RESOLVED;
  }

  /**
   * A new limiter nested under this one, on the same clock.
   *
   * @param bytesPerSecond The child's own cap; 0 or absent = only the ancestors' caps apply.
   * @returns The child limiter.
   */
  child(bytesPerSecond?: number): RateLimiter {
    return new RateLimiter({ bytesPerSecond, clock: this.#clock, parent: this, graceMs: this.#graceMs });
  }

  #reserve(bytes: number, signal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const now = this.#clock.now();
      const waiter: Waiter = {
        slots: new Map(),
        deadline: now,
        timer: undefined,
        signal,
        onAbort: undefined,
        resolve,
        reject,
      };
      for (let limiter: RateLimiter | undefined = this; limiter; limiter = limiter.#parent) {
        if (limiter.#rate === 0) continue;
        const free = limiter.#nextFreeAt;
        const late = Math.min(Math.max(0, limiter.#releasedAt - free), MAX_LATE_MS);
        const start = now - free <= limiter.#graceMs + late ? free : now;
        const end = start + (bytes * 1000) / limiter.#rate;
        limiter.#nextFreeAt = end;
        waiter.slots.set(limiter, { start, end, bytes });
        limiter.#queue.add(waiter);
        if (end > waiter.deadline) waiter.deadline = end;
      }
      if (signal) {
        waiter.onAbort = () => this.#abort(waiter);
        signal.addEventListener("abort", waiter.onAbort, { once: true });
      }
      this.#arm(waiter);
    });
  }

  /** (Re)starts the waiter's timer for its current deadline, or releases it when that has passed. */
  #arm(waiter: Waiter): void {
    waiter.timer?.abort();
    const ms = waiter.deadline - this.#clock.now();
    if (ms <= 0) {
      waiter.timer = undefined;
      this.#finish(waiter);
      return;
    }
    const timer = new AbortController();
    waiter.timer = timer;
    this.#clock.sleep(ms, timer.signal).then(() => {
      if (waiter.timer === timer) this.#finish(waiter);
    }, ignore);
  }

  #finish(waiter: Waiter): void {
    const now = this.#clock.now();
    for (const limiter of waiter.slots.keys()) if (now > limiter.#releasedAt) limiter.#releasedAt = now;
    RateLimiter.#release(waiter);
    waiter.resolve();
  }

  #abort(waiter: Waiter): void {
    waiter.timer?.abort();
    waiter.timer = undefined;
    const held = [...waiter.slots.keys()];
    RateLimiter.#release(waiter);
    for (const limiter of held) limiter.#reflow(limiter.#rate);
    waiter.reject(waiter.signal!.reason);
  }

  /** Forgets the waiter everywhere (its slots that ended stay paid for: nextFreeAt is left alone). */
  static #release(waiter: Waiter): void {
    for (const limiter of waiter.slots.keys()) limiter.#queue.delete(waiter);
    waiter.slots.clear();
    if (waiter.onAbort) waiter.signal!.removeEventListener("abort", waiter.onAbort);
    waiter.onAbort = undefined;
  }

  /**
   * Re-lays the waiting slots from now, in order, for the bytes each had left at `oldRate`; this both
   * applies a new rate and closes the gap an aborted take leaves behind.
   */
  #reflow(oldRate: number): void {
    const now = this.#clock.now();
    const rate = this.#rate;
    let cursor = now;
    let live = false;
    const moved: Waiter[] = [];
    for (const waiter of this.#queue) {
      const slot = waiter.slots.get(this)!;
      if (slot.end <= now) continue;
      moved.push(waiter);
      if (rate === 0) {
        waiter.slots.delete(this);
        this.#queue.delete(waiter);
        continue;
      }
      live = true;
      const started = slot.start < now;
      if (started && rate === oldRate) {
        cursor = slot.end;
        continue;
      }
      const left = started ? (slot.bytes * (slot.end - now)) / (slot.end - slot.start) : slot.bytes;
      slot.start = Math.max(cursor, now);
      slot.bytes = left;
      slot.end = slot.start + (left * 1000) / rate;
      cursor = slot.end;
    }
    if (rate === 0) this.#nextFreeAt = Number.NEGATIVE_INFINITY;
    else this.#nextFreeAt = live ? cursor : Math.min(this.#nextFreeAt, now);
    for (const waiter of moved) {
      let deadline = now;
      for (const slot of waiter.slots.values()) if (slot.end > deadline) deadline = slot.end;
      if (deadline === waiter.deadline) continue;
      waiter.deadline = deadline;
      this.#arm(waiter);
    }
  }
}
