// PLACEHOLDER: the copy-loop helper replaces this file with the implementation.
import type { Clock } from "../clock.ts";

/** Options of {@linkcode RateLimiter}. */
export interface RateLimiterOptions {
  /** Cap in bytes per second; 0 = unlimited. */
  bytesPerSecond?: number;
  /** Clock used for all waits. */
  clock: Clock;
  /** A limiter whose budget this one also draws from (a pool- or host-wide budget). */
  parent?: RateLimiter;
}

/** A token bucket on a clock; `take()` waits until `bytes` fit under the cap (and the parent's). */
export declare class RateLimiter {
  constructor(options: RateLimiterOptions);
  /** Current cap (0 = unlimited). */
  get bytesPerSecond(): number;
  /** Changes the cap at once; a waiting `take()` is rescheduled. */
  setRate(bytesPerSecond: number): void;
  /** Waits until `bytes` may pass. Rejects with the signal's reason when aborted. */
  take(bytes: number, signal?: AbortSignal): Promise<void>;
  /** A new limiter nested under this one. */
  child(bytesPerSecond?: number): RateLimiter;
}
