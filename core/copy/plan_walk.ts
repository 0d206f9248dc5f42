/**
 * The copy loop's walk of the source's extents: clipped to the range, planned, and shared by the loop
 * and the stream that reads the copied bytes.
 *
 * @module
 */
import type { Extent } from "../volume.ts";
import { VirtError } from "../errors.ts";

/** What to do with one source extent. */
export type CopyPlan = "copy" | "skip" | "zero" | "allocate-zero";

/** One planned piece of the range: `[pos, stop)` of one source extent, and what to do with it. */
export interface PlanStep {
  action: CopyPlan;
  pos: number;
  stop: number;
}

/**
 * Walks the source's extents once, clipped to the range and planned, for two readers: the loop takes
 * every step in order, and the copy stream takes the `"copy"` steps, possibly one step ahead of the
 * loop (when it reads ahead). Steps fetched for one wait in a queue for the other.
 *
 * @example Both readers see the same copy step
 * ```ts
 * import { PlanWalk } from "./plan_walk.ts";
 * async function* extents() {
 *   yield { offset: 0, length: 4, data: true, zero: false, depth: 0 };
 *   yield { offset: 4, length: 4, data: false, zero: true, depth: 0 };
 * }
 * const walk = new PlanWalk(extents(), (e) => (e.data ? "copy" : "skip"), 0, 8);
 * const copy = await walk.nextCopy();
 * const steps = [await walk.next(), await walk.next(), await walk.next()];
 * await walk.close();
 * if (steps[0] !== copy || steps[1]?.action !== "skip" || steps[2] !== undefined) throw new Error("unexpected");
 * ```
 */
export class PlanWalk {
  readonly #extents: AsyncIterator<Extent>;
  readonly #plan: (extent: Extent) => CopyPlan;
  readonly #start: number;
  readonly #end: number;
  #pos: number;
  /** Steps fetched but not yet taken by the loop. */
  readonly #loopQueue: PlanStep[] = [];
  /** Copy steps fetched but not yet taken by the stream. */
  readonly #copyQueue: PlanStep[] = [];
  /** Serializes fetches: the loop and the stream may both ask while a fetch runs. */
  #fetching: Promise<boolean> = Promise.resolve(true);
  #closed = false;

  /**
   * @param extents The source's extents from `start` on (the walk owns the iterator and ends it).
   * @param plan Decides per extent.
   * @param start Start of the range.
   * @param end End of the range.
   */
  constructor(extents: AsyncIterator<Extent>, plan: (extent: Extent) => CopyPlan, start: number, end: number) {
    this.#extents = extents;
    this.#plan = plan;
    this.#start = start;
    this.#end = end;
    this.#pos = start;
  }

  /** The loop's next step, or `undefined` once the range is covered. */
  async next(): Promise<PlanStep | undefined> {
    while (this.#loopQueue.length === 0) {
      // A fetch the stream started before ours may have queued a step even when ours found the end.
      if (!(await this.#fetch())) return this.#loopQueue.shift();
    }
    return this.#loopQueue.shift();
  }

  /** The stream's next copy step, or `undefined` when no copy step is left. */
  async nextCopy(): Promise<PlanStep | undefined> {
    while (this.#copyQueue.length === 0) {
      if (!(await this.#fetch())) return this.#copyQueue.shift();
    }
    return this.#copyQueue.shift();
  }

  /**
   * Puts a copy step back in front of the stream's queue: the loop took one out for a copy it made
   * another way (an offload), and hands back the part it did not copy.
   *
   * @param step The remaining part of the step.
   */
  unshiftCopy(step: PlanStep): void {
    this.#copyQueue.unshift(step);
  }

  /** Stops fetching and ends the extents iterator, once a fetch in progress is over. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#fetching.catch(() => {});
    await this.#extents.return?.().catch(() => {});
  }

  /** Fetches one more step (after any fetch in progress); false when the range is covered. */
  #fetch(): Promise<boolean> {
    this.#fetching = this.#fetching.then(() => this.#fetchOne());
    return this.#fetching;
  }

  async #fetchOne(): Promise<boolean> {
    for (;;) {
      if (this.#pos >= this.#end || this.#closed) return false;
      const { value: extent, done } = await this.#extents.next();
      if (done || extent.offset > this.#pos) {
        throw new VirtError(
          "internal",
          `Source extents do not cover the range at byte ${this.#pos} (asked ${this.#start}+${this.#end - this.#start})`,
        );
      }
      const stop = Math.min(extent.offset + extent.length, this.#end);
      if (stop <= this.#pos) continue;
      const action = this.#plan(extent);
      if (action !== "copy" && action !== "skip" && action !== "zero" && action !== "allocate-zero") {
        throw new TypeError(`Cannot copy: plan() returned ${String(action)}, not "copy", "skip", "zero" or "allocate-zero"`);
      }
      const step = { action, pos: this.#pos, stop };
      this.#pos = stop;
      this.#loopQueue.push(step);
      if (action === "copy") this.#copyQueue.push(step);
      return true;
    }
  }
}
